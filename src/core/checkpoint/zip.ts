import { Inflate } from 'fflate';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import type { FileAccessor } from './fileAccessor';

/**
 * A lazy reader of a zip archive (PKWARE APPNOTE 6.3): only the End Of Central Directory record and
 * the central directory are read at open; an entry's data is located through its LOCAL header (whose
 * name/extra lengths may differ from the central ones) and read on demand. PyTorch's `torch.save`
 * writes every entry stored (method 0) and 64-byte aligned, and switches to Zip64 for big files;
 * `np.savez_compressed` writes deflate (method 8).
 *
 * Everything a header says is checked against the file before it is believed: offsets and sizes must
 * lie inside the file, the entry count must fit the central directory, the central directory must
 * fit before the EOCD record. Names that could escape a directory if extracted (absolute, `..`,
 * backslashes, NUL, drive letters) are refused even though we never extract: such an archive was
 * made to attack something.
 */

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const EOCD_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIZE = 56;
/** The EOCD comment is at most 65,535 bytes, so the record starts within the last 64 KiB + 22 bytes. */
const EOCD_SEARCH = 0xffff + EOCD_SIZE;
/** A central directory larger than this is not a checkpoint we can index in memory. */
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

export const ZIP_STORED = 0;
export const ZIP_DEFLATED = 8;

export interface ZipEntry {
  /** The entry name as stored (UTF-8), e.g. `archive/data/0`. */
  name: string;
  /** Compression method: 0 stored, 8 deflate (the only two we read). */
  method: number;
  /** General purpose flags from the central header. */
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Offset of the entry's local header. */
  localHeaderOffset: number;
  /** Offset of the entry's central directory header (for error messages). */
  centralOffset: number;
}

export class ZipArchive {
  private readonly byName = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<ZipEntry, number>();

  private constructor(
    readonly fa: FileAccessor,
    readonly entries: readonly ZipEntry[],
    readonly zip64: boolean,
    /** Where the central directory starts: entry data must end before it. */
    readonly centralDirectoryOffset: number,
  ) {
    for (const e of entries) this.byName.set(e.name, e);
  }

  get file(): string {
    return this.fa.path;
  }

  /** Reads and validates the EOCD (and Zip64 EOCD) and the whole central directory. */
  static async open(fa: FileAccessor): Promise<ZipArchive> {
    const file = fa.path;
    if (fa.size < EOCD_SIZE) throw new CheckpointError(file, `zip: file has ${fa.size} bytes, too small for an End Of Central Directory record (${EOCD_SIZE} bytes)`, { offset: 0 });
    const tailStart = Math.max(0, fa.size - EOCD_SEARCH);
    const tail = await fa.read(tailStart, fa.size - tailStart, 'zip end of central directory search');
    const tv = view(tail);
    // Scan backwards for the EOCD signature whose comment length reaches exactly to the end of file;
    // fall back to the last signature whose comment at least fits (some writers pad the tail).
    let eocd = -1;
    let loose = -1;
    for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
      if (tv.getUint32(i, true) !== SIG_EOCD) continue;
      const commentLength = tv.getUint16(i + 20, true);
      if (i + EOCD_SIZE + commentLength === tail.length) { eocd = i; break; }
      if (loose < 0 && i + EOCD_SIZE + commentLength <= tail.length) loose = i;
    }
    if (eocd < 0) eocd = loose;
    if (eocd < 0) throw new CheckpointError(file, 'zip: no End Of Central Directory record (signature PK\\x05\\x06) in the last 64 KiB: the file is truncated or not a zip archive', { offset: tailStart });
    const eocdAbs = tailStart + eocd;
    const disk = tv.getUint16(eocd + 4, true);
    const cdDisk = tv.getUint16(eocd + 6, true);
    let entriesOnDisk: number = tv.getUint16(eocd + 8, true);
    let totalEntries: number = tv.getUint16(eocd + 10, true);
    let cdSize: number = tv.getUint32(eocd + 12, true);
    let cdOffset: number = tv.getUint32(eocd + 16, true);
    let cdEnd = eocdAbs;
    let zip64 = false;

    // Zip64: a locator sits right before the EOCD and points to the Zip64 EOCD record.
    const locAbs = eocdAbs - ZIP64_LOCATOR_SIZE;
    if (locAbs >= 0) {
      const loc = locAbs >= tailStart ? tail.subarray(locAbs - tailStart, eocd) : await fa.read(locAbs, ZIP64_LOCATOR_SIZE, 'zip64 locator');
      const lv = view(loc);
      if (lv.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
        zip64 = true;
        const recOffset = safe(lv.getBigUint64(8, true), file, 'zip64 end of central directory offset', locAbs + 8);
        if (lv.getUint32(16, true) > 1 || lv.getUint32(4, true) !== 0) throw new CheckpointError(file, 'zip: multi-disk (spanned) archives are not supported', { offset: locAbs });
        if (recOffset + ZIP64_EOCD_SIZE > locAbs) throw new CheckpointError(file, `zip64 end of central directory record at byte ${formatBytes(recOffset)} does not end before its locator at byte ${formatBytes(locAbs)}`, { offset: locAbs + 8 });
        const rec = view(await fa.read(recOffset, ZIP64_EOCD_SIZE, 'zip64 end of central directory record'));
        if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new CheckpointError(file, 'zip64 locator points to a record without the signature PK\\x06\\x06', { offset: recOffset });
        if (rec.getUint32(16, true) !== 0 || rec.getUint32(20, true) !== 0) throw new CheckpointError(file, 'zip: multi-disk (spanned) archives are not supported', { offset: recOffset + 16 });
        entriesOnDisk = safe(rec.getBigUint64(24, true), file, 'zip64 entry count', recOffset + 24);
        totalEntries = safe(rec.getBigUint64(32, true), file, 'zip64 entry count', recOffset + 32);
        cdSize = safe(rec.getBigUint64(40, true), file, 'zip64 central directory size', recOffset + 40);
        cdOffset = safe(rec.getBigUint64(48, true), file, 'zip64 central directory offset', recOffset + 48);
        cdEnd = recOffset;
      }
    }
    if (!zip64 && (disk !== 0 || cdDisk !== 0)) throw new CheckpointError(file, 'zip: multi-disk (spanned) archives are not supported', { offset: eocdAbs + 4 });
    if (entriesOnDisk !== totalEntries) throw new CheckpointError(file, `zip: ${entriesOnDisk} entries on this disk but ${totalEntries} in total (spanned archive?)`, { offset: eocdAbs + 8 });
    if (cdOffset + cdSize > cdEnd) {
      throw new CheckpointError(file, `zip central directory (offset ${formatBytes(cdOffset)}, ${formatBytes(cdSize)} bytes) does not end before the end-of-directory record at byte ${formatBytes(cdEnd)}: truncated or corrupt archive`, { offset: eocdAbs + 12 });
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) throw new CheckpointError(file, `zip central directory of ${formatBytes(cdSize)} bytes exceeds the limit of ${formatBytes(MAX_CENTRAL_DIRECTORY)}`, { offset: eocdAbs + 12 });
    // Each central header is at least 46 bytes: bound the count before allocating anything per entry.
    if (totalEntries * CENTRAL_SIZE > cdSize) {
      throw new CheckpointError(file, `zip claims ${formatBytes(totalEntries)} entries but its central directory has room for at most ${formatBytes(Math.floor(cdSize / CENTRAL_SIZE))}`, { offset: eocdAbs + 10 });
    }

    const cd = await fa.read(cdOffset, cdSize, 'zip central directory');
    const cv = view(cd);
    const entries: ZipEntry[] = [];
    const seen = new Set<string>();
    const decoder = new TextDecoder('utf-8');
    let p = 0;
    for (let i = 0; i < totalEntries; i++) {
      const at = cdOffset + p;
      if (p + CENTRAL_SIZE > cd.length) throw new CheckpointError(file, `zip central directory ends inside entry ${i} of ${totalEntries}`, { offset: at });
      if (cv.getUint32(p, true) !== SIG_CENTRAL) throw new CheckpointError(file, `zip central directory entry ${i}: expected signature PK\\x01\\x02`, { offset: at });
      const flags = cv.getUint16(p + 8, true);
      const method = cv.getUint16(p + 10, true);
      const crc32 = cv.getUint32(p + 16, true);
      let compressedSize: number = cv.getUint32(p + 20, true);
      let uncompressedSize: number = cv.getUint32(p + 24, true);
      const nameLength = cv.getUint16(p + 28, true);
      const extraLength = cv.getUint16(p + 30, true);
      const commentLength = cv.getUint16(p + 32, true);
      const diskStart = cv.getUint16(p + 34, true);
      let localHeaderOffset: number = cv.getUint32(p + 42, true);
      const varEnd = p + CENTRAL_SIZE + nameLength + extraLength + commentLength;
      if (varEnd > cd.length) throw new CheckpointError(file, `zip central directory entry ${i}: name/extra/comment run past the central directory`, { offset: at });
      const rawName = cd.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLength);
      const name = decoder.decode(rawName);
      checkEntryName(file, name, rawName, at);

      // Zip64 extended information (header id 0x0001): 8-byte values, present only for the fields
      // whose 32-bit central value is 0xFFFFFFFF, in the order uncompressed, compressed, offset, disk.
      const needU = uncompressedSize === 0xffffffff;
      const needC = compressedSize === 0xffffffff;
      const needO = localHeaderOffset === 0xffffffff;
      if (needU || needC || needO) {
        const extra = cd.subarray(p + CENTRAL_SIZE + nameLength, p + CENTRAL_SIZE + nameLength + extraLength);
        const z = findExtra(extra, 0x0001);
        if (!z) throw new CheckpointError(file, `zip entry "${name}": a size or offset is 0xFFFFFFFF but there is no Zip64 extra field`, { offset: at });
        const zv = view(z);
        let q = 0;
        const next = (what: string): number => {
          if (q + 8 > z.length) throw new CheckpointError(file, `zip entry "${name}": Zip64 extra field too short for the ${what}`, { offset: at });
          const v = safe(zv.getBigUint64(q, true), file, `zip entry "${name}" ${what}`, at);
          q += 8;
          return v;
        };
        if (needU) uncompressedSize = next('uncompressed size');
        if (needC) compressedSize = next('compressed size');
        if (needO) localHeaderOffset = next('local header offset');
      }
      if (diskStart !== 0 && diskStart !== 0xffff) throw new CheckpointError(file, `zip entry "${name}" lives on disk ${diskStart}: spanned archives are not supported`, { offset: at });
      if (seen.has(name)) throw new CheckpointError(file, `zip has two entries named "${name}": ambiguous archive`, { offset: at });
      seen.add(name);
      if (localHeaderOffset + LOCAL_SIZE > cdOffset) {
        throw new CheckpointError(file, `zip entry "${name}": local header at byte ${formatBytes(localHeaderOffset)} is not before the central directory at byte ${formatBytes(cdOffset)}`, { offset: at + 42 });
      }
      if (localHeaderOffset + compressedSize > cdOffset) {
        throw new CheckpointError(file, `zip entry "${name}": ${formatBytes(compressedSize)} bytes of data from byte ${formatBytes(localHeaderOffset)} run past the central directory at byte ${formatBytes(cdOffset)}`, { offset: at + 20 });
      }
      entries.push({ name, method, flags, crc32, compressedSize, uncompressedSize, localHeaderOffset, centralOffset: at });
      p = varEnd;
    }
    return new ZipArchive(fa, entries, zip64, cdOffset);
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Checks that an entry can be read at all: not encrypted, a method we implement. */
  checkReadable(entry: ZipEntry): void {
    if (entry.flags & 0x0001 || entry.flags & 0x0040) throw new CheckpointError(this.file, `zip entry "${entry.name}" is encrypted`, { offset: entry.centralOffset + 8 });
    if (entry.method !== ZIP_STORED && entry.method !== ZIP_DEFLATED) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}" uses compression method ${entry.method}; only 0 (stored) and 8 (deflate) are supported`, { offset: entry.centralOffset + 10 });
    }
    if (entry.method === ZIP_STORED && entry.compressedSize !== entry.uncompressedSize) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}" is stored but its compressed size ${formatBytes(entry.compressedSize)} differs from its size ${formatBytes(entry.uncompressedSize)}`, { offset: entry.centralOffset + 20 });
    }
    // Deflate expands at most ~1032:1; a bigger claim is a zip bomb or a corrupt header.
    if (entry.method === ZIP_DEFLATED && entry.uncompressedSize > entry.compressedSize * 1032 + 1024) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}" claims ${formatBytes(entry.uncompressedSize)} bytes from ${formatBytes(entry.compressedSize)} compressed: beyond what deflate can produce`, { offset: entry.centralOffset + 24 });
    }
  }

  /**
   * The absolute offset of the entry's (possibly compressed) data: local header offset + 30 + the
   * LOCAL name and extra lengths. Cached.
   */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(entry);
    if (cached !== undefined) return cached;
    this.checkReadable(entry);
    const at = entry.localHeaderOffset;
    const lh = view(await this.fa.read(at, LOCAL_SIZE, `zip local header of "${entry.name}"`));
    if (lh.getUint32(0, true) !== SIG_LOCAL) throw new CheckpointError(this.file, `zip entry "${entry.name}": expected a local header (PK\\x03\\x04) at byte ${formatBytes(at)}`, { offset: at });
    const method = lh.getUint16(8, true);
    if (method !== entry.method) throw new CheckpointError(this.file, `zip entry "${entry.name}": local header says method ${method}, central directory says ${entry.method}`, { offset: at + 8 });
    const nameLength = lh.getUint16(26, true);
    const extraLength = lh.getUint16(28, true);
    const start = at + LOCAL_SIZE + nameLength + extraLength;
    if (start + entry.compressedSize > this.centralDirectoryOffset) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}": data (${formatBytes(entry.compressedSize)} bytes from byte ${formatBytes(start)}) runs past the central directory at byte ${formatBytes(this.centralDirectoryOffset)}`, { offset: at });
    }
    const localName = new TextDecoder('utf-8').decode(await this.fa.read(at + LOCAL_SIZE, nameLength, `zip local name of "${entry.name}"`));
    if (localName !== entry.name) throw new CheckpointError(this.file, `zip entry "${entry.name}": local header names it "${localName}"`, { offset: at + LOCAL_SIZE });
    this.dataOffsets.set(entry, start);
    return start;
  }

  /**
   * Reads a whole entry, inflating it when deflated. The output is exactly `uncompressedSize` bytes
   * (checked, together with the CRC-32, for deflated entries); `maxBytes` bounds the allocation.
   */
  async readEntry(entry: ZipEntry, opts: { maxBytes?: number; signal?: AbortSignal; tensor?: string } = {}): Promise<Uint8Array> {
    const start = await this.dataOffset(entry);
    if (opts.maxBytes !== undefined && entry.uncompressedSize > opts.maxBytes) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}" has ${formatBytes(entry.uncompressedSize)} bytes, more than the limit of ${formatBytes(opts.maxBytes)}`, { offset: entry.centralOffset + 24, tensor: opts.tensor });
    }
    if (entry.method === ZIP_STORED) {
      return this.fa.read(start, entry.compressedSize, `zip entry "${entry.name}"`, { signal: opts.signal, tensor: opts.tensor });
    }
    return this.inflate(entry, start, entry.uncompressedSize, opts);
  }

  /** Reads `length` bytes at `offset` inside a STORED entry, straight from the file. */
  async readStoredRange(entry: ZipEntry, offset: number, length: number, opts: { signal?: AbortSignal; tensor?: string } = {}): Promise<Uint8Array> {
    if (entry.method !== ZIP_STORED) throw new CheckpointError(this.file, `zip entry "${entry.name}" is compressed: no direct byte range`, { tensor: opts.tensor });
    if (offset < 0 || length < 0 || offset + length > entry.uncompressedSize) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}": bytes ${formatBytes(offset)}..${formatBytes(offset + length)} are outside its ${formatBytes(entry.uncompressedSize)} bytes`, { tensor: opts.tensor });
    }
    const start = await this.dataOffset(entry);
    return this.fa.read(start + offset, length, `zip entry "${entry.name}"`, opts);
  }

  /**
   * Reads the first `length` bytes of an entry's uncompressed content (for headers such as .npy's):
   * a stored entry is read directly, a deflated one is inflated only until `length` bytes are out.
   */
  async readPrefix(entry: ZipEntry, length: number): Promise<Uint8Array> {
    const n = Math.min(length, entry.uncompressedSize);
    const start = await this.dataOffset(entry);
    if (entry.method === ZIP_STORED) return this.fa.read(start, n, `zip entry "${entry.name}"`);
    return this.inflate(entry, start, n, {}, true);
  }

  /**
   * Streams the compressed bytes through fflate's Inflate in 4 MiB chunks, copying into an output of
   * exactly `wanted` bytes. More output than the header claims is corruption (or a bomb): stop there.
   */
  private async inflate(entry: ZipEntry, start: number, wanted: number, opts: { signal?: AbortSignal; tensor?: string }, prefixOnly = false): Promise<Uint8Array> {
    const out = new Uint8Array(wanted);
    let produced = 0;
    let overflow = false;
    let ended = false;
    const inflater = new Inflate((chunk, final) => {
      const room = wanted - produced;
      if (chunk.length > room) overflow = true;
      out.set(chunk.subarray(0, Math.min(room, chunk.length)), produced);
      produced += Math.min(room, chunk.length);
      if (final) ended = true;
    });
    // A header prefix needs only the first few KiB of output: feed small chunks then.
    const CHUNK = prefixOnly ? 64 * 1024 : 4 * 1024 * 1024;
    let done = 0;
    try {
      while (done < entry.compressedSize) {
        throwIfAborted(opts.signal);
        const n = Math.min(CHUNK, entry.compressedSize - done);
        const chunk = await this.fa.read(start + done, n, `zip entry "${entry.name}"`, opts);
        done += n;
        inflater.push(chunk, done === entry.compressedSize);
        if (overflow && !prefixOnly) break;
        if (prefixOnly && produced >= wanted) return out;
        if (ended) break;
      }
    } catch (e) {
      if (e instanceof CheckpointError || (e as Error).name === 'CancelledError') throw e;
      throw new CheckpointError(this.file, `zip entry "${entry.name}": corrupt deflate stream (${(e as Error).message})`, { offset: start + done, tensor: opts.tensor, cause: e });
    }
    if (prefixOnly && produced >= wanted) return out;
    if (overflow) throw new CheckpointError(this.file, `zip entry "${entry.name}" inflates to more than the ${formatBytes(entry.uncompressedSize)} bytes its header claims`, { offset: start, tensor: opts.tensor });
    if (produced !== wanted) throw new CheckpointError(this.file, `zip entry "${entry.name}" inflates to ${formatBytes(produced)} bytes, its header claims ${formatBytes(entry.uncompressedSize)}`, { offset: start, tensor: opts.tensor });
    if (!prefixOnly && crc32(out) !== entry.crc32) {
      throw new CheckpointError(this.file, `zip entry "${entry.name}": CRC-32 mismatch after inflating (corrupt data)`, { offset: start, tensor: opts.tensor });
    }
    return out;
  }
}

/** Refuses names that would escape an extraction directory: absolute, `..`, `\`, NUL, `C:`. */
function checkEntryName(file: string, name: string, raw: Uint8Array, at: number): void {
  const bad = (why: string) => new CheckpointError(file, `zip entry "${name.replace(/\0/g, '\\0')}" ${why}: refusing a path-traversal archive`, { offset: at });
  if (raw.length === 0) throw bad('has an empty name');
  if (raw.includes(0)) throw bad('contains a NUL byte');
  if (name.includes('\\')) throw bad('contains a backslash');
  if (name.startsWith('/')) throw bad('is an absolute path');
  if (/^[A-Za-z]:/.test(name)) throw bad('starts with a drive letter');
  if (name.split('/').some((s) => s === '..')) throw bad("has a '..' segment");
}

function findExtra(extra: Uint8Array, id: number): Uint8Array | undefined {
  const v = view(extra);
  let p = 0;
  while (p + 4 <= extra.length) {
    const hid = v.getUint16(p, true);
    const size = v.getUint16(p + 2, true);
    if (p + 4 + size > extra.length) return undefined;
    if (hid === id) return extra.subarray(p + 4, p + 4 + size);
    p += 4 + size;
  }
  return undefined;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function safe(v: bigint, file: string, what: string, offset: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CheckpointError(file, `${what} ${v} is beyond Number.MAX_SAFE_INTEGER`, { offset });
  return Number(v);
}

let CRC_TABLE: Uint32Array | undefined;
/** CRC-32 (ISO-HDLC, reflected polynomial 0xEDB88320), as zip stores it. */
export function crc32(data: Uint8Array): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c >>> 0;
    }
  }
  const t = CRC_TABLE;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
