/**
 * safetensors reader, single file and sharded (`*.safetensors.index.json`).
 *
 * File layout (huggingface/safetensors, docs "Format"):
 *   bytes [0, 8)        N, the header length, u64 little-endian
 *   bytes [8, 8+N)      a UTF-8 JSON object, possibly padded with trailing spaces:
 *                       { "__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end]}, ... }
 *   bytes [8+N, EOF)    the data region; a tensor's bytes are [8+N+begin, 8+N+end), row-major, little-endian.
 *
 * Only the header is read at open time; `read()` fetches one tensor's byte range.
 * The checks follow the reference implementation (header at most 100,000,000 bytes, header starts
 * with `{`, end - begin == elements * dtype size, no overlapping ranges), except that gaps in the data
 * region and trailing bytes are tolerated: they cannot make us misread a tensor.
 */
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { Checkpoint, ReadOptions, TensorEntry } from './types';
import { CheckpointError, formatBytes } from './errors';
import { FileAccessor, toSafeInt } from './fileAccessor';
import { BaseCheckpoint } from './base';
import { groupOf } from './grouping';
import { DENSE_DTYPE_BYTES, decodeDense } from './dtype';

/** The reference implementation's MAX_HEADER_SIZE: a larger header is refused before it is read. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** A sharded index is a small JSON file; anything beyond this is refused before it is read. */
const MAX_INDEX_BYTES = 100_000_000;

/** The dtypes a safetensors header may name, with their element size in bytes. */
export const SAFETENSORS_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL'] as const;
const DTYPE_SET: ReadonlySet<string> = new Set(SAFETENSORS_DTYPES);

/** One validated header entry; `begin`/`end` are relative to the data region. */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  params: number;
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Bytes of JSON (N); the data region starts at 8 + N. */
  headerLength: number;
  dataStart: number;
  metadata: Record<string, string>;
  /** Entries in the header's own order. */
  entries: SafetensorsHeaderEntry[];
}

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/**
 * Validates a parsed header JSON text against the file it came from. Pure: `headerText` is the
 * N bytes after the length prefix, decoded as UTF-8; `fileSize` bounds the data region.
 */
export function parseSafetensorsHeader(file: string, headerText: string, headerLength: number, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  /** Absolute byte offset of a tensor's key inside the header (for error messages), else the header start. */
  const keyOffset = (name: string): number => {
    const at = headerText.indexOf(JSON.stringify(name));
    return at < 0 ? 8 : 8 + Buffer.byteLength(headerText.slice(0, at), 'utf8');
  };

  if (headerText.length === 0 || headerText[0] !== '{') {
    throw new CheckpointError(file, `header must be a JSON object starting with '{' (found ${JSON.stringify(headerText.slice(0, 1))})`, { offset: 8 });
  }
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch (e) {
    const at = 8 + Buffer.byteLength(headerText.slice(0, jsonErrorIndex(headerText)), 'utf8');
    throw new CheckpointError(file, `header is not valid JSON: ${(e as Error).message}`, { offset: at, cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CheckpointError(file, 'header JSON must be an object of tensors', { offset: 8 });
  }

  const metadata: Record<string, string> = {};
  const entries: SafetensorsHeaderEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new CheckpointError(file, '__metadata__ must be an object of string values', { offset: keyOffset(name) });
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw new CheckpointError(file, `__metadata__ value for ${JSON.stringify(k)} must be a string, found ${v === null ? 'null' : typeof v}`, { offset: keyOffset(name) });
        }
        metadata[k] = v;
      }
      continue;
    }
    const at = () => keyOffset(name);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new CheckpointError(file, 'header entry must be an object {dtype, shape, data_offsets}', { tensor: name, offset: at() });
    }
    const { dtype, shape, data_offsets: offsets } = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !DTYPE_SET.has(dtype)) {
      throw new CheckpointError(file, `unknown dtype ${JSON.stringify(dtype)}; expected one of ${SAFETENSORS_DTYPES.join(' ')}`, { tensor: name, offset: at() });
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(file, `shape ${JSON.stringify(shape)} must be an array of non-negative integers`, { tensor: name, offset: at() });
    }
    let params = 1;
    for (const d of shape as number[]) {
      params *= d;
      if (!Number.isSafeInteger(params)) {
        throw new CheckpointError(file, `shape ${JSON.stringify(shape)} has more elements than Number.MAX_SAFE_INTEGER`, { tensor: name, offset: at() });
      }
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new CheckpointError(file, `data_offsets ${JSON.stringify(offsets)} must be [begin, end], non-negative safe integers`, { tensor: name, offset: at() });
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) {
      throw new CheckpointError(file, `data_offsets [${begin}, ${end}]: end is before begin`, { tensor: name, offset: dataStart + begin });
    }
    const expectBytes = params * DENSE_DTYPE_BYTES[dtype];
    if (end - begin !== expectBytes) {
      throw new CheckpointError(
        file,
        `size mismatch: shape ${JSON.stringify(shape)} of ${dtype} needs ${formatBytes(expectBytes)} bytes, data_offsets [${begin}, ${end}] span ${formatBytes(end - begin)}`,
        { tensor: name, offset: dataStart + begin },
      );
    }
    if (end > dataLength) {
      throw new CheckpointError(
        file,
        `data ends at byte ${formatBytes(dataStart + end)}, file has ${formatBytes(fileSize)} (data region is ${formatBytes(Math.max(0, dataLength))} bytes from byte ${formatBytes(dataStart)})`,
        { tensor: name, offset: dataStart + begin },
      );
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), params, begin, end });
  }

  // Two tensors must never share bytes: sort by begin and compare each range with the furthest end so far.
  const byBegin = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let furthest: SafetensorsHeaderEntry | undefined;
  for (const e of byBegin) {
    if (furthest && e.begin < furthest.end) {
      throw new CheckpointError(
        file,
        `data_offsets [${e.begin}, ${e.end}] overlap tensor ${furthest.name} [${furthest.begin}, ${furthest.end}]`,
        { tensor: e.name, offset: dataStart + e.begin },
      );
    }
    if (!furthest || e.end > furthest.end) furthest = e;
  }
  return { headerLength, dataStart, metadata, entries };
}

/** Reads and validates the header of an open safetensors file (only the 8 + N header bytes are read). */
export async function readSafetensorsHeader(fa: FileAccessor): Promise<SafetensorsHeader> {
  const file = fa.path;
  if (fa.size < 8) {
    throw new CheckpointError(file, `truncated: file has ${fa.size} bytes, a safetensors file starts with an 8-byte header length`, { offset: 0 });
  }
  const prefix = await fa.read(0, 8, 'header length');
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  // The limit is checked before anything else is read or allocated, so a hostile length costs nothing.
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new CheckpointError(file, `header length ${formatBytes(n)} exceeds the limit of ${formatBytes(SAFETENSORS_MAX_HEADER_BYTES)} bytes`, { offset: 0 });
  }
  const headerLength = toSafeInt(n, file, 'header length', { offset: 0 });
  if (headerLength > fa.size - 8) {
    throw new CheckpointError(file, `header length ${formatBytes(headerLength)} runs past the end of the file (file has ${formatBytes(fa.size)} bytes, so at most ${formatBytes(fa.size - 8)} are available)`, { offset: 0 });
  }
  if (headerLength < 2) {
    throw new CheckpointError(file, `header length ${headerLength} is too short for a JSON object`, { offset: 0 });
  }
  const raw = await fa.read(8, headerLength, 'header');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (e) {
    throw new CheckpointError(file, 'header is not valid UTF-8', { offset: 8, cause: e });
  }
  return parseSafetensorsHeader(file, text, headerLength, fa.size);
}

/** A lazy TensorEntry over one header entry of one (shard) file. */
function makeEntry(fa: FileAccessor, header: SafetensorsHeader, e: SafetensorsHeaderEntry): TensorEntry {
  const byteOffset = header.dataStart + e.begin;
  const byteLength = e.end - e.begin;
  const readRaw = (opts?: ReadOptions) => fa.read(byteOffset, byteLength, 'tensor data', { tensor: e.name, signal: opts?.signal });
  return {
    name: e.name,
    dtype: e.dtype,
    shape: e.shape.slice(),
    params: e.params,
    file: fa.path,
    byteOffset,
    byteLength,
    group: groupOf(e.name),
    readRaw,
    async read(opts?: ReadOptions): Promise<Float32Array> {
      const bytes = await readRaw(opts);
      // Little-endian F32 needs no conversion: view the freshly read buffer instead of copying it,
      // so a 1 GB tensor costs 1 GB, not 2.
      if (e.dtype === 'F32' && LITTLE_ENDIAN_HOST && bytes.byteOffset === 0) {
        return new Float32Array(bytes.buffer, 0, e.params);
      }
      return decodeDense(bytes, e.dtype, e.params);
    },
  };
}

/** Opens one `.safetensors` file: reads the header only. */
export async function openSafetensors(path: string): Promise<Checkpoint> {
  const fa = await FileAccessor.open(path);
  try {
    const header = await readSafetensorsHeader(fa);
    const tensors = header.entries.map((e) => makeEntry(fa, header, e));
    return new BaseCheckpoint('safetensors', fa.path, [fa.path], fa.size, tensors, { ...header.metadata }, 'safetensors', () => fa.close());
  } catch (e) {
    await fa.close();
    throw e;
  }
}

/**
 * Resolves a shard name from an index against the index's folder. Absolute paths and any `..`
 * segment are refused: an index must not make us open files outside its own folder.
 */
export function resolveShardPath(indexPath: string, shard: string): string {
  const indexDir = nodePath.dirname(indexPath);
  const escapes = shard.length === 0
    || nodePath.posix.isAbsolute(shard) || nodePath.win32.isAbsolute(shard)
    || shard.split(/[\\/]/).some((seg) => seg === '..')
    || shard.includes('\0');
  const resolved = nodePath.resolve(indexDir, shard);
  const rel = nodePath.relative(indexDir, resolved);
  if (escapes || rel === '' || rel.startsWith('..') || nodePath.isAbsolute(rel)) {
    throw new CheckpointError(indexPath, `shard path ${JSON.stringify(shard)} must be a relative path inside the index's folder (no absolute paths, no '..')`);
  }
  return resolved;
}

/**
 * Opens a sharded checkpoint from its `*.safetensors.index.json`:
 * `{"metadata": {...}, "weight_map": {tensor: shard file}}`. Every shard's header is read; the
 * tensors are the weight_map's entries (the index is authoritative, as in transformers), each of
 * which must exist in the shard it names.
 */
export async function openSafetensorsIndex(path: string): Promise<Checkpoint> {
  const indexPath = nodePath.resolve(path);
  const ifa = await FileAccessor.open(indexPath);
  const indexSize = ifa.size;
  let text: string;
  try {
    if (ifa.size > MAX_INDEX_BYTES) {
      throw new CheckpointError(indexPath, `index file is ${formatBytes(ifa.size)} bytes, above the limit of ${formatBytes(MAX_INDEX_BYTES)}`, { offset: 0 });
    }
    const raw = await ifa.read(0, ifa.size, 'index');
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch (e) {
      throw new CheckpointError(indexPath, 'index is not valid UTF-8', { offset: 0, cause: e });
    }
  } finally {
    await ifa.close();
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const at = Buffer.byteLength(text.slice(0, jsonErrorIndex(text)), 'utf8');
    throw new CheckpointError(indexPath, `index is not valid JSON: ${(e as Error).message}`, { offset: at, cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CheckpointError(indexPath, 'index must be a JSON object with a "weight_map"', { offset: 0 });
  }
  const { weight_map: weightMap, metadata: indexMeta } = json as { weight_map?: unknown; metadata?: unknown };
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new CheckpointError(indexPath, 'index has no "weight_map" object {tensor name: shard file}', { offset: 0 });
  }
  if (indexMeta !== undefined && (indexMeta === null || typeof indexMeta !== 'object' || Array.isArray(indexMeta))) {
    throw new CheckpointError(indexPath, '"metadata" must be an object', { offset: 0 });
  }
  const wanted = Object.entries(weightMap as Record<string, unknown>);
  const shardNames: string[] = [];
  for (const [tensor, shard] of wanted) {
    if (typeof shard !== 'string') {
      throw new CheckpointError(indexPath, `weight_map value must be a shard file name, found ${JSON.stringify(shard)}`, { tensor });
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  const shardPaths = shardNames.map((s) => resolveShardPath(indexPath, s));

  // Open every shard; if any fails, close the ones that opened.
  const opened: FileAccessor[] = [];
  const closeAll = async () => { await Promise.all(opened.map((fa) => fa.close())); };
  try {
    const headers = new Map<string, { fa: FileAccessor; header: SafetensorsHeader; byName: Map<string, SafetensorsHeaderEntry> }>();
    for (let i = 0; i < shardNames.length; i++) {
      let fa: FileAccessor;
      try {
        fa = await FileAccessor.open(shardPaths[i]);
      } catch (e) {
        throw new CheckpointError(indexPath, `weight_map names shard ${JSON.stringify(shardNames[i])}, which cannot be opened: ${(e as Error).message}`, { cause: e });
      }
      opened.push(fa);
      const header = await readSafetensorsHeader(fa);
      headers.set(shardNames[i], { fa, header, byName: new Map(header.entries.map((e) => [e.name, e])) });
    }
    const tensors: TensorEntry[] = [];
    for (const [tensor, shard] of wanted) {
      const h = headers.get(shard as string)!;
      const e = h.byName.get(tensor);
      if (!e) {
        throw new CheckpointError(indexPath, `weight_map places this tensor in shard ${JSON.stringify(shard)}, but that shard's header has no such tensor`, { tensor });
      }
      tensors.push(makeEntry(h.fa, h.header, e));
    }
    const metadata: Record<string, unknown> = { ...(indexMeta as Record<string, unknown> | undefined) };
    const shardMeta: Record<string, Record<string, string>> = {};
    for (const [name, h] of headers) if (Object.keys(h.header.metadata).length > 0) shardMeta[name] = h.header.metadata;
    if (Object.keys(shardMeta).length > 0) metadata.__shard_metadata__ = shardMeta;
    const sizeOnDisk = opened.reduce((s, fa) => s + fa.size, indexSize);
    return new BaseCheckpoint(
      'safetensors', indexPath, [indexPath, ...shardPaths], sizeOnDisk, tensors, metadata,
      `safetensors (${shardNames.length} shard${shardNames.length === 1 ? '' : 's'})`, closeAll,
    );
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/**
 * The index of the first character at which `text` stops being valid JSON (RFC 8259), for error
 * messages: V8's JSON.parse does not always say where it failed. Only runs after a parse failed.
 */
export function jsonErrorIndex(text: string): number {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const fail = (): never => { throw i; };
  const lit = (word: string) => { if (text.startsWith(word, i)) i += word.length; else fail(); };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail();
      const c = text.charCodeAt(i);
      if (c === 0x22) { i++; return; }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        const n = text[i + 1];
        if (n === 'u') { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) { i++; fail(); } i += 6; }
        else if (n !== undefined && '"\\/bfnrt'.includes(n)) i += 2;
        else { i++; fail(); }
      } else i++;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0].length === 0) fail();
    i += m![0].length;
  };
  const value = (depth: number): void => {
    if (depth > 1000) fail(); // deeper nesting than any header needs; stay far from the stack limit
    ws();
    const c = text[i];
    if (c === '{') {
      i++; ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str(); ws();
        if (text[i] !== ':') fail();
        i++;
        value(depth + 1); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++; ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value(depth + 1); ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else num();
  };
  try {
    value(0);
    ws();
    return i < text.length ? i : text.length;
  } catch (at) {
    return typeof at === 'number' ? at : 0;
  }
}
