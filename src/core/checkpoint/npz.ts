import type { Checkpoint, ReadOptions, TensorEntry } from './types';
import { CheckpointError, formatBytes } from './errors';
import { FileAccessor } from './fileAccessor';
import { BaseCheckpoint, groupOf } from './base';
import { ZipArchive, ZIP_STORED, type ZipEntry } from './zip';
import { parseNpy, decodeNpyData, type NpyHeader } from './npy';

/**
 * NumPy `.npz` archives (`np.savez`, `np.savez_compressed`): a zip whose members `<name>.npy` are
 * complete .npy files, one array each, named `<name>`. np.savez stores members uncompressed, so an
 * array's data is a byte range of the file, read lazily; np.savez_compressed deflates them, and
 * read() inflates the member.
 */

/** The .npy header length field ends at byte 10 (v1) or 12 (v2, v3). */
const NPY_PREFIX = 12;
const MAX_NPY_HEADER = 1_000_000;

export async function openNpz(path: string): Promise<Checkpoint> {
  const fa = await FileAccessor.open(path);
  let keepOpen = false;
  try {
    const zip = await ZipArchive.open(fa);
    const tensors: TensorEntry[] = [];
    const skipped: Array<{ name: string; reason: string }> = [];
    let compressed = 0;
    for (const entry of zip.entries) {
      if (!entry.name.endsWith('.npy')) continue;
      const name = entry.name.slice(0, -'.npy'.length);
      zip.checkReadable(entry);
      let header: NpyHeader;
      try {
        header = await readNpyHeader(zip, entry);
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        const reason = e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
        // A member of a kind we cannot turn into numbers (strings, objects, records, complex) is
        // listed as skipped rather than making the whole archive unreadable; corruption still fails.
        if (/descr/.test(reason) && entry.uncompressedSize >= NPY_PREFIX) {
          skipped.push({ name, reason });
          continue;
        }
        throw new CheckpointError(path, `npz member "${entry.name}": ${reason}`, { tensor: name, cause: e });
      }
      if (header.dataOffset + header.dataLength > entry.uncompressedSize) {
        throw new CheckpointError(path, `npz member "${entry.name}": ${header.descr} x ${formatBytes(header.params)} needs ${formatBytes(header.dataOffset + header.dataLength)} bytes, the member has ${formatBytes(entry.uncompressedSize)}`, { tensor: name, offset: entry.centralOffset });
      }
      if (entry.method !== ZIP_STORED) compressed++;
      tensors.push(await makeEntry(path, zip, entry, name, header));
    }
    if (tensors.length === 0 && skipped.length === 0) throw new CheckpointError(path, 'zip archive has no .npy members: not an .npz file');
    const metadata: Record<string, unknown> = { members: tensors.length + skipped.length, compressedMembers: compressed };
    if (skipped.length) metadata.skipped = skipped;
    if (zip.zip64) metadata.zip64 = true;
    const detail = compressed ? 'NumPy .npz (compressed)' : 'NumPy .npz';
    const ckpt = new BaseCheckpoint('npz', path, [path], fa.size, tensors, metadata, detail, () => fa.close());
    keepOpen = true;
    return ckpt;
  } finally {
    if (!keepOpen) await fa.close();
  }
}

/** Reads just the member's .npy header: the length field first, then exactly the header. */
async function readNpyHeader(zip: ZipArchive, entry: ZipEntry): Promise<NpyHeader> {
  const first = await zip.readPrefix(entry, NPY_PREFIX);
  let want = first.length;
  if (first.length >= 10 && first[6] >= 1 && first[6] <= 3) {
    const dv = new DataView(first.buffer, first.byteOffset, first.byteLength);
    const hlen = first[6] === 1 ? dv.getUint16(8, true) : first.length >= 12 ? dv.getUint32(8, true) : 0;
    want = Math.min(entry.uncompressedSize, (first[6] === 1 ? 10 : 12) + Math.min(hlen, MAX_NPY_HEADER + 1));
  }
  const bytes = want > first.length ? await zip.readPrefix(entry, want) : first;
  return parseNpy(bytes, zip.file);
}

async function makeEntry(path: string, zip: ZipArchive, entry: ZipEntry, name: string, h: NpyHeader): Promise<TensorEntry> {
  const stored = entry.method === ZIP_STORED;
  const memberStart = await zip.dataOffset(entry);
  const readRaw = async (opts?: ReadOptions): Promise<Uint8Array> => {
    if (h.dataLength === 0) return new Uint8Array(0);
    if (stored) return zip.readStoredRange(entry, h.dataOffset, h.dataLength, { signal: opts?.signal, tensor: name });
    const whole = await zip.readEntry(entry, { signal: opts?.signal, tensor: name });
    return whole.subarray(h.dataOffset, h.dataOffset + h.dataLength);
  };
  return {
    name,
    dtype: h.dtype,
    shape: h.shape.slice(),
    params: h.params,
    file: path,
    // A deflated member has no direct byte range: point at its compressed data instead.
    byteOffset: stored ? memberStart + h.dataOffset : memberStart,
    byteLength: stored ? h.dataLength : entry.compressedSize,
    group: groupOf(name),
    async read(opts?: ReadOptions): Promise<Float32Array> {
      return decodeNpyData(await readRaw(opts), h);
    },
    readRaw,
  };
}
