/**
 * safetensors writer: single files and sharded sets (`<prefix>-00001-of-0000N.safetensors` +
 * `<prefix>.safetensors.index.json`), streamed one tensor at a time, written atomically.
 *
 * Layout written (huggingface/safetensors, docs "Format"):
 *   u64 little-endian N | N bytes of UTF-8 JSON, padded with spaces so N is a multiple of 8 |
 *   the tensors' bytes back to back, in the order given, row-major, little-endian.
 * The JSON is {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
 * with `data_offsets` relative to the data region and contiguous (end of one = begin of the next).
 * Since the header holds every offset, the caller declares all tensors up front (name, shape, dtype);
 * their values are produced one at a time by `data()`, so only one tensor is in memory at once.
 *
 * Factorized tensors (low-rank and MPO compression) are stored as their factors under derived names,
 * with a `tensor_scalpel.factorization` metadata entry describing how to contract them back; see
 * `reconstructFactorized`.
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { Checkpoint } from './types';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import { DENSE_DTYPE_BYTES, halfBitsFromFloat32Bits } from './dtype';
import { SAFETENSORS_DTYPES } from './safetensors';
import { withAtomicOutputs, type BufferedFileWriter } from './atomicWrite';

/** The float dtypes a Float32Array can be encoded to. */
export type SafetensorsFloatDtype = 'F32' | 'F16' | 'BF16';
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16']);
const SAFETENSORS_DTYPE_SET: ReadonlySet<string> = new Set(SAFETENSORS_DTYPES);

/** One tensor to write. */
export interface TensorSource {
  name: string;
  /** Row-major shape. */
  shape: readonly number[];
  /**
   * The dtype to store. A Float32Array from `data()` is encoded to it (F32, F16 or BF16, round to
   * nearest even); a Uint8Array is stored unchanged and must hold exactly params x element-size bytes
   * of this dtype (any safetensors dtype) — the pass-through for tensors surgery did not touch.
   */
  dtype: string;
  /** Produces the values when the tensor's turn comes; called exactly once. */
  data: () => Promise<Float32Array | Uint8Array>;
}

/** Reported after each tensor is written. */
export interface WriteProgress {
  /** 0-based index of the tensor just written, and the total count. */
  index: number;
  count: number;
  name: string;
  /** The final path of the file it went into. */
  file: string;
  /** Tensor bytes written so far and in total (headers excluded). */
  bytesWritten: number;
  totalBytes: number;
}

export interface SafetensorsWriteOptions {
  /** The files the output is derived from (Checkpoint.files): the target may not be any of them. */
  inputs: readonly string[];
  /** `__metadata__` (string -> string): the recipe, the input's name, size and sha256, ... */
  metadata?: Record<string, string>;
  /**
   * Added as `__metadata__.format` when the metadata is not empty and has no "format" key (default
   * 'pt'; null: never): transformers refuses a safetensors file whose metadata lacks a format of
   * pt/tf/flax/mlx, while a file without any metadata loads.
   */
  formatTag?: string | null;
  /**
   * Write shards of at most this many tensor bytes each (a tensor larger than that gets a shard of
   * its own) plus an index. The target then names the index (`x.safetensors.index.json`) or the
   * prefix (`x.safetensors` -> shards `x-00001-of-0000N.safetensors`, index `x.safetensors.index.json`).
   * The index is written even when everything fits one shard.
   */
  maxShardBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: WriteProgress) => void;
}

export interface SafetensorsWriteResult {
  /** Every file written: the shards in order, then the index (if sharded). */
  files: string[];
  /** The index file when sharded. */
  index?: string;
  /** Sum of tensor bytes (the index's metadata.total_size). */
  totalSize: number;
  /** Tensor name -> the file (final path) it was written to. */
  weightMap: Record<string, string>;
}

/** Bytes one tensor occupies: params x element size. */
export function tensorByteLength(file: string, t: Pick<TensorSource, 'name' | 'shape' | 'dtype'>): number {
  const size = DENSE_DTYPE_BYTES[t.dtype];
  if (size === undefined || !SAFETENSORS_DTYPE_SET.has(t.dtype)) {
    throw new CheckpointError(file, `cannot store dtype ${JSON.stringify(t.dtype)}; expected one of ${SAFETENSORS_DTYPES.join(' ')}`, { tensor: t.name });
  }
  let params = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new CheckpointError(file, `shape ${JSON.stringify(t.shape)} must be non-negative integers`, { tensor: t.name });
    }
    params *= d;
  }
  const bytes = params * size;
  if (!Number.isSafeInteger(bytes)) throw new CheckpointError(file, `shape ${JSON.stringify(t.shape)} is too large`, { tensor: t.name });
  return bytes;
}

/**
 * The header bytes (length prefix + JSON padded with spaces to a multiple of 8) for tensors laid out
 * back to back in the order given. Built as text by hand so the key order is exactly the given order
 * (a JS object would move integer-like names such as "0" to the front).
 */
export function buildSafetensorsHeader(
  entries: ReadonlyArray<{ name: string; dtype: string; shape: readonly number[]; byteLength: number }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.byteLength] })}`);
    offset += e.byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  // The reference writer pads with spaces so the data region starts 8-byte aligned.
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** Elements encoded per chunk, so an F16 copy of a 1 GB tensor never needs a second full buffer. */
const ENCODE_CHUNK = 1 << 20;

const halfBits = halfBitsFromFloat32Bits;

/** bfloat16 = the top 16 bits of float32, round to nearest even; NaN stays a (quiet) NaN (= dtype.ts floatToBf16). */
function bf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encodes values[start, end) as little-endian F16 or BF16 into a fresh byte array. */
export function encodeHalfChunk(values: Float32Array, start: number, end: number, dtype: 'F16' | 'BF16'): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(end - start);
  const f = dtype === 'F16' ? halfBits : bf16Bits;
  for (let i = start; i < end; i++) out[i - start] = f(bits[i]);
  if (!LITTLE_ENDIAN_HOST) for (let i = 0; i < out.length; i++) out[i] = ((out[i] & 0xff) << 8) | (out[i] >>> 8);
  return new Uint8Array(out.buffer);
}

/** Little-endian float32 bytes of values[start, end). */
function f32Chunk(values: Float32Array, start: number, end: number): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(values.buffer, values.byteOffset + start * 4, (end - start) * 4);
  const out = new Uint8Array((end - start) * 4);
  const dv = new DataView(out.buffer);
  for (let i = start; i < end; i++) dv.setFloat32((i - start) * 4, values[i], true);
  return out;
}

/**
 * Writes one produced tensor: encodes a Float32Array to `dtype` chunk by chunk, or copies a
 * Uint8Array through after checking its length. Shared with the other writers.
 */
export async function writeFloatOrRaw(
  out: BufferedFileWriter, file: string, name: string, dtype: string, params: number, byteLength: number,
  values: Float32Array | Uint8Array,
): Promise<void> {
  if (values instanceof Uint8Array) {
    if (values.byteLength !== byteLength) {
      throw new CheckpointError(file, `raw data for ${dtype} has ${formatBytes(values.byteLength)} bytes, the shape needs ${formatBytes(byteLength)}`, { tensor: name });
    }
    await out.write(values);
    return;
  }
  if (!(values instanceof Float32Array)) {
    throw new CheckpointError(file, `the tensor's producer returned ${Object.prototype.toString.call(values)}, expected a Float32Array or a Uint8Array`, { tensor: name });
  }
  if (values.length !== params) {
    throw new CheckpointError(file, `the producer returned ${formatBytes(values.length)} values, the shape has ${formatBytes(params)} elements`, { tensor: name });
  }
  if (!FLOAT_DTYPES.has(dtype)) {
    throw new CheckpointError(file, `float values cannot be stored as ${dtype} (only F32, F16, BF16; give raw bytes for other dtypes)`, { tensor: name });
  }
  for (let s = 0; s < params; s += ENCODE_CHUNK) {
    const e = Math.min(params, s + ENCODE_CHUNK);
    await out.write(dtype === 'F32' ? f32Chunk(values, s, e) : encodeHalfChunk(values, s, e, dtype as 'F16' | 'BF16'));
  }
}

/** Shard file names the Hugging Face way: `<prefix>-00001-of-00003.safetensors`. */
export function shardFileName(prefix: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${prefix}-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/** Splits tensors into consecutive groups of at most maxBytes each (a larger tensor alone). */
function planShards(byteLengths: readonly number[], maxBytes: number): number[][] {
  const shards: number[][] = [];
  let cur: number[] = [];
  let size = 0;
  byteLengths.forEach((b, i) => {
    if (cur.length > 0 && size + b > maxBytes) {
      shards.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(i);
    size += b;
  });
  if (cur.length > 0 || shards.length === 0) shards.push(cur);
  return shards;
}

/**
 * Writes `tensors` to `target` as safetensors (or as shards + index with `maxShardBytes`), producing
 * one tensor at a time, through temporary files renamed into place only when everything succeeded.
 * Cancellation (opts.signal) is checked at every tensor boundary; on any failure nothing is left behind.
 */
export async function writeSafetensors(target: string, tensors: readonly TensorSource[], opts: SafetensorsWriteOptions): Promise<SafetensorsWriteResult> {
  const abs = nodePath.resolve(target);
  const given = opts.metadata ?? {};
  const tag = opts.formatTag === undefined ? 'pt' : opts.formatTag;
  const metadata: Record<string, string> = tag !== null && Object.keys(given).length > 0 && !('format' in given) ? { format: tag, ...given } : { ...given };
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new CheckpointError(abs, `__metadata__ value for ${JSON.stringify(k)} must be a string, got ${typeof v}`);
  }
  const names = new Set<string>();
  const byteLengths = tensors.map((t) => {
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new CheckpointError(abs, `invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (names.has(t.name)) throw new CheckpointError(abs, 'tensor name given twice', { tensor: t.name });
    names.add(t.name);
    return tensorByteLength(abs, t);
  });
  const totalSize = byteLengths.reduce((a, b) => a + b, 0);

  let shardPlan: number[][];
  let shardPaths: string[];
  let indexPath: string | undefined;
  if (opts.maxShardBytes !== undefined) {
    if (!(opts.maxShardBytes > 0)) throw new CheckpointError(abs, `maxShardBytes must be positive, got ${opts.maxShardBytes}`);
    const base = nodePath.basename(abs);
    const prefix = base.endsWith('.safetensors.index.json') ? base.slice(0, -'.safetensors.index.json'.length)
      : base.endsWith('.safetensors') ? base.slice(0, -'.safetensors'.length) : base;
    if (prefix.length === 0) throw new CheckpointError(abs, 'cannot derive a shard prefix from this file name');
    indexPath = nodePath.join(nodePath.dirname(abs), `${prefix}.safetensors.index.json`);
    shardPlan = planShards(byteLengths, opts.maxShardBytes);
    shardPaths = shardPlan.map((_, i) => nodePath.join(nodePath.dirname(abs), shardFileName(prefix, i, shardPlan.length)));
  } else {
    shardPlan = [tensors.map((_, i) => i)];
    shardPaths = [abs];
  }
  const weightMap: Record<string, string> = {};
  shardPlan.forEach((idx, s) => { for (const i of idx) weightMap[tensors[i].name] = shardPaths[s]; });

  const targets = indexPath ? [...shardPaths, indexPath] : shardPaths;
  let bytesWritten = 0;
  await withAtomicOutputs(targets, opts.inputs, async (set) => {
    let count = 0;
    for (let s = 0; s < shardPlan.length; s++) {
      throwIfAborted(opts.signal);
      const out = await set.open(s);
      const entries = shardPlan[s].map((i) => ({ name: tensors[i].name, dtype: tensors[i].dtype, shape: tensors[i].shape.slice(), byteLength: byteLengths[i] }));
      await out.write(buildSafetensorsHeader(entries, metadata));
      for (const i of shardPlan[s]) {
        throwIfAborted(opts.signal);
        const t = tensors[i];
        const params = byteLengths[i] / DENSE_DTYPE_BYTES[t.dtype];
        let values: Float32Array | Uint8Array;
        try {
          values = await t.data();
        } catch (e) {
          if (e instanceof CheckpointError || (e as Error)?.name === 'CancelledError') throw e;
          throw new CheckpointError(shardPaths[s], `producing the tensor's values failed: ${(e as Error)?.message ?? String(e)}`, { tensor: t.name, cause: e });
        }
        await writeFloatOrRaw(out, shardPaths[s], t.name, t.dtype, params, byteLengths[i], values);
        bytesWritten += byteLengths[i];
        opts.onProgress?.({ index: count++, count: tensors.length, name: t.name, file: shardPaths[s], bytesWritten, totalBytes: totalSize });
      }
      await set.finish(s);
    }
    if (indexPath) {
      throwIfAborted(opts.signal);
      const out = await set.open(shardPaths.length);
      const relMap: Record<string, string> = {};
      for (const t of tensors) relMap[t.name] = nodePath.basename(weightMap[t.name]);
      const index = { metadata: { ...metadata, total_size: totalSize }, weight_map: relMap };
      await out.write(Buffer.from(JSON.stringify(index, null, 2) + '\n', 'utf8'));
      await set.finish(shardPaths.length);
    }
  }, { signal: opts.signal });

  return { files: targets, index: indexPath, totalSize, weightMap };
}

/** Options for `sourcesFromCheckpoint`. */
export interface CheckpointSourceOptions {
  /**
   * The dtype to store each tensor as: one for all, or per tensor (undefined = keep). Keeping means:
   * the stored bytes unchanged when the input is safetensors, else the input dtype if it is F32, F16
   * or BF16, else F32 (quantized GGUF, integer or F64 tensors from other formats are decoded).
   */
  dtype?: SafetensorsFloatDtype | ((t: { name: string; dtype: string; shape: number[] }) => SafetensorsFloatDtype | undefined);
}

/**
 * The tensors of any open checkpoint as writer sources (each reads its tensor only when written).
 * Surgery replaces the sources of the tensors it changes; this is the plain conversion.
 */
export function sourcesFromCheckpoint(ckpt: Checkpoint, opts: CheckpointSourceOptions = {}): TensorSource[] {
  return ckpt.tensors.map((t) => {
    const wanted = typeof opts.dtype === 'function' ? opts.dtype(t) : opts.dtype;
    if (wanted === undefined && ckpt.format === 'safetensors') {
      return { name: t.name, shape: t.shape, dtype: t.dtype, data: () => t.readRaw() };
    }
    const dtype = wanted ?? (FLOAT_DTYPES.has(t.dtype) ? t.dtype : 'F32');
    return { name: t.name, shape: t.shape, dtype, data: () => t.read() };
  });
}

// ---------------------------------------------------------------------------------------------
// Factorized tensors

/** The `__metadata__` key holding the factorization description (a JSON string). */
export const FACTORIZATION_METADATA_KEY = 'tensor_scalpel.factorization';

/** How the MPO cores contract back (written into the metadata so the file explains itself). */
export const MPO_CONTRACTION =
  'W[r, c] = sum_{a_1..a_{N-1}} G_1[0, o_1, i_1, a_1] G_2[a_1, o_2, i_2, a_2] ... G_N[a_{N-1}, o_N, i_N, 0], ' +
  'cores G_k = <name>.mpo.core.<k> (k = 1..N) of shape [chi_{k-1}, o_k, i_k, chi_k], chi_0 = chi_N = 1; ' +
  'r = mixed-radix (o_1, ..., o_N) with o_1 most significant, c likewise over (i_1, ..., i_N); ' +
  'the result is [prod o, prod i], cropped to the original [rows, cols] (zero padding at the end of each side)';
export const LOWRANK_CONTRACTION = 'W = a @ b, a = <name>.lowrank.a [rows, rank], b = <name>.lowrank.b [rank, cols]';

export interface LowRankFactorization {
  kind: 'lowrank';
  /** The original [rows, cols]. */
  shape: [number, number];
  rank: number;
  /** Names of a [rows, rank] and b [rank, cols]. */
  tensors: [string, string];
  /** The original tensor's dtype (informative). */
  dtype?: string;
  contraction: string;
}

export interface MpoFactorization {
  kind: 'mpo';
  /** The original [rows, cols]. */
  shape: [number, number];
  outFactors: number[];
  inFactors: number[];
  /** Internal bond dimensions chi_1 .. chi_{N-1}. */
  bondDims: number[];
  /** [prod outFactors, prod inFactors] >= shape; the excess rows/columns are zero padding, cropped. */
  paddedShape: [number, number];
  /** Core names, site 1 first. */
  tensors: string[];
  dtype?: string;
  contraction: string;
}

export type FactorizedTensor = LowRankFactorization | MpoFactorization;

export function lowRankTensorNames(original: string): { a: string; b: string } {
  return { a: `${original}.lowrank.a`, b: `${original}.lowrank.b` };
}

/** The name of MPO core k (1-based, k = 1..N). */
export function mpoCoreName(original: string, k: number): string {
  return `${original}.mpo.core.${k}`;
}

/** The factorization entry for W [rows, cols] ~= a [rows, rank] @ b [rank, cols]. */
export function lowRankFactorization(original: string, rows: number, cols: number, rank: number, dtype?: string): LowRankFactorization {
  const { a, b } = lowRankTensorNames(original);
  return { kind: 'lowrank', shape: [rows, cols], rank, tensors: [a, b], ...(dtype ? { dtype } : {}), contraction: LOWRANK_CONTRACTION };
}

/** The factorization entry for an MPO with the given site factors and internal bond dimensions. */
export function mpoFactorization(original: string, rows: number, cols: number, outFactors: number[], inFactors: number[], bondDims: number[], dtype?: string): MpoFactorization {
  if (outFactors.length !== inFactors.length || bondDims.length !== outFactors.length - 1) {
    throw new Error(`MPO of ${original}: ${outFactors.length} out factors, ${inFactors.length} in factors and ${bondDims.length} bonds do not describe N sites with N - 1 bonds`);
  }
  const po = outFactors.reduce((a, b) => a * b, 1);
  const pi = inFactors.reduce((a, b) => a * b, 1);
  if (po < rows || pi < cols) throw new Error(`MPO of ${original}: factors give [${po}, ${pi}], smaller than the tensor [${rows}, ${cols}]`);
  return {
    kind: 'mpo', shape: [rows, cols], outFactors: outFactors.slice(), inFactors: inFactors.slice(), bondDims: bondDims.slice(),
    paddedShape: [po, pi], tensors: outFactors.map((_, k) => mpoCoreName(original, k + 1)), ...(dtype ? { dtype } : {}), contraction: MPO_CONTRACTION,
  };
}

/** Shapes of the stored factor tensors of one entry, in `tensors` order. */
export function factorShapes(f: FactorizedTensor): number[][] {
  if (f.kind === 'lowrank') return [[f.shape[0], f.rank], [f.rank, f.shape[1]]];
  const chi = [1, ...f.bondDims, 1];
  return f.outFactors.map((o, k) => [chi[k], o, f.inFactors[k], chi[k + 1]]);
}

/** The metadata value (JSON) for a set of factorized tensors: {"version": 1, "tensors": {original: entry}}. */
export function factorizationMetadataValue(entries: Record<string, FactorizedTensor>): string {
  return JSON.stringify({ version: 1, tensors: entries });
}

const isPosInt = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) > 0;
const isPosIntArray = (x: unknown): x is number[] => Array.isArray(x) && x.every(isPosInt);

/**
 * Reads and validates the factorization description from a checkpoint's metadata (safetensors
 * `__metadata__`, or a sharded index's metadata). Returns an empty map when there is none.
 */
export function parseFactorizationMetadata(metadata: Record<string, unknown>, file = '(metadata)'): Map<string, FactorizedTensor> {
  const raw = metadata[FACTORIZATION_METADATA_KEY];
  const out = new Map<string, FactorizedTensor>();
  if (raw === undefined) return out;
  const bad = (msg: string, tensor?: string): never => {
    throw new CheckpointError(file, `${FACTORIZATION_METADATA_KEY}: ${msg}`, tensor !== undefined ? { tensor } : {});
  };
  let json: unknown;
  try {
    json = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch (e) {
    return bad(`not valid JSON (${(e as Error).message})`);
  }
  const tensors = (json as { tensors?: unknown })?.tensors;
  if (tensors === null || typeof tensors !== 'object' || Array.isArray(tensors)) return bad('expected {"version": 1, "tensors": {name: entry}}');
  for (const [name, e] of Object.entries(tensors as Record<string, unknown>)) {
    if (e === null || typeof e !== 'object') bad('entry must be an object', name);
    const f = e as Record<string, unknown>;
    const shape = f.shape, list = f.tensors;
    if (!isPosIntArray(shape) || shape.length !== 2) return bad('shape must be [rows, cols]', name);
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) return bad('tensors must be a list of names', name);
    if (f.kind === 'lowrank') {
      if (!isPosInt(f.rank) || list.length !== 2) bad('a lowrank entry needs a positive rank and two tensors [a, b]', name);
    } else if (f.kind === 'mpo') {
      const { outFactors, inFactors, bondDims } = f;
      if (!isPosIntArray(outFactors) || !isPosIntArray(inFactors) || inFactors.length !== outFactors.length || outFactors.length === 0) {
        return bad('outFactors and inFactors must be equally long lists of positive integers', name);
      }
      const n = outFactors.length;
      if (!isPosIntArray(bondDims) || bondDims.length !== n - 1) bad(`bondDims must list the ${n - 1} internal bond dimensions`, name);
      if (list.length !== n) bad(`an MPO of ${n} sites needs ${n} core tensors`, name);
      const po = outFactors.reduce((a, b) => a * b, 1), pi = inFactors.reduce((a, b) => a * b, 1);
      if (po < shape[0] || pi < shape[1]) bad(`factors give [${po}, ${pi}], smaller than the shape [${shape}]`, name);
      f.paddedShape = [po, pi];
    } else {
      bad(`unknown kind ${JSON.stringify(f.kind)} (expected lowrank or mpo)`, name);
    }
    out.set(name, f as unknown as FactorizedTensor);
  }
  return out;
}

/** C [m, n] = A [m, k] @ B [k, n], all row-major; float64 accumulation, float32 result. */
export type Gemm = (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>;

/** The plain-JS product used when no faster gemm is supplied (fine for the sizes a reader checks). */
export const jsGemm: Gemm = async (a, b, m, k, n) => {
  const c = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) row[j] += aip * b[bo + j];
    }
    c.set(row, i * n);
  }
  return c;
};

/**
 * Contracts a factorized tensor back to dense [rows, cols] (row-major float32).
 * lowrank: W = a @ b.
 * mpo: A_1 = G_1 viewed as [o_1 i_1, chi_1]; A_k = A_{k-1} [L_{k-1}, chi_{k-1}] @ G_k [chi_{k-1}, o_k i_k chi_k],
 * viewed as [L_k, chi_k] with L_k = L_{k-1} o_k i_k; the final [L_N, 1] is the site-ordered tensor
 * P[o_1, i_1, ..., o_N, i_N], and W[r, c] = P at offset sum_k (o_k(r) I_k + i_k(c)) S_k with
 * S_k = prod_{j>k} o_j i_j (the digits o_k(r), i_k(c) of r and c in the mixed radices of the factors),
 * cropped to the original shape.
 * `getTensor(name)` returns a factor's values; its length is checked against the described shape.
 */
export async function reconstructFactorized(
  f: FactorizedTensor,
  getTensor: (name: string) => Promise<Float32Array>,
  opts: { gemm?: Gemm; signal?: AbortSignal } = {},
): Promise<Float32Array> {
  const gemm = opts.gemm ?? jsGemm;
  const shapes = factorShapes(f);
  const load = async (i: number): Promise<Float32Array> => {
    throwIfAborted(opts.signal);
    const x = await getTensor(f.tensors[i]);
    const want = shapes[i].reduce((a, b) => a * b, 1);
    if (x.length !== want) {
      throw new CheckpointError('(factorized tensor)', `factor has ${x.length} values, the factorization describes shape [${shapes[i]}] = ${want}`, { tensor: f.tensors[i] });
    }
    return x;
  };
  const [rows, cols] = f.shape;
  if (f.kind === 'lowrank') return gemm(await load(0), await load(1), rows, f.rank, cols);

  const n = f.outFactors.length;
  let acc = await load(0);
  let L = f.outFactors[0] * f.inFactors[0];
  for (let k = 1; k < n; k++) {
    const [chiL, o, i, chiR] = shapes[k];
    acc = await gemm(acc, await load(k), L, chiL, o * i * chiR);
    L *= o * i;
  }
  // Strides of each site in P, and each row's / column's offset contribution.
  const stride = new Array<number>(n);
  for (let k = n - 1, s = 1; k >= 0; k--) { stride[k] = s; s *= f.outFactors[k] * f.inFactors[k]; }
  const offsets = (count: number, factors: number[], scale: (k: number) => number): Float64Array => {
    const t = new Float64Array(count);
    for (let idx = 0; idx < count; idx++) {
      let rest = idx, off = 0;
      for (let k = n - 1; k >= 0; k--) { off += (rest % factors[k]) * scale(k); rest = Math.floor(rest / factors[k]); }
      t[idx] = off;
    }
    return t;
  };
  const rowOff = offsets(rows, f.outFactors, (k) => f.inFactors[k] * stride[k]);
  const colOff = offsets(cols, f.inFactors, (k) => stride[k]);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = acc[rowOff[r] + colOff[c]];
  return w;
}
