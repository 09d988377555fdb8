/**
 * GGUF reader (versions 2 and 3), after ggml's docs/gguf.md and ggml/src/gguf.cpp. All little-endian:
 *
 *   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
 *   metadata_kv_count x { string key | u32 value_type | value }
 *   tensor_count x      { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32)  -> the data region starts here (dataOffset)
 *   tensor data; a tensor's bytes are [dataOffset + offset, + byte size), offset a multiple of the alignment
 *
 * string = u64 length + UTF-8 bytes (no terminator). value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32,
 * 6 f32, 7 bool (1 byte), 8 string, 9 array {u32 item type, u64 count, items}, 10 u64, 11 i64, 12 f64.
 * Version 1 (August 2023 and before) used u32 counts and lengths; it is refused.
 *
 * ne is ggml's dimension order, fastest-varying first (ne0 = row length = in_features); TensorInfo.shape
 * is the row-major reverse, like PyTorch and numpy. Block-quantized types need ne0 to be a whole number of
 * blocks, as ggml requires.
 *
 * The header is parsed by streaming bounded reads through FileAccessor (a 1 MiB window), never by
 * loading the file. Every count and length is checked against the bytes left in the file before
 * anything is allocated, so a corrupt count (2^60) fails with a CheckpointError, not an OOM.
 * All offsets are plain numbers checked to be safe integers, so files > 4 GiB and tensors > 2 GiB index
 * correctly (no 32-bit arithmetic on offsets anywhere).
 */
import type { ReadOptions, TensorEntry } from './types';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import { FileAccessor } from './fileAccessor';
import { BaseCheckpoint } from './base';
import { groupOf } from './grouping';
import { dequantizeInto, ggmlTypeInfo, type GgmlTypeInfo } from './ggmlQuants';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS: a tensor info with more dimensions is corrupt. */
export const GGUF_MAX_DIMS = 4;
/** Arrays nested deeper than this are refused (ggml writers never nest more than one level). */
const MAX_ARRAY_NESTING = 16;
/** One metadata string may not exceed this (a chat template or token is a few KB; 256 MiB is corrupt). */
const MAX_STRING_BYTES = 256 * 1024 * 1024;
/** Header read window. */
const WINDOW_BYTES = 1024 * 1024;
/** read() decodes large tensors in chunks of about this many stored bytes, checking the signal between. */
const READ_CHUNK_BYTES = 16 * 1024 * 1024;
/** Arrays up to this length are copied into Checkpoint.metadata in full; longer ones are summarised. */
export const METADATA_ARRAY_FULL_LIMIT = 64;
const METADATA_ARRAY_PREVIEW = 8;

/** The GGUF metadata value types, by the spec's names (lower case). */
export type GgufValueTypeName =
  | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'bool' | 'string' | 'array'
  | 'uint64' | 'int64' | 'float64';

const VALUE_TYPE_NAMES: readonly GgufValueTypeName[] = [
  'uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64',
];
/** Bytes of one fixed-size value (strings and arrays have a minimum: their u64 length / type+count). */
const VALUE_MIN_BYTES: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

/** The items of a GGUF array, as compact typed arrays where the item type allows. */
export type GgufArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | boolean[] | string[] | GgufArray[];

export interface GgufArray {
  type: 'array';
  itemType: GgufValueTypeName;
  value: GgufArrayItems;
}

/**
 * One metadata value exactly as stored: 64-bit integers as bigint, arrays as typed arrays
 * (`tokenizer.ggml.scores` -> Float32Array, `tokenizer.ggml.tokens` -> string[]).
 */
export type GgufValue =
  | { type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArray;

/** One tensor info as stored (ggml order). */
export interface GgufTensorInfo {
  name: string;
  /** ggml's ne, fastest-varying first (the reverse of TensorInfo.shape). */
  ne: number[];
  /** ggml type id (see ggmlQuants.ts `ggmlTypeInfo`). */
  type: number;
  /** Offset relative to the start of the data region, as stored. */
  relativeOffset: number;
  /** Absolute offset of the tensor info record in the file (for error messages). */
  infoOffset: number;
}

/** Everything the header says, for features beyond the tensor index (tokenizer, writers). */
export interface GgufHeader {
  version: number;
  /** Every key/value pair in file order, values unsummarised. */
  kv: Map<string, GgufValue>;
  /** `general.alignment`, or 32. */
  alignment: number;
  /** Absolute byte offset where the data region starts. */
  dataOffset: number;
  /** Tensor name -> ggml type id. */
  tensorTypes: Map<string, number>;
  /** Tensor infos in file order. */
  tensorInfos: GgufTensorInfo[];
}

/**
 * The Checkpoint `openGguf` returns. Beyond the common interface, `gguf` holds the full header:
 * `gguf.kv.get('tokenizer.ggml.tokens')` is the whole vocabulary, `gguf.tensorTypes.get(name)` the
 * ggml type id, `gguf.dataOffset` / `gguf.alignment` what a writer needs to reproduce the layout.
 * Tensors of types we cannot decode (IQ*, TQ*, MXFP4) are listed and `readRaw()` works; their
 * `read()` throws a CheckpointError naming the tensor and the type.
 */
export class GgufCheckpoint extends BaseCheckpoint {
  constructor(
    path: string,
    sizeOnDisk: number,
    tensors: TensorEntry[],
    metadata: Record<string, unknown>,
    readonly gguf: GgufHeader,
    onClose: () => Promise<void>,
  ) {
    super('gguf', path, [path], sizeOnDisk, tensors, metadata, `GGUF v${gguf.version}`, onClose);
  }
}

/** Opens a GGUF file lazily: reads and checks the header, returns the tensor index. */
export async function openGguf(path: string): Promise<GgufCheckpoint> {
  const fa = await FileAccessor.open(path);
  try {
    const header = await readGgufHeader(fa);
    const tensors = header.tensorInfos.map((ti) => makeEntry(fa, header, ti));
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of header.kv) metadata[k] = summariseValue(v);
    return new GgufCheckpoint(path, fa.size, tensors, metadata, header, () => fa.close());
  } catch (e) {
    await fa.close();
    throw e;
  }
}

function makeEntry(fa: FileAccessor, header: GgufHeader, ti: GgufTensorInfo): TensorEntry {
  const info = ggmlTypeInfo[ti.type];
  const shape = ti.ne.slice().reverse();
  const params = ti.ne.reduce((a, b) => a * b, 1);
  const byteOffset = header.dataOffset + ti.relativeOffset;
  const byteLength = (params / info.blockSize) * info.bytesPerBlock;
  const file = fa.path;
  return {
    name: ti.name,
    dtype: info.name,
    shape,
    params,
    file,
    byteOffset,
    byteLength,
    group: groupOf(ti.name),
    readRaw: (opts?: ReadOptions) => fa.read(byteOffset, byteLength, `GGUF tensor ${ti.name}`, { tensor: ti.name, signal: opts?.signal }),
    read: (opts?: ReadOptions) => readDecoded(fa, ti.name, info, byteOffset, byteLength, params, opts),
  };
}

/** Reads and decodes one tensor chunk by chunk (whole blocks per chunk), checking the signal between. */
async function readDecoded(
  fa: FileAccessor, name: string, info: GgmlTypeInfo, byteOffset: number, byteLength: number, params: number, opts?: ReadOptions,
): Promise<Float32Array> {
  if (!info.decodable) {
    throw new CheckpointError(fa.path, `GGUF tensor ${name}: quantization type ${info.name} (${info.id}) is not supported: its values cannot be decoded (readRaw() still copies the bytes)`, { tensor: name, offset: byteOffset });
  }
  throwIfAborted(opts?.signal);
  let out: Float32Array;
  try {
    out = new Float32Array(params);
  } catch (e) {
    throw new CheckpointError(fa.path, `GGUF tensor ${name}: ${params.toLocaleString('en-US')} float32 values do not fit in one array in memory`, { tensor: name, offset: byteOffset, cause: e });
  }
  const totalBlocks = byteLength / info.bytesPerBlock;
  const blocksPerChunk = Math.max(1, Math.floor(READ_CHUNK_BYTES / info.bytesPerBlock));
  for (let b = 0; b < totalBlocks; b += blocksPerChunk) {
    throwIfAborted(opts?.signal);
    const n = Math.min(blocksPerChunk, totalBlocks - b);
    const bytes = await fa.read(byteOffset + b * info.bytesPerBlock, n * info.bytesPerBlock, `GGUF tensor ${name}`, { tensor: name, signal: opts?.signal });
    dequantizeInto(info.id, bytes, out, b * info.blockSize);
  }
  return out;
}

/**
 * A forward-only cursor over the file through a bounded window. `has(n)` is a synchronous check;
 * `need(n)` refills the window (reading at most what is left in the file) and throws a CheckpointError
 * naming `what` and the offset when the file ends first.
 */
class HeaderCursor {
  private buf = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private bufStart = 0;
  /** Current file offset. */
  pos = 0;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(readonly fa: FileAccessor) {}

  get remaining(): number {
    return this.fa.size - this.pos;
  }

  has(n: number): boolean {
    return this.pos + n <= this.bufStart + this.buf.length;
  }

  async need(n: number, what: string, tensor?: string): Promise<void> {
    if (this.has(n)) return;
    if (n > this.remaining) {
      throw new CheckpointError(this.fa.path, `GGUF ${what}: needs ${formatBytes(n)} bytes but the file ends after ${formatBytes(this.remaining)} (truncated header?)`, { tensor, offset: this.pos });
    }
    const keep = this.buf.subarray(this.pos - this.bufStart);
    const want = Math.min(Math.max(n, WINDOW_BYTES), this.remaining);
    const more = await this.fa.readUpTo(this.pos + keep.length, want - keep.length);
    const next = new Uint8Array(keep.length + more.length);
    next.set(keep, 0);
    next.set(more, keep.length);
    this.buf = next;
    this.dv = new DataView(next.buffer);
    this.bufStart = this.pos;
    if (!this.has(n)) {
      throw new CheckpointError(this.fa.path, `GGUF ${what}: unexpected end of file (wanted ${formatBytes(n)} bytes)`, { tensor, offset: this.pos });
    }
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  u8(): number { return this.buf[this.at(1)]; }
  i8(): number { return this.dv.getInt8(this.at(1)); }
  u16(): number { return this.dv.getUint16(this.at(2), true); }
  i16(): number { return this.dv.getInt16(this.at(2), true); }
  u32(): number { return this.dv.getUint32(this.at(4), true); }
  i32(): number { return this.dv.getInt32(this.at(4), true); }
  f32(): number { return this.dv.getFloat32(this.at(4), true); }
  f64(): number { return this.dv.getFloat64(this.at(8), true); }
  u64(): bigint { return this.dv.getBigUint64(this.at(8), true); }
  i64(): bigint { return this.dv.getBigInt64(this.at(8), true); }

  /** Copies the next n bytes (already ensured) into a fresh, aligned buffer. */
  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.slice(o, o + n);
  }

  decode(n: number): string {
    const o = this.at(n);
    return this.utf8.decode(this.buf.subarray(o, o + n));
  }

  /** A u64 length/count as a safe integer; refuses values beyond what the rest of the file can hold. */
  async count(what: string, minBytesEach: number, tensor?: string, noun = 'count'): Promise<number> {
    await this.need(8, `${what} ${noun}`, tensor);
    const at = this.pos;
    const v = this.u64();
    const left = this.remaining;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || Number(v) * minBytesEach > left) {
      throw new CheckpointError(this.fa.path, `GGUF ${what}: ${noun} ${v} needs at least ${formatBytes(v * BigInt(minBytesEach))} bytes but only ${formatBytes(left)} remain in the file (corrupt or truncated header)`, { tensor, offset: at });
    }
    return Number(v);
  }

  async string(what: string, tensor?: string): Promise<string> {
    const at = this.pos;
    const n = await this.count(what, 1, tensor, 'string length');
    if (n > MAX_STRING_BYTES) {
      throw new CheckpointError(this.fa.path, `GGUF ${what}: string length ${formatBytes(n)} exceeds the ${formatBytes(MAX_STRING_BYTES)} limit`, { tensor, offset: at });
    }
    await this.need(n, what, tensor);
    return this.decode(n);
  }
}

/** Parses and validates the whole header of an open GGUF file. */
export async function readGgufHeader(fa: FileAccessor): Promise<GgufHeader> {
  const file = fa.path;
  const c = new HeaderCursor(fa);
  await c.need(4, 'magic');
  const magic = c.bytes(4);
  if (String.fromCharCode(...magic) !== GGUF_MAGIC) {
    const hex = Array.from(magic, (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new CheckpointError(file, `not a GGUF file: the first bytes are ${hex}, expected 47 47 55 46 ("GGUF")`, { offset: 0 });
  }
  await c.need(4, 'version');
  const version = c.u32();
  if (version === 1) {
    throw new CheckpointError(file, 'GGUF v1 is not supported (it predates August 2023 and uses 32-bit counts); re-convert the model with a current llama.cpp', { offset: 4 });
  }
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
    const hint = swapped === 2 || swapped === 3 ? ' (this looks like a big-endian GGUF, which is not supported)' : '';
    throw new CheckpointError(file, `unsupported GGUF version ${version}${hint}; expected 2 or 3`, { offset: 4 });
  }
  // A tensor info takes at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; a KV pair
  // at least 8 (key length) + 4 (type) + 1 (smallest value).
  const tensorCount = await c.count('tensor count', 24);
  const kvCount = await c.count('metadata key/value count', 13);

  const kv = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = await c.string(`metadata key #${i}`);
    if (kv.has(key)) throw new CheckpointError(file, `GGUF metadata key ${JSON.stringify(key)} appears twice`, { offset: keyAt });
    await c.need(4, `metadata ${key} value type`);
    const typeAt = c.pos;
    const type = c.u32();
    kv.set(key, await readValue(c, type, key, typeAt, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.get('general.alignment');
  if (al !== undefined) {
    if (al.type !== 'uint32' || al.value === 0 || (al.value & (al.value - 1)) !== 0) {
      throw new CheckpointError(file, `GGUF general.alignment must be a power-of-two uint32, found ${al.type} ${String(al.value)}`);
    }
    alignment = al.value;
  }

  const tensorInfos: GgufTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const infoOffset = c.pos;
    const name = await c.string(`tensor info #${i} name`);
    await c.need(4, `tensor ${name} n_dims`, name);
    const nDims = c.u32();
    if (nDims > GGUF_MAX_DIMS) {
      throw new CheckpointError(file, `GGUF tensor ${name}: ${nDims} dimensions, ggml allows at most ${GGUF_MAX_DIMS}`, { tensor: name, offset: infoOffset });
    }
    await c.need(8 * nDims + 4 + 8, `tensor ${name} info`, name);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = c.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new CheckpointError(file, `GGUF tensor ${name}: dimension ne${d} = ${v} is not a valid size`, { tensor: name, offset: infoOffset });
      }
      ne.push(Number(v));
    }
    const type = c.u32();
    const offAt = c.pos;
    const off = c.u64();
    const info = ggmlTypeInfo[type];
    if (!info) {
      throw new CheckpointError(file, `GGUF tensor ${name}: unknown ggml type id ${type} (its byte size is unknown, so the file cannot be indexed)`, { tensor: name, offset: infoOffset });
    }
    let params = 1;
    for (const n of ne) params *= n;
    if (!Number.isSafeInteger(params)) {
      throw new CheckpointError(file, `GGUF tensor ${name}: ${ne.join(' x ')} elements overflow`, { tensor: name, offset: infoOffset });
    }
    const ne0 = nDims > 0 ? ne[0] : 1;
    if (ne0 % info.blockSize !== 0) {
      throw new CheckpointError(file, `GGUF tensor ${name}: row length ne0 = ${ne0} is not a multiple of the ${info.name} block size ${info.blockSize}`, { tensor: name, offset: infoOffset });
    }
    if (off > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new CheckpointError(file, `GGUF tensor ${name}: data offset ${off} is beyond any file`, { tensor: name, offset: offAt });
    }
    const relativeOffset = Number(off);
    if (relativeOffset % alignment !== 0) {
      throw new CheckpointError(file, `GGUF tensor ${name}: data offset ${formatBytes(relativeOffset)} is not a multiple of the alignment ${alignment}`, { tensor: name, offset: offAt });
    }
    tensorInfos.push({ name, ne, type, relativeOffset, infoOffset });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensorTypes = new Map<string, number>();
  const ranges: Array<{ name: string; start: number; end: number }> = [];
  for (const ti of tensorInfos) {
    if (tensorTypes.has(ti.name)) throw new CheckpointError(file, `GGUF tensor name appears twice`, { tensor: ti.name, offset: ti.infoOffset });
    tensorTypes.set(ti.name, ti.type);
    const info = ggmlTypeInfo[ti.type];
    const params = ti.ne.reduce((a, b) => a * b, 1);
    const byteLength = (params / info.blockSize) * info.bytesPerBlock;
    const start = dataOffset + ti.relativeOffset;
    const end = start + byteLength;
    if (!Number.isSafeInteger(end) || end > fa.size) {
      throw new CheckpointError(file, `GGUF tensor ${ti.name}: data [${formatBytes(start)}, ${formatBytes(end)}) ends past the end of the file (${formatBytes(fa.size)} bytes)`, { tensor: ti.name, offset: start });
    }
    ranges.push({ name: ti.name, start, end });
  }
  // Sorted by start, a range overlaps an earlier one iff it starts before the furthest end seen so far
  // (empty tensors occupy no bytes and overlap nothing).
  ranges.sort((a, b) => a.start - b.start || a.end - b.end);
  let furthest: { name: string; start: number; end: number } | undefined;
  for (const q of ranges) {
    if (q.end === q.start) continue;
    if (furthest && q.start < furthest.end) {
      throw new CheckpointError(file, `GGUF tensor ${q.name}: data [${formatBytes(q.start)}, ${formatBytes(q.end)}) overlaps tensor ${furthest.name} [${formatBytes(furthest.start)}, ${formatBytes(furthest.end)})`, { tensor: q.name, offset: q.start });
    }
    if (!furthest || q.end > furthest.end) furthest = q;
  }
  return { version, kv, alignment, dataOffset, tensorTypes, tensorInfos };
}

/** Reads one metadata value of GGUF value type `type` (the type id itself is already consumed). */
async function readValue(c: HeaderCursor, type: number, key: string, typeAt: number, depth: number): Promise<GgufValue> {
  const what = `metadata ${key}`;
  switch (type) {
    case 0: await c.need(1, what); return { type: 'uint8', value: c.u8() };
    case 1: await c.need(1, what); return { type: 'int8', value: c.i8() };
    case 2: await c.need(2, what); return { type: 'uint16', value: c.u16() };
    case 3: await c.need(2, what); return { type: 'int16', value: c.i16() };
    case 4: await c.need(4, what); return { type: 'uint32', value: c.u32() };
    case 5: await c.need(4, what); return { type: 'int32', value: c.i32() };
    case 6: await c.need(4, what); return { type: 'float32', value: c.f32() };
    case 7: {
      await c.need(1, what);
      const at = c.pos;
      const b = c.u8();
      if (b > 1) throw new CheckpointError(c.fa.path, `GGUF ${what}: bool byte is ${b}, expected 0 or 1`, { offset: at });
      return { type: 'bool', value: b === 1 };
    }
    case 8: return { type: 'string', value: await c.string(what) };
    case 9: return readArray(c, key, depth);
    case 10: await c.need(8, what); return { type: 'uint64', value: c.u64() };
    case 11: await c.need(8, what); return { type: 'int64', value: c.i64() };
    case 12: await c.need(8, what); return { type: 'float64', value: c.f64() };
    default:
      throw new CheckpointError(c.fa.path, `GGUF ${what}: unknown value type ${type} (expected 0..12)`, { offset: typeAt });
  }
}

async function readArray(c: HeaderCursor, key: string, depth: number): Promise<GgufArray> {
  const what = `metadata ${key}`;
  if (depth >= MAX_ARRAY_NESTING) {
    throw new CheckpointError(c.fa.path, `GGUF ${what}: arrays nested more than ${MAX_ARRAY_NESTING} deep`, { offset: c.pos });
  }
  await c.need(4, `${what} array item type`);
  const itemAt = c.pos;
  const itemType = c.u32();
  if (itemType > 12) {
    throw new CheckpointError(c.fa.path, `GGUF ${what}: unknown array item type ${itemType} (expected 0..12)`, { offset: itemAt });
  }
  const n = await c.count(`${what} array`, VALUE_MIN_BYTES[itemType]);
  const name = VALUE_TYPE_NAMES[itemType];
  if (itemType === 8) {
    const items = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      // Fast path: most tokens fit the current window, so no await per string.
      if (c.has(8)) {
        const at = c.pos;
        const len = c.u64();
        if (len <= BigInt(MAX_STRING_BYTES) && c.has(Number(len))) {
          items[i] = c.decode(Number(len));
          continue;
        }
        c.pos = at;
      }
      items[i] = await c.string(`${what}[${i}]`);
    }
    return { type: 'array', itemType: name, value: items };
  }
  if (itemType === 9) {
    const items: GgufArray[] = [];
    for (let i = 0; i < n; i++) items.push(await readArray(c, `${key}[${i}]`, depth + 1));
    return { type: 'array', itemType: name, value: items };
  }
  if (itemType === 7) {
    await c.need(n, what);
    const raw = c.bytes(n);
    const items = new Array<boolean>(n);
    for (let i = 0; i < n; i++) {
      if (raw[i] > 1) throw new CheckpointError(c.fa.path, `GGUF ${what}[${i}]: bool byte is ${raw[i]}, expected 0 or 1`, { offset: c.pos - n + i });
      items[i] = raw[i] === 1;
    }
    return { type: 'array', itemType: name, value: items };
  }
  const size = VALUE_MIN_BYTES[itemType];
  await c.need(n * size, what);
  const raw = c.bytes(n * size); // a fresh copy: aligned for the typed-array view below
  const buf = raw.buffer;
  let items: GgufArrayItems;
  // GGUF is little-endian, like every platform Node runs on, so the bytes can be viewed directly.
  switch (itemType) {
    case 0: items = new Uint8Array(buf, 0, n); break;
    case 1: items = new Int8Array(buf, 0, n); break;
    case 2: items = new Uint16Array(buf, 0, n); break;
    case 3: items = new Int16Array(buf, 0, n); break;
    case 4: items = new Uint32Array(buf, 0, n); break;
    case 5: items = new Int32Array(buf, 0, n); break;
    case 6: items = new Float32Array(buf, 0, n); break;
    case 10: items = new BigUint64Array(buf, 0, n); break;
    case 11: items = new BigInt64Array(buf, 0, n); break;
    default: items = new Float64Array(buf, 0, n); break; // 12
  }
  return { type: 'array', itemType: name, value: items };
}

/**
 * A JSON-serialisable form of one value for Checkpoint.metadata: numbers as numbers (64-bit integers
 * beyond 2^53 as decimal strings; NaN/Infinity as strings), arrays of up to 64 items in full, longer
 * arrays as {"arrayOf": itemType, "length": N, "first": [first 8 items]}.
 */
export function summariseValue(v: GgufValue): unknown {
  if (v.type === 'array') {
    const items = v.value;
    const n = items.length;
    const take = n <= METADATA_ARRAY_FULL_LIMIT ? n : METADATA_ARRAY_PREVIEW;
    const first: unknown[] = [];
    for (let i = 0; i < take; i++) first.push(jsonItem(items[i]));
    if (n <= METADATA_ARRAY_FULL_LIMIT) return first;
    return { arrayOf: v.itemType, length: n, first };
  }
  return jsonItem(v.value);
}

function jsonItem(x: unknown): unknown {
  if (typeof x === 'bigint') return Number.isSafeInteger(Number(x)) ? Number(x) : x.toString();
  if (typeof x === 'number') return Number.isFinite(x) ? x : String(x);
  if (typeof x === 'object' && x !== null && (x as GgufArray).type === 'array') return summariseValue(x as GgufArray);
  return x;
}

