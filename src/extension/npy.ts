/**
 * A 1-D little-endian float32 .npy (NumPy format 1.0): the magic "\x93NUMPY", version 1.0, a uint16
 * header length, an ASCII dict header padded with spaces and ended by "\n" so that data starts on a
 * 64-byte boundary, then the raw values.
 */
export function npyFloat32Bytes(v: Float32Array): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${v.length},), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + v.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), 10 + header.length);
  return out;
}
