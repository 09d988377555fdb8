// Builds .npy bytes by hand (independent of the writer under test) for the npy tests.

/** magic, version, header length (u16 for 1.0, u32 otherwise), dict padded to 64 bytes, data. */
export function npyBytes(dict: string, data: Uint8Array, version: 1 | 2 | 3 = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const enc = new TextEncoder().encode(dict);
  const total = Math.ceil((prefix + enc.length + 1) / 64) * 64;
  const hlen = total - prefix;
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, hlen, true); else dv.setUint32(8, hlen, true);
  out.fill(0x20, prefix, total - 1);
  out.set(enc, prefix);
  out[total - 1] = 0x0a;
  out.set(data, total);
  return out;
}

export function dictOf(descr: string, fortran: boolean, shape: number[]): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${tuple}, }`;
}
