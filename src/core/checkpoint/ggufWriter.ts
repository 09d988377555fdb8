/**
 * GGUF v3 writer, streamed one tensor at a time and written atomically (see atomicWrite.ts).
 *
 * Layout written (ggml docs/gguf.md; all little-endian):
 *   "GGUF" | u32 version = 3 | u64 tensor_count | u64 metadata_kv_count
 *   kv pairs { string key | u32 value_type | value }         (string = u64 length + UTF-8 bytes)
 *   tensor infos { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   zero padding to `general.alignment` (default 32)           -> the data region
 *   tensor data, each tensor starting at a multiple of the alignment and followed by zero padding
 *   to the next multiple (as gguf-py and ggml's gguf_write do, the last tensor included).
 * ne is ggml's order, fastest-varying first: the reverse of the row-major shape.
 *
 * Tensors are stored as F32, F16, BF16 or Q8_0 from float values, or copied through as raw bytes of
 * any ggml type. Q8_0 needs every row (ne0) to be a whole number of 32-element blocks; otherwise
 * the tensor is stored as F16 instead (llama.cpp's quantizer falls back the same way) and the
 * fallback is reported in the result.
 */
import * as nodePath from 'node:path';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import { withAtomicOutput } from './atomicWrite';
import { ggmlTypeId, ggmlTypeInfo, quantizeQ8_0 } from './ggmlQuants';
import { writeFloatOrRaw, type WriteProgress } from './safetensorsWriter';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAX_DIMS, type GgufArray, type GgufCheckpoint, type GgufValue, type GgufValueTypeName } from './gguf';

export const GGUF_WRITE_VERSION = 3;

/** Types a Float32Array can be encoded to. */
export type GgufStoreType = 'F32' | 'F16' | 'BF16' | 'Q8_0';
const ENCODABLE: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'Q8_0']);

/** llama.cpp's `enum llama_ftype` values for `general.file_type` (a uint32). */
export const GGUF_FILE_TYPE = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q8_0: 7, MOSTLY_BF16: 32 } as const;

export interface GgufTensorSource {
  name: string;
  /** Row-major shape (written reversed, as ggml's ne). */
  shape: readonly number[];
  /**
   * ggml type name to store. A Float32Array from `data()` is encoded to it (F32, F16, BF16, Q8_0);
   * a Uint8Array is copied unchanged and must be exactly the byte size of this type for the shape
   * (any ggml type: norms copied through, or already-quantized tensors).
   */
  type: string;
  data: () => Promise<Float32Array | Uint8Array>;
}

export interface GgufWriteOptions {
  /** The files the output is derived from: the target may not be any of them. */
  inputs: readonly string[];
  /** Metadata key/values in file order (e.g. `GgufCheckpoint.gguf.kv`), written unchanged. */
  kv?: ReadonlyMap<string, GgufValue> | Iterable<[string, GgufValue]>;
  /** Keys to add or replace (replaced keys keep their position); a plain string is a GGUF string. */
  extraKv?: Record<string, GgufValue | string>;
  /** Data alignment; default: `general.alignment` from kv, else 32. Setting it also sets the key. */
  alignment?: number;
  signal?: AbortSignal;
  onProgress?: (p: WriteProgress & { storedType: string }) => void;
}

export interface GgufWrittenTensor {
  name: string;
  /** ggml order. */
  ne: number[];
  /** The type requested and the type stored (differ on a Q8_0 -> F16 fallback). */
  requestedType: string;
  storedType: string;
  typeId: number;
  /** Offset relative to the data region. */
  relativeOffset: number;
  byteLength: number;
}

export interface GgufWriteResult {
  file: string;
  alignment: number;
  /** Absolute offset of the data region. */
  dataOffset: number;
  tensors: GgufWrittenTensor[];
  /** Tensors stored in another type than requested, and why. */
  fallbacks: Array<{ name: string; requested: string; stored: string; reason: string }>;
  fileSize: number;
}

/**
 * The type a tensor of this shape will actually be stored as: Q8_0 falls back to F16 when the row
 * length ne0 (the last row-major dimension) is not a multiple of the 32-element block, as llama.cpp's
 * quantizer does for e.g. ffn_down of width 172.
 */
export function resolveGgufStoreType(shape: readonly number[], requested: string): { type: string; reason?: string } {
  const info = ggmlTypeInfo[ggmlTypeId(requested) ?? -1];
  const ne0 = shape.length > 0 ? shape[shape.length - 1] : 1;
  if (info && info.blockSize > 1 && ne0 % info.blockSize !== 0 && requested === 'Q8_0') {
    return { type: 'F16', reason: `row length ${ne0} is not a multiple of the Q8_0 block size 32` };
  }
  return { type: requested };
}

/** Little-endian byte sink for the header. */
class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private dv = new DataView(this.cur.buffer);
  private used = 0;
  length = 0;
  private readonly utf8 = new TextEncoder();

  private room(n: number): void {
    if (this.used + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.used));
    this.cur = new Uint8Array(Math.max(1 << 16, n));
    this.dv = new DataView(this.cur.buffer);
    this.used = 0;
  }
  private adv(n: number): number { const o = this.used; this.used += n; this.length += n; return o; }
  u8(v: number): void { this.room(1); this.cur[this.adv(1)] = v; }
  i8(v: number): void { this.room(1); this.dv.setInt8(this.adv(1), v); }
  u16(v: number): void { this.room(2); this.dv.setUint16(this.adv(2), v, true); }
  i16(v: number): void { this.room(2); this.dv.setInt16(this.adv(2), v, true); }
  u32(v: number): void { this.room(4); this.dv.setUint32(this.adv(4), v, true); }
  i32(v: number): void { this.room(4); this.dv.setInt32(this.adv(4), v, true); }
  f32(v: number): void { this.room(4); this.dv.setFloat32(this.adv(4), v, true); }
  f64(v: number): void { this.room(8); this.dv.setFloat64(this.adv(8), v, true); }
  u64(v: bigint | number): void { this.room(8); this.dv.setBigUint64(this.adv(8), BigInt(v), true); }
  i64(v: bigint | number): void { this.room(8); this.dv.setBigInt64(this.adv(8), BigInt(v), true); }
  bytes(b: Uint8Array): void { this.room(b.length); this.cur.set(b, this.adv(b.length)); }
  string(s: string): void { const b = this.utf8.encode(s); this.u64(b.length); this.bytes(b); }
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of [...this.chunks, this.cur.subarray(0, this.used)]) { out.set(c, o); o += c.length; }
    return out;
  }
}

const TYPE_ID: Record<GgufValueTypeName, number> = {
  uint8: 0, int8: 1, uint16: 2, int16: 3, uint32: 4, int32: 5, float32: 6, bool: 7, string: 8, array: 9, uint64: 10, int64: 11, float64: 12,
};

/** Writes one scalar of a value type (the type id itself is written by the caller). */
function writeScalar(sink: ByteSink, type: GgufValueTypeName, v: unknown, key: string): void {
  const num = () => {
    if (typeof v !== 'number') throw new Error(`GGUF metadata ${key}: ${type} value must be a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case 'uint8': sink.u8(num()); break;
    case 'int8': sink.i8(num()); break;
    case 'uint16': sink.u16(num()); break;
    case 'int16': sink.i16(num()); break;
    case 'uint32': sink.u32(num()); break;
    case 'int32': sink.i32(num()); break;
    case 'float32': sink.f32(num()); break;
    case 'float64': sink.f64(num()); break;
    case 'uint64': sink.u64(v as bigint | number); break;
    case 'int64': sink.i64(v as bigint | number); break;
    case 'bool': sink.u8(v ? 1 : 0); break;
    case 'string':
      if (typeof v !== 'string') throw new Error(`GGUF metadata ${key}: string value must be a string, got ${typeof v}`);
      sink.string(v);
      break;
    default: throw new Error(`GGUF metadata ${key}: cannot write a ${type} as a scalar`);
  }
}

function writeArray(sink: ByteSink, a: GgufArray, key: string): void {
  const itemId = TYPE_ID[a.itemType];
  if (itemId === undefined) throw new Error(`GGUF metadata ${key}: unknown array item type ${a.itemType}`);
  sink.u32(itemId);
  const items = a.value as ArrayLike<unknown>;
  sink.u64(items.length);
  // Numeric typed arrays are already little-endian on every host Node runs on: copy their bytes.
  if (ArrayBuffer.isView(items) && !(items instanceof DataView)) {
    const t = items as unknown as Uint8Array;
    const expectBytes = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8][itemId];
    if (expectBytes === t.BYTES_PER_ELEMENT && itemId !== 7) {
      sink.bytes(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
      return;
    }
  }
  for (let i = 0; i < items.length; i++) {
    if (a.itemType === 'array') writeArray(sink, items[i] as GgufArray, `${key}[${i}]`);
    else writeScalar(sink, a.itemType, items[i], `${key}[${i}]`);
  }
}

function writeKv(sink: ByteSink, key: string, v: GgufValue): void {
  sink.string(key);
  const id = TYPE_ID[v.type];
  if (id === undefined) throw new Error(`GGUF metadata ${key}: unknown value type ${String((v as { type: unknown }).type)}`);
  sink.u32(id);
  if (v.type === 'array') writeArray(sink, v, key);
  else writeScalar(sink, v.type, v.value, key);
}

/**
 * Writes a GGUF v3 file: the metadata of `opts.kv` (+ `extraKv`), then `tensors` in the order given,
 * each produced by its `data()` only when its turn comes. Cancellation is checked at every tensor
 * boundary; on any failure the temporary file is removed and the target is untouched.
 */
export async function writeGguf(target: string, tensors: readonly GgufTensorSource[], opts: GgufWriteOptions): Promise<GgufWriteResult> {
  const file = nodePath.resolve(target);
  const kv = new Map<string, GgufValue>(opts.kv ?? []);
  for (const [k, v] of Object.entries(opts.extraKv ?? {})) kv.set(k, typeof v === 'string' ? { type: 'string', value: v } : v);
  if (opts.alignment !== undefined) kv.set('general.alignment', { type: 'uint32', value: opts.alignment });
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.get('general.alignment');
  if (al !== undefined) {
    if (al.type !== 'uint32' || al.value <= 0 || (al.value & (al.value - 1)) !== 0) {
      throw new CheckpointError(file, `general.alignment must be a power-of-two uint32, got ${al.type} ${String(al.value)}`);
    }
    alignment = al.value;
  }
  const align = (n: number) => Math.ceil(n / alignment) * alignment;

  // Plan every tensor: stored type, ne, byte size, offset.
  const names = new Set<string>();
  const fallbacks: GgufWriteResult['fallbacks'] = [];
  let offset = 0;
  const planned: GgufWrittenTensor[] = tensors.map((t) => {
    if (typeof t.name !== 'string' || t.name.length === 0) throw new CheckpointError(file, `invalid tensor name ${JSON.stringify(t.name)}`);
    if (names.has(t.name)) throw new CheckpointError(file, 'tensor name given twice', { tensor: t.name });
    names.add(t.name);
    if (t.shape.length > GGUF_MAX_DIMS) throw new CheckpointError(file, `${t.shape.length} dimensions; ggml allows at most ${GGUF_MAX_DIMS}`, { tensor: t.name });
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CheckpointError(file, `shape ${JSON.stringify(t.shape)} must be non-negative integers`, { tensor: t.name });
    if (ggmlTypeId(t.type) === undefined) throw new CheckpointError(file, `unknown ggml type ${JSON.stringify(t.type)}`, { tensor: t.name });
    const { type, reason } = resolveGgufStoreType(t.shape, t.type);
    if (reason) fallbacks.push({ name: t.name, requested: t.type, stored: type, reason });
    const typeId = ggmlTypeId(type)!;
    const info = ggmlTypeInfo[typeId];
    // A 0-dimensional tensor is written as ne = [1]: ggml tensors have at least one dimension.
    const ne = t.shape.length === 0 ? [1] : t.shape.slice().reverse();
    const params = ne.reduce((a, b) => a * b, 1);
    if (ne[0] % info.blockSize !== 0) {
      throw new CheckpointError(file, `row length ne0 = ${ne[0]} is not a multiple of the ${info.name} block size ${info.blockSize}`, { tensor: t.name });
    }
    const byteLength = (params / info.blockSize) * info.bytesPerBlock;
    const w: GgufWrittenTensor = { name: t.name, ne, requestedType: t.type, storedType: type, typeId, relativeOffset: offset, byteLength };
    offset = align(offset + byteLength);
    return w;
  });
  const dataBytes = offset;

  const header = new ByteSink();
  header.bytes(new TextEncoder().encode('GGUF'));
  header.u32(GGUF_WRITE_VERSION);
  header.u64(planned.length);
  header.u64(kv.size);
  try {
    for (const [k, v] of kv) writeKv(header, k, v);
  } catch (e) {
    throw new CheckpointError(file, (e as Error).message, { cause: e });
  }
  for (const w of planned) {
    header.string(w.name);
    header.u32(w.ne.length);
    for (const d of w.ne) header.u64(d);
    header.u32(w.typeId);
    header.u64(w.relativeOffset);
  }
  const dataOffset = align(header.length);
  const totalTensorBytes = planned.reduce((a, w) => a + w.byteLength, 0);

  await withAtomicOutput(file, opts.inputs, async (out) => {
    await out.write(header.toBytes());
    await out.padTo(alignment);
    let bytesWritten = 0;
    for (let i = 0; i < tensors.length; i++) {
      throwIfAborted(opts.signal);
      const t = tensors[i], w = planned[i];
      if (out.position !== dataOffset + w.relativeOffset) {
        throw new Error(`internal: ${w.name} would land at ${out.position}, planned ${dataOffset + w.relativeOffset}`);
      }
      let values: Float32Array | Uint8Array;
      try {
        values = await t.data();
      } catch (e) {
        if (e instanceof CheckpointError || (e as Error)?.name === 'CancelledError') throw e;
        throw new CheckpointError(file, `producing the tensor's values failed: ${(e as Error)?.message ?? String(e)}`, { tensor: t.name, cause: e });
      }
      const params = w.ne.reduce((a, b) => a * b, 1);
      if (values instanceof Float32Array && w.storedType === 'Q8_0') {
        if (values.length !== params) {
          throw new CheckpointError(file, `the producer returned ${formatBytes(values.length)} values, the shape has ${formatBytes(params)} elements`, { tensor: w.name });
        }
        await out.write(quantizeQ8_0(values));
      } else if (values instanceof Float32Array && !ENCODABLE.has(w.storedType)) {
        throw new CheckpointError(file, `float values cannot be stored as ${w.storedType} (only F32, F16, BF16, Q8_0; give raw bytes for other types)`, { tensor: w.name });
      } else {
        await writeFloatOrRaw(out, file, w.name, w.storedType, params, w.byteLength, values);
      }
      await out.padTo(alignment);
      bytesWritten += w.byteLength;
      opts.onProgress?.({ index: i, count: tensors.length, name: w.name, file, bytesWritten, totalBytes: totalTensorBytes, storedType: w.storedType });
    }
  }, { signal: opts.signal });

  return { file, alignment, dataOffset, tensors: planned, fallbacks, fileSize: dataOffset + dataBytes };
}

export interface GgufConvertOptions {
  /**
   * Type for each tensor of two or more dimensions (the weight matrices and embeddings): one for
   * all, or per tensor; undefined keeps the stored bytes. Tensors of one dimension (norms, biases)
   * are always copied unchanged, as llama.cpp keeps them F32 when it quantizes.
   */
  type?: GgufStoreType | ((t: { name: string; dtype: string; shape: number[] }) => GgufStoreType | undefined);
}

/**
 * The tensors of an open GGUF checkpoint as writer sources, in file order, with names and shapes
 * unchanged. A tensor whose requested type equals its stored type is copied byte for byte.
 */
export function ggufSourcesFrom(ckpt: GgufCheckpoint, opts: GgufConvertOptions = {}): GgufTensorSource[] {
  return ckpt.tensors.map((t) => {
    const wanted = t.shape.length >= 2 ? (typeof opts.type === 'function' ? opts.type(t) : opts.type) : undefined;
    if (wanted === undefined || wanted === t.dtype) return { name: t.name, shape: t.shape, type: t.dtype, data: () => t.readRaw() };
    return { name: t.name, shape: t.shape, type: wanted, data: () => t.read() };
  });
}
