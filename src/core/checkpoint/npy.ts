/**
 * NumPy `.npy` reader and writer (numpy.lib.format, "NEP 1").
 *
 * Layout: magic `\x93NUMPY`, major and minor version bytes, then the header length HLEN —
 * u16 little-endian for version 1.0, u32 little-endian for 2.0 and 3.0 — then HLEN bytes of a
 * Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` (latin-1 for
 * 1.0/2.0, UTF-8 for 3.0), padded with spaces and ended by '\n' so the data starts at a multiple
 * of 64 bytes. The data follows: prod(shape) elements of `descr`, in C order, or in Fortran
 * (column-major) order when fortran_order is True.
 */
import * as nodePath from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import type { Checkpoint, ReadOptions, TensorEntry } from './types';
import { CheckpointError, formatBytes } from './errors';
import { FileAccessor } from './fileAccessor';
import { BaseCheckpoint } from './base';
import { groupOf } from './grouping';
import { DENSE_DTYPE_BYTES, decodeDense } from './dtype';

// The .npz reader (a zip of .npy members) lives in npz.ts and reuses parseNpy / decodeNpyData.
export { openNpz } from './npz';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy refuses headers above 10,000 bytes by default (max_header_size); we allow more but stay bounded. */
const MAX_HEADER_BYTES = 1_000_000;

export interface NpyHeader {
  /** Our dtype name (F32, F64, F16, I64, ..., U8, BOOL). */
  dtype: string;
  /** The descr string as written, e.g. '<f4', '>i8', '|b1'. */
  descr: string;
  bigEndian: boolean;
  shape: number[];
  /** Elements = prod(shape) (1 for a 0-d array). */
  params: number;
  fortranOrder: boolean;
  /** [major, minor] format version. */
  version: [number, number];
  /** Byte offset of the data within the .npy bytes. */
  dataOffset: number;
  /** Bytes of data = params * element size. */
  dataLength: number;
}

/** numpy kind+size -> our dtype name. Complex, strings, objects and structured types are refused. */
const DESCR_TO_DTYPE: Record<string, string> = {
  f2: 'F16', f4: 'F32', f8: 'F64',
  i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64',
  u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64',
  b1: 'BOOL',
};

/**
 * Parses the header of a .npy file from its first bytes (at least up to the end of the header).
 * Pure; `name` is used in error messages (the file, or "archive.npz member x.npy").
 */
export function parseNpy(bytes: Uint8Array, name: string): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new CheckpointError(name, 'not a .npy file: expected the magic bytes \\x93NUMPY', { offset: 0 });
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (major < 1 || major > 3 || minor !== 0) {
    throw new CheckpointError(name, `unsupported .npy format version ${major}.${minor} (expected 1.0, 2.0 or 3.0)`, { offset: 6 });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let hlen: number;
  if (major === 1) {
    headerStart = 10;
    hlen = dv.getUint16(8, true);
  } else {
    if (bytes.length < 12) throw new CheckpointError(name, 'truncated: the header length field is cut off', { offset: 8 });
    headerStart = 12;
    hlen = dv.getUint32(8, true);
  }
  if (hlen > MAX_HEADER_BYTES) {
    throw new CheckpointError(name, `header length ${formatBytes(hlen)} exceeds the limit of ${formatBytes(MAX_HEADER_BYTES)} bytes`, { offset: 8 });
  }
  if (headerStart + hlen > bytes.length) {
    throw new CheckpointError(name, `header ends at byte ${formatBytes(headerStart + hlen)}, only ${formatBytes(bytes.length)} bytes available`, { offset: 8 });
  }
  const raw = bytes.subarray(headerStart, headerStart + hlen);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: major === 3 }).decode(raw);
  } catch (e) {
    throw new CheckpointError(name, 'version 3.0 header is not valid UTF-8', { offset: headerStart, cause: e });
  }
  let dict: PyValue;
  try {
    dict = new PyLiteralParser(text).parseTop();
  } catch (e) {
    throw new CheckpointError(name, `header is not a Python dict literal: ${(e as Error).message}`, { offset: headerStart, cause: e });
  }
  if (!(dict instanceof Map)) {
    throw new CheckpointError(name, 'header must be a dict {descr, fortran_order, shape}', { offset: headerStart });
  }
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string') {
    throw new CheckpointError(name, `descr ${describe(descr)} is not supported: only plain numeric dtypes (<f4, <f8, <f2, <i8, ..., |b1) can be read, not structured or object arrays`, { offset: headerStart });
  }
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr);
  const dtype = m ? DESCR_TO_DTYPE[m[2] + m[3]] : undefined;
  if (!m || !dtype) {
    throw new CheckpointError(name, `unsupported descr '${descr}': expected one of <f2 <f4 <f8 <i1..<i8 <u1..<u8 |b1 (with '<', '>', '=' or '|' byte order)`, { offset: headerStart });
  }
  // '=' means native order, which for a file written on any mainstream machine is little-endian.
  const bigEndian = m[1] === '>' && DENSE_DTYPE_BYTES[dtype] > 1;
  if (typeof fortran !== 'boolean') {
    throw new CheckpointError(name, `fortran_order must be True or False, found ${describe(fortran)}`, { offset: headerStart });
  }
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(name, `shape must be a tuple of non-negative integers, found ${describe(shape)}`, { offset: headerStart });
  }
  let params = 1;
  for (const d of shape as number[]) {
    params *= d;
    if (!Number.isSafeInteger(params)) throw new CheckpointError(name, `shape ${describe(shape)} has too many elements`, { offset: headerStart });
  }
  const dataLength = params * DENSE_DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(dataLength)) throw new CheckpointError(name, `shape ${describe(shape)} has too many bytes`, { offset: headerStart });
  return {
    dtype, descr, bigEndian, shape: (shape as number[]).slice(), params, fortranOrder: fortran,
    version: [major, minor], dataOffset: headerStart + hlen, dataLength,
  };
}

/**
 * Decodes the data bytes of an array (starting at its first element) to float32 in C order.
 * A Fortran-order array is stored column-major: element (i_0, ..., i_{n-1}) sits at
 * sum_k i_k * prod_{j<k} d_j; we permute it into row-major order, where it sits at
 * sum_k i_k * prod_{j>k} d_j.
 */
export function decodeNpyData(data: Uint8Array, header: Pick<NpyHeader, 'dtype' | 'shape' | 'params' | 'fortranOrder' | 'bigEndian'>): Float32Array {
  const stored = decodeDense(data, header.dtype, header.params, header.bigEndian);
  if (!header.fortranOrder || header.shape.length < 2) return stored;
  return fortranToC(stored, header.shape);
}

/** Reorders a column-major array of `shape` into row-major order. */
export function fortranToC(src: Float32Array, shape: readonly number[]): Float32Array {
  const n = shape.length;
  const out = new Float32Array(src.length);
  if (src.length === 0) return out;
  // Column-major strides: stride_k = prod_{j<k} d_j.
  const strides = new Array<number>(n);
  let s = 1;
  for (let k = 0; k < n; k++) { strides[k] = s; s *= shape[k]; }
  // Walk the output in row-major order with an odometer over the index, tracking the source offset.
  const idx = new Array<number>(n).fill(0);
  let from = 0;
  const last = n - 1;
  const innerLen = shape[last];
  const innerStride = strides[last];
  for (let to = 0; to < out.length; to += innerLen) {
    for (let i = 0, f = from; i < innerLen; i++, f += innerStride) out[to + i] = src[f];
    for (let k = last - 1; k >= 0; k--) {
      idx[k]++;
      from += strides[k];
      if (idx[k] < shape[k]) break;
      from -= strides[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

/** Opens a .npy file: one tensor, named after the file stem. */
export async function openNpy(path: string): Promise<Checkpoint> {
  const fa = await FileAccessor.open(path);
  try {
    // The fixed prefix says how long the header is; read exactly that much.
    const prefix = await fa.readUpTo(0, 12);
    let headerEnd = 12;
    if (prefix.length >= 10 && MAGIC.every((b, i) => prefix[i] === b)) {
      const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
      const hlen = prefix[6] === 1 ? dv.getUint16(8, true) : prefix.length >= 12 ? dv.getUint32(8, true) : 0;
      headerEnd = (prefix[6] === 1 ? 10 : 12) + Math.min(hlen, MAX_HEADER_BYTES + 1);
    }
    const head = await fa.readUpTo(0, headerEnd);
    const h = parseNpy(head, fa.path);
    const name = nodePath.basename(fa.path).replace(/\.npy$/i, '') || 'array';
    if (h.dataOffset + h.dataLength > fa.size) {
      throw new CheckpointError(
        fa.path,
        `data ends at byte ${formatBytes(h.dataOffset + h.dataLength)} (${h.descr} shape (${h.shape.join(', ')})), file has ${formatBytes(fa.size)}`,
        { tensor: name, offset: h.dataOffset },
      );
    }
    const readRaw = (opts?: ReadOptions) => fa.read(h.dataOffset, h.dataLength, 'array data', { tensor: name, signal: opts?.signal });
    const entry: TensorEntry = {
      name,
      dtype: h.dtype,
      shape: h.shape.slice(),
      params: h.params,
      file: fa.path,
      byteOffset: h.dataOffset,
      byteLength: h.dataLength,
      group: groupOf(name),
      readRaw,
      async read(opts?: ReadOptions) {
        return decodeNpyData(await readRaw(opts), h);
      },
    };
    const metadata = { descr: h.descr, fortran_order: h.fortranOrder, version: `${h.version[0]}.${h.version[1]}` };
    return new BaseCheckpoint('npy', fa.path, [fa.path], fa.size, [entry], metadata, `npy v${h.version[0]}.${h.version[1]}`, () => fa.close());
  } catch (e) {
    await fa.close();
    throw e;
  }
}

/**
 * The header bytes of a version 1.0 .npy file holding little-endian float32 in C order:
 * magic, version, u16 HLEN, then the dict padded with spaces and '\n' so 10 + HLEN is a multiple of 64.
 */
export function npyHeaderF32(shape: readonly number[]): Uint8Array {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const hlen = total - 10;
  if (hlen > 0xffff) throw new Error(`npy header for shape (${shape.join(', ')}) does not fit a version 1.0 header`);
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = hlen & 0xff;
  out[9] = hlen >> 8;
  const padded = dict.padEnd(hlen - 1, ' ') + '\n';
  for (let i = 0; i < padded.length; i++) out[10 + i] = padded.charCodeAt(i);
  return out;
}

/** Writes a float32 array as a .npy file (C order) through a temporary file and rename. */
export async function writeNpy(path: string, data: Float32Array, shape: number[]): Promise<void> {
  let params = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`writeNpy: shape (${shape.join(', ')}) must hold non-negative integers`);
    params *= d;
  }
  if (params !== data.length) throw new Error(`writeNpy: shape (${shape.join(', ')}) has ${params} elements, data has ${data.length}`);
  const header = npyHeaderF32(shape);
  const target = nodePath.resolve(path);
  const tmp = nodePath.join(nodePath.dirname(target), `.${nodePath.basename(target)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  let body: Uint8Array;
  if (os.endianness() === 'LE') {
    body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    body = new Uint8Array(data.length * 4);
    const dv = new DataView(body.buffer);
    for (let i = 0; i < data.length; i++) dv.setFloat32(i * 4, data[i], true);
  }
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'wx');
    await handle.write(header, 0, header.length, 0);
    // Write in slices: a single write of more than 2 GiB is not allowed.
    const SLICE = 256 * 1024 * 1024;
    for (let off = 0; off < body.length; off += SLICE) {
      const n = Math.min(SLICE, body.length - off);
      let done = 0;
      while (done < n) {
        const { bytesWritten } = await handle.write(body, off + done, n - done, header.length + off + done);
        done += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, target);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// A parser for the small subset of Python literals numpy writes into a .npy header:
// dicts, tuples, lists, strings, integers, True/False/None. Nothing is evaluated.

type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return `(${v.map((x) => describe(x)).join(', ')})`;
  return typeof v === 'string' ? `'${v}'` : String(v);
}

class PyLiteralParser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly s: string) {}

  parseTop(): PyValue {
    const v = this.value();
    this.ws();
    if (this.pos !== this.s.length) throw new Error(`unexpected ${JSON.stringify(this.s[this.pos])} at character ${this.pos}`);
    return v;
  }

  private ws(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos])) this.pos++;
  }

  private value(): PyValue {
    this.ws();
    if (this.pos >= this.s.length) throw new Error('unexpected end of header');
    const c = this.s[this.pos];
    if (c === '{') return this.nested(() => this.dict());
    if (c === '(') return this.nested(() => this.seq(')'));
    if (c === '[') return this.nested(() => this.seq(']'));
    if (c === "'" || c === '"') return this.str();
    const word = /^[-+]?\d+L?|^True|^False|^None/.exec(this.s.slice(this.pos, this.pos + 32));
    if (!word) throw new Error(`unexpected ${JSON.stringify(c)} at character ${this.pos}`);
    this.pos += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    // Python 2 wrote long integers with an 'L' suffix.
    return Number(word[0].replace(/L$/, ''));
  }

  private nested<T>(f: () => T): T {
    if (++this.depth > 32) throw new Error('nesting too deep');
    const v = f();
    this.depth--;
    return v;
  }

  private expect(c: string): void {
    this.ws();
    if (this.s[this.pos] !== c) throw new Error(`expected '${c}' at character ${this.pos}`);
    this.pos++;
  }

  private dict(): Map<string, PyValue> {
    this.expect('{');
    const m = new Map<string, PyValue>();
    for (;;) {
      this.ws();
      if (this.s[this.pos] === '}') { this.pos++; return m; }
      const k = this.value();
      if (typeof k !== 'string') throw new Error(`dict keys must be strings (character ${this.pos})`);
      this.expect(':');
      m.set(k, this.value());
      this.ws();
      if (this.s[this.pos] === ',') { this.pos++; continue; }
      this.expect('}');
      return m;
    }
  }

  private seq(close: string): PyValue[] {
    this.pos++;
    const out: PyValue[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.pos] === close) { this.pos++; return out; }
      out.push(this.value());
      this.ws();
      if (this.s[this.pos] === ',') { this.pos++; continue; }
      this.expect(close);
      return out;
    }
  }

  private str(): string {
    const q = this.s[this.pos++];
    let out = '';
    while (this.pos < this.s.length && this.s[this.pos] !== q) {
      if (this.s[this.pos] === '\\') {
        const n = this.s[this.pos + 1];
        if (n === undefined) break;
        out += n === 'n' ? '\n' : n === 't' ? '\t' : n;
        this.pos += 2;
      } else {
        out += this.s[this.pos++];
      }
    }
    if (this.s[this.pos] !== q) throw new Error('unterminated string');
    this.pos++;
    return out;
  }
}
