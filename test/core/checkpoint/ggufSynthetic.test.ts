/**
 * The GGUF reader on files built here byte by byte (into os.tmpdir()): every metadata value kind,
 * version 2, custom alignment, undecodable types, chunked reads and cancellation, offsets beyond 4 GiB,
 * hand-made corrupt files (each must give a CheckpointError naming the file and the tensor / byte
 * offset), and a fast-check property: random damage to a real fixture's header never gives anything
 * but success or a CheckpointError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { promises as fsp, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { gguf as hfGguf } from '@huggingface/gguf';
import { openGguf, readGgufHeader, type GgufValue } from '../../../src/core/checkpoint/gguf';
import { CheckpointError, CancelledError } from '../../../src/core/checkpoint/errors';
import { dequantize, GgmlType, quantizeQ8_0 } from '../../../src/core/checkpoint/ggmlQuants';
import { FileAccessor } from '../../../src/core/checkpoint/fileAccessor';

const FIX = new URL('../../../../shared/fixtures/', import.meta.url).pathname;

// ---------- a GGUF writer for tests ----------

/** GGUF value type ids. */
const T = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9, u64: 10, i64: 11, f64: 12 } as const;

interface ArrayValue { itemType: number; items: unknown[] }
interface KV { key: string; type: number; value: unknown }
interface TensorSpec { name: string; ne: Array<number | bigint>; type: number; offset: number | bigint; nDims?: number }

class ByteWriter {
  private parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void { this.parts.push(b); this.length += b.length; }
  private num(size: number, f: (dv: DataView) => void): void { const b = new Uint8Array(size); f(new DataView(b.buffer)); this.push(b); }
  u8(v: number) { this.num(1, (d) => d.setUint8(0, v)); }
  i8(v: number) { this.num(1, (d) => d.setInt8(0, v)); }
  u16(v: number) { this.num(2, (d) => d.setUint16(0, v, true)); }
  i16(v: number) { this.num(2, (d) => d.setInt16(0, v, true)); }
  u32(v: number) { this.num(4, (d) => d.setUint32(0, v, true)); }
  i32(v: number) { this.num(4, (d) => d.setInt32(0, v, true)); }
  f32(v: number) { this.num(4, (d) => d.setFloat32(0, v, true)); }
  f64(v: number) { this.num(8, (d) => d.setFloat64(0, v, true)); }
  u64(v: number | bigint) { this.num(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  i64(v: number | bigint) { this.num(8, (d) => d.setBigInt64(0, BigInt(v), true)); }
  str(s: string, lengthOverride?: bigint) { const b = new TextEncoder().encode(s); this.u64(lengthOverride ?? b.length); this.push(b); }
  bytes(): Uint8Array { const out = new Uint8Array(this.length); let o = 0; for (const p of this.parts) { out.set(p, o); o += p.length; } return out; }
}

function writeValue(w: ByteWriter, type: number, v: unknown): void {
  switch (type) {
    case T.u8: return w.u8(v as number);
    case T.i8: return w.i8(v as number);
    case T.u16: return w.u16(v as number);
    case T.i16: return w.i16(v as number);
    case T.u32: return w.u32(v as number);
    case T.i32: return w.i32(v as number);
    case T.f32: return w.f32(v as number);
    case T.bool: return w.u8(v === true ? 1 : v === false ? 0 : (v as number));
    case T.str: return w.str(v as string);
    case T.u64: return w.u64(v as bigint);
    case T.i64: return w.i64(v as bigint);
    case T.f64: return w.f64(v as number);
    case T.arr: {
      const a = v as ArrayValue & { countOverride?: bigint };
      w.u32(a.itemType);
      w.u64(a.countOverride ?? a.items.length);
      for (const item of a.items) writeValue(w, a.itemType, item);
      return;
    }
    default: return w.u32(0); // an undefined value type: some bytes for the reader to refuse
  }
}

interface BuildOptions {
  magic?: string;
  version?: number;
  kv?: KV[];
  tensors?: TensorSpec[];
  tensorCount?: bigint;
  kvCount?: bigint;
  /** Padding target for the data region (must match general.alignment if set). */
  alignment?: number;
  /** Bytes of the data region. */
  data?: Uint8Array;
}

/** Serialises a GGUF file: header, padding to the alignment, data. Returns bytes and the data offset. */
function buildGguf(o: BuildOptions): { bytes: Uint8Array; dataOffset: number } {
  const w = new ByteWriter();
  w.push(new TextEncoder().encode(o.magic ?? 'GGUF'));
  w.u32(o.version ?? 3);
  const tensors = o.tensors ?? [];
  const kv = o.kv ?? [];
  w.u64(o.tensorCount ?? tensors.length);
  w.u64(o.kvCount ?? kv.length);
  for (const { key, type, value } of kv) { w.str(key); w.u32(type); writeValue(w, type, value); }
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.nDims ?? t.ne.length);
    for (const n of t.ne) w.u64(n);
    w.u32(t.type);
    w.u64(t.offset);
  }
  const align = o.alignment ?? 32;
  const dataOffset = Math.ceil(w.length / align) * align;
  w.push(new Uint8Array(dataOffset - w.length));
  if (o.data) w.push(o.data);
  return { bytes: w.bytes(), dataOffset };
}

const tmpFiles: string[] = [];
async function tmpFile(bytes: Uint8Array, label: string): Promise<string> {
  const p = nodePath.join(os.tmpdir(), `ts-gguf-${process.pid}-${tmpFiles.length}-${label}.gguf`);
  tmpFiles.push(p);
  await fsp.writeFile(p, bytes);
  return p;
}
test.after(async () => {
  await Promise.all(tmpFiles.map((p) => fsp.rm(p, { force: true })));
});

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** Opens, reads every tensor, closes; returns the error if any step threw. */
async function openAndReadAll(path: string): Promise<unknown> {
  let ck;
  try {
    ck = await openGguf(path);
    for (const t of ck.tensors) { await t.read(); await t.readRaw(); }
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await ck?.close();
  }
}

async function expectCheckpointError(path: string, pattern: RegExp, where: { tensor?: string; offset?: number | 'any' } = {}): Promise<CheckpointError> {
  const e = await openAndReadAll(path);
  assert.ok(e instanceof CheckpointError, `expected a CheckpointError matching ${pattern}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  assert.match(e.message, pattern);
  assert.ok(e.message.startsWith(path), `message names the file: ${e.message}`);
  if (where.tensor !== undefined) {
    assert.equal(e.tensor, where.tensor, `error names tensor ${where.tensor}: ${e.message}`);
    assert.ok(e.message.includes(where.tensor));
  }
  if (where.offset === 'any') assert.equal(typeof e.offset, 'number', `error names a byte offset: ${e.message}`);
  else if (where.offset !== undefined) assert.equal(e.offset, where.offset, e.message);
  return e;
}

// ---------- well-formed synthetic files ----------

test('GGUF v2 with every metadata value kind, nested arrays, long arrays summarised; agrees with @huggingface/gguf', async () => {
  const long = Array.from({ length: 100 }, (_, i) => `tok${i}`);
  const kv: KV[] = [
    { key: 'k.u8', type: T.u8, value: 200 },
    { key: 'k.i8', type: T.i8, value: -5 },
    { key: 'k.u16', type: T.u16, value: 60000 },
    { key: 'k.i16', type: T.i16, value: -30000 },
    { key: 'k.u32', type: T.u32, value: 4000000000 },
    { key: 'k.i32', type: T.i32, value: -2000000000 },
    { key: 'k.f32', type: T.f32, value: 1.5 },
    { key: 'k.bool', type: T.bool, value: true },
    { key: 'k.str', type: T.str, value: 'héllo ✓ "quoted"' },
    { key: 'k.u64', type: T.u64, value: 2n ** 63n + 5n },
    { key: 'k.u64small', type: T.u64, value: 12345n },
    { key: 'k.i64', type: T.i64, value: -(2n ** 62n) },
    { key: 'k.i64safe', type: T.i64, value: -(2n ** 40n) },
    { key: 'k.f64', type: T.f64, value: Math.PI },
    { key: 'k.f32nan', type: T.f32, value: NaN },
    { key: 'a.u8', type: T.arr, value: { itemType: T.u8, items: [1, 2, 255] } },
    { key: 'a.i16', type: T.arr, value: { itemType: T.i16, items: [-1, 2] } },
    { key: 'a.f64', type: T.arr, value: { itemType: T.f64, items: [0.1, -0.2] } },
    { key: 'a.bool', type: T.arr, value: { itemType: T.bool, items: [true, false, true] } },
    { key: 'a.i64', type: T.arr, value: { itemType: T.i64, items: [-3n, 2n ** 60n] } },
    { key: 'a.empty', type: T.arr, value: { itemType: T.str, items: [] } },
    { key: 'a.nested', type: T.arr, value: { itemType: T.arr, items: [{ itemType: T.u32, items: [1, 2] }, { itemType: T.str, items: ['x'] }] } },
    { key: 'a.longstr', type: T.arr, value: { itemType: T.str, items: long } },
    { key: 'a.longf32', type: T.arr, value: { itemType: T.f32, items: Array.from({ length: 65 }, (_, i) => i / 4) } },
    { key: 'a.exactly64', type: T.arr, value: { itemType: T.i32, items: Array.from({ length: 64 }, (_, i) => 0 - i) } },
  ];
  const data = f32Bytes([1, 2, 3, 4, 5, 6]);
  const { bytes, dataOffset } = buildGguf({ version: 2, kv, tensors: [{ name: 'w', ne: [3, 2], type: GgmlType.F32, offset: 0 }], data });
  const path = await tmpFile(bytes, 'v2-kinds');
  const ck = await openGguf(path);
  try {
    assert.equal(ck.formatDetail, 'GGUF v2');
    assert.equal(ck.gguf.dataOffset, dataOffset);
    const w = ck.get('w')!;
    assert.deepEqual(w.shape, [2, 3], 'ne [3, 2] is 2 rows of 3');
    assert.deepEqual(Array.from(await w.read()), [1, 2, 3, 4, 5, 6]);
    const get = (k: string) => ck.gguf.kv.get(k) as GgufValue;
    assert.deepEqual(get('k.u64'), { type: 'uint64', value: 2n ** 63n + 5n });
    assert.deepEqual(get('k.i64'), { type: 'int64', value: -(2n ** 62n) });
    assert.deepEqual(get('k.f32'), { type: 'float32', value: 1.5 });
    assert.deepEqual(get('k.bool'), { type: 'bool', value: true });
    const a = get('a.i64');
    assert.ok(a.type === 'array' && a.value instanceof BigInt64Array);
    const nested = get('a.nested');
    assert.ok(nested.type === 'array' && nested.itemType === 'array');
    const md = ck.metadata;
    assert.equal(md['k.u8'], 200);
    assert.equal(md['k.i8'], -5);
    assert.equal(md['k.u32'], 4000000000);
    assert.equal(md['k.i32'], -2000000000);
    assert.equal(md['k.str'], 'héllo ✓ "quoted"');
    assert.equal(md['k.u64'], (2n ** 63n + 5n).toString(), 'unsafe 64-bit integers become decimal strings');
    assert.equal(md['k.u64small'], 12345);
    assert.equal(md['k.i64'], '-4611686018427387904', '-(2^62) is beyond 2^53: a decimal string');
    assert.equal(md['k.i64safe'], -(2 ** 40));
    assert.equal(md['k.f64'], Math.PI);
    assert.equal(md['k.f32nan'], 'NaN');
    assert.deepEqual(md['a.u8'], [1, 2, 255]);
    assert.deepEqual(md['a.bool'], [true, false, true]);
    assert.deepEqual(md['a.i64'], [-3, (2n ** 60n).toString()]);
    assert.deepEqual(md['a.empty'], []);
    assert.deepEqual(md['a.nested'], [[1, 2], ['x']]);
    assert.deepEqual(md['a.longstr'], { arrayOf: 'string', length: 100, first: long.slice(0, 8) });
    assert.deepEqual(md['a.longf32'], { arrayOf: 'float32', length: 65, first: [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75] });
    assert.deepEqual(md['a.exactly64'], Array.from({ length: 64 }, (_, i) => 0 - i), '64 elements are kept in full');
    assert.deepEqual(JSON.parse(JSON.stringify(md)), md, 'JSON-serialisable');

    const theirs = await hfGguf(path, { allowLocalFile: true, typedMetadata: true });
    assert.equal(theirs.metadata.version, 2);
    for (const { key } of kv) {
      const mine = get(key);
      const tv = theirs.typedMetadata[key];
      assert.ok(tv, `@huggingface/gguf has ${key}`);
      const plain = (v: GgufValue): unknown => v.type === 'array'
        ? Array.from(v.value as ArrayLike<unknown>, (x) => (typeof x === 'object' && x !== null && 'type' in (x as object) ? plain(x as GgufValue) : x))
        : v.value;
      assert.deepEqual(plain(mine), tv.value, key);
    }
  } finally {
    await ck.close();
  }
});

test('general.alignment 64 is honoured; an IQ2_XXS tensor opens, readRaw works, read() names tensor and type', async () => {
  const iq = new Uint8Array(66).map((_, i) => i);
  const data = new Uint8Array(192);
  data.set(f32Bytes([7, 8]), 0);
  data.set(iq, 64);
  const { bytes, dataOffset } = buildGguf({
    alignment: 64,
    kv: [{ key: 'general.alignment', type: T.u32, value: 64 }],
    tensors: [
      { name: 'small', ne: [2], type: GgmlType.F32, offset: 0 },
      { name: 'blk.0.attn_q.weight', ne: [256, 1], type: GgmlType.IQ2_XXS, offset: 64 },
    ],
    data,
  });
  assert.equal(dataOffset % 64, 0);
  const path = await tmpFile(bytes, 'align64');
  const ck = await openGguf(path);
  try {
    assert.equal(ck.gguf.alignment, 64);
    assert.equal(ck.gguf.dataOffset, dataOffset);
    assert.deepEqual(Array.from(await ck.get('small')!.read()), [7, 8]);
    const q = ck.get('blk.0.attn_q.weight')!;
    assert.equal(q.dtype, 'IQ2_XXS');
    assert.deepEqual(q.shape, [1, 256]);
    assert.equal(q.byteOffset, dataOffset + 64);
    assert.deepEqual(await q.readRaw(), iq);
    await assert.rejects(q.read(), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.equal(e.tensor, 'blk.0.attn_q.weight');
      assert.match(e.message, /quantization type IQ2_XXS \(16\) is not supported/);
      assert.ok(e.message.includes(path));
      return true;
    });
  } finally {
    await ck.close();
  }
});

test('a tensor larger than one read chunk decodes the same as whole; abort between chunks gives CancelledError', async () => {
  // 17 MiB of Q8_0 (> the 16 MiB read chunk): 524,288 blocks of random bytes with finite scales.
  const nBlocks = 64 * 8192;
  const raw = new Uint8Array(nBlocks * 34);
  const words = new Uint32Array(raw.buffer);
  let s = 12345;
  for (let i = 0; i < words.length; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; words[i] = s; } // xorshift32
  for (let b = 0; b < nBlocks; b++) raw[b * 34 + 1] &= 0x3b; // keep the f16 exponent below 31
  const { bytes } = buildGguf({ tensors: [{ name: 'big', ne: [32 * 64, nBlocks / 64], type: GgmlType.Q8_0, offset: 0 }], data: raw });
  const path = await tmpFile(bytes, 'chunked');
  const ck = await openGguf(path);
  try {
    const t = ck.get('big')!;
    assert.equal(t.byteLength, raw.length);
    const x = await t.read();
    const whole = dequantize(GgmlType.Q8_0, raw);
    assert.equal(x.length, whole.length);
    assert.ok(Buffer.from(x.buffer).equals(Buffer.from(whole.buffer)), 'chunked decode equals one-shot decode');
    const ac = new AbortController();
    const pending = t.read({ signal: ac.signal });
    ac.abort(); // the first chunk is already being read; the next chunk boundary sees the abort
    await assert.rejects(pending, CancelledError);
  } finally {
    await ck.close();
  }
});

test('offsets beyond 4 GiB and a 3 GiB tensor index exactly (sparse file)', async () => {
  const GiB = 2 ** 30;
  const bigNe = [1024, 786432]; // 805,306,368 F32 = 3 GiB
  const farRel = 4.5 * GiB;
  const small = [1.25, -2.5, 3.75, 1e-3, 0, -0, 65504, -1];
  const q8Values = new Float32Array(64).map((_, i) => Math.sin(i) * 3);
  const q8 = quantizeQ8_0(q8Values);
  const { bytes: header, dataOffset } = buildGguf({
    tensors: [
      { name: 'huge', ne: bigNe, type: GgmlType.F32, offset: 0 },
      { name: 'far', ne: [8], type: GgmlType.F32, offset: farRel },
      { name: 'farq', ne: [64], type: GgmlType.Q8_0, offset: farRel + 32 },
    ],
  });
  const path = nodePath.join(os.tmpdir(), `ts-gguf-${process.pid}-sparse.gguf`);
  tmpFiles.push(path);
  const fh = await fsp.open(path, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.truncate(dataOffset + farRel + 32 + q8.length);
    await fh.write(f32Bytes(small), 0, 32, dataOffset + farRel);
    await fh.write(q8, 0, q8.length, dataOffset + farRel + 32);
  } finally {
    await fh.close();
  }
  const ck = await openGguf(path);
  try {
    assert.ok(ck.sizeOnDisk > 4 * GiB);
    const huge = ck.get('huge')!;
    assert.deepEqual(huge.shape, [786432, 1024]);
    assert.equal(huge.params, 805306368);
    assert.equal(huge.byteLength, 3 * GiB);
    assert.equal(huge.byteOffset, dataOffset);
    const far = ck.get('far')!;
    assert.equal(far.byteOffset, dataOffset + farRel);
    assert.deepEqual(Array.from(await far.read()), small.map(Math.fround));
    const farq = ck.get('farq')!;
    assert.equal(farq.byteOffset, dataOffset + farRel + 32);
    assert.deepEqual(await farq.readRaw(), q8);
    assert.deepEqual(await farq.read(), dequantize(GgmlType.Q8_0, q8));
  } finally {
    await ck.close();
  }
});

// ---------- corrupt files ----------

test('corrupt GGUF files give CheckpointErrors that name the file and the tensor / byte offset', async (t) => {
  const good = (): BuildOptions => ({
    kv: [{ key: 'general.name', type: T.str, value: 'x' }],
    tensors: [
      { name: 'a', ne: [8], type: GgmlType.F32, offset: 0 },
      { name: 'b', ne: [32, 2], type: GgmlType.Q8_0, offset: 32 },
    ],
    data: new Uint8Array(32 + 68),
  });
  const build = (o: BuildOptions) => buildGguf(o).bytes;
  const real = readFileSync(FIX + 'pico/pico_q8_0.gguf');
  const realHeaderEnd = 4000; // data offset of pico_q8_0.gguf (checked below)
  // the tensor whose data ends last is the one a truncated file cuts
  let lastTensor = '';
  {
    const ck = await openGguf(FIX + 'pico/pico_q8_0.gguf');
    const last = ck.tensors.reduce((a, b) => (b.byteOffset + b.byteLength > a.byteOffset + a.byteLength ? b : a));
    lastTensor = last.name;
    assert.equal(last.byteOffset + last.byteLength, real.length, 'the last tensor ends at the end of the file');
    await ck.close();
  }

  const cases: Array<{ name: string; bytes: () => Uint8Array; pattern: RegExp; tensor?: string; offset?: number | 'any' }> = [
    { name: 'sanity: the good file opens', bytes: () => build(good()), pattern: /never/ },
    { name: 'bad magic', bytes: () => build({ ...good(), magic: 'GGUG' }), pattern: /not a GGUF file/, offset: 0 },
    { name: 'version 1', bytes: () => build({ ...good(), version: 1 }), pattern: /GGUF v1 is not supported/, offset: 4 },
    { name: 'version 4', bytes: () => build({ ...good(), version: 4 }), pattern: /unsupported GGUF version 4/, offset: 4 },
    { name: 'big-endian', bytes: () => build({ ...good(), version: 0x03000000 }), pattern: /big-endian/, offset: 4 },
    { name: 'truncated in the magic', bytes: () => real.subarray(0, 3), pattern: /unexpected end of file|file ends/, offset: 0 },
    { name: 'truncated header (in the KV pairs)', bytes: () => real.subarray(0, 100), pattern: /remain in the file|unexpected end|truncated/, offset: 'any' },
    { name: 'truncated header (in the tensor infos)', bytes: () => real.subarray(0, realHeaderEnd - 500), pattern: /remain in the file|unexpected end|truncated/, offset: 'any' },
    { name: 'truncated data', bytes: () => real.subarray(0, real.length - 100), pattern: /ends past the end of the file/, tensor: lastTensor, offset: 'any' },
    { name: 'tensor offset past EOF', bytes: () => { const g = good(); g.tensors![1].offset = 2n ** 40n; return build(g); }, pattern: /ends past the end of the file/, tensor: 'b', offset: 'any' },
    { name: 'tensor offset 2^63', bytes: () => { const g = good(); g.tensors![1].offset = 2n ** 63n; return build(g); }, pattern: /beyond any file/, tensor: 'b', offset: 'any' },
    { name: 'misaligned tensor offset', bytes: () => { const g = good(); g.tensors![1].offset = 48; return build(g); }, pattern: /not a multiple of the alignment 32/, tensor: 'b', offset: 'any' },
    { name: 'overlapping tensors', bytes: () => { const g = good(); g.tensors![0].ne = [16]; return build(g); }, pattern: /overlaps tensor a/, tensor: 'b', offset: 'any' },
    { name: 'unknown type id 200', bytes: () => { const g = good(); g.tensors![1].type = 200; return build(g); }, pattern: /unknown ggml type id 200/, tensor: 'b', offset: 'any' },
    { name: 'tensor count 2^60', bytes: () => build({ ...good(), tensorCount: 2n ** 60n }), pattern: /count 1152921504606846976 needs at least/, offset: 8 },
    { name: 'KV count 2^64-1', bytes: () => build({ ...good(), kvCount: 2n ** 64n - 1n }), pattern: /count 18446744073709551615/, offset: 16 },
    { name: 'string length 2^60', bytes: () => { const w = new ByteWriter(); w.push(new TextEncoder().encode('GGUF')); w.u32(3); w.u64(0); w.u64(1); w.str('k', 2n ** 60n); w.push(new Uint8Array(64)); return w.bytes(); }, pattern: /metadata key #0: string length 1152921504606846976 needs at least/, offset: 24 },
    { name: 'u32 array of 2^60 items', bytes: () => build({ ...good(), kv: [{ key: 'big', type: T.arr, value: { itemType: T.u32, items: [], countOverride: 2n ** 60n } }] }), pattern: /metadata big array: count/, offset: 'any' },
    { name: 'string array of 2^59 items', bytes: () => build({ ...good(), kv: [{ key: 'toks', type: T.arr, value: { itemType: T.str, items: ['a'], countOverride: 2n ** 59n } }] }), pattern: /metadata toks array: count/, offset: 'any' },
    { name: 'string array longer than the file', bytes: () => build({ ...good(), kv: [{ key: 'toks', type: T.arr, value: { itemType: T.str, items: ['a', 'b'], countOverride: 40n } }] }), pattern: /toks/, offset: 'any' },
    { name: 'unknown value type', bytes: () => build({ ...good(), kv: [{ key: 'weird', type: 13, value: undefined }] }), pattern: /metadata weird: unknown value type 13/, offset: 'any' },
    { name: 'unknown array item type', bytes: () => build({ ...good(), kv: [{ key: 'weird', type: T.arr, value: { itemType: 99, items: [] } }] }), pattern: /unknown array item type 99/, offset: 'any' },
    { name: 'bool byte 2', bytes: () => build({ ...good(), kv: [{ key: 'flag', type: T.bool, value: 2 }] }), pattern: /flag: bool byte is 2/, offset: 'any' },
    { name: 'duplicate key', bytes: () => build({ ...good(), kv: [{ key: 'k', type: T.u8, value: 1 }, { key: 'k', type: T.u8, value: 2 }] }), pattern: /"k" appears twice/, offset: 'any' },
    { name: 'arrays nested 17 deep', bytes: () => {
      let v: ArrayValue = { itemType: T.u8, items: [1] };
      for (let i = 0; i < 17; i++) v = { itemType: T.arr, items: [v] };
      return build({ ...good(), kv: [{ key: 'deep', type: T.arr, value: v }] });
    }, pattern: /nested more than 16 deep/, offset: 'any' },
    { name: 'alignment not a power of two', bytes: () => build({ ...good(), kv: [{ key: 'general.alignment', type: T.u32, value: 48 }] }), pattern: /power-of-two uint32, found uint32 48/ },
    { name: 'alignment of the wrong type', bytes: () => build({ ...good(), kv: [{ key: 'general.alignment', type: T.str, value: '32' }] }), pattern: /power-of-two uint32, found string/ },
    { name: 'five dimensions', bytes: () => { const g = good(); g.tensors![0].ne = [1, 1, 1, 1, 8]; return build(g); }, pattern: /5 dimensions, ggml allows at most 4/, tensor: 'a', offset: 'any' },
    { name: 'dimension 2^63', bytes: () => { const g = good(); g.tensors![0].ne = [2n ** 63n]; return build(g); }, pattern: /ne0 = 9223372036854775808 is not a valid size/, tensor: 'a', offset: 'any' },
    { name: 'element count overflow', bytes: () => { const g = good(); g.tensors![0].ne = [2 ** 30, 2 ** 30, 2 ** 30]; return build(g); }, pattern: /overflow/, tensor: 'a', offset: 'any' },
    { name: 'Q8_0 row not a whole number of blocks', bytes: () => { const g = good(); g.tensors![1].ne = [33, 2]; return build(g); }, pattern: /ne0 = 33 is not a multiple of the Q8_0 block size 32/, tensor: 'b', offset: 'any' },
    { name: 'duplicate tensor name', bytes: () => { const g = good(); g.tensors![1].name = 'a'; return build(g); }, pattern: /tensor name appears twice/, tensor: 'a', offset: 'any' },
    { name: 'n_dims 2^32-1', bytes: () => { const g = good(); g.tensors![0].nDims = 0xffffffff; g.tensors![0].ne = []; return build(g); }, pattern: /4294967295 dimensions/, tensor: 'a', offset: 'any' },
  ];
  assert.equal(buildGguf({ ...good() }).dataOffset % 32, 0);
  // the constant above is the real fixture's data offset
  const fa = await FileAccessor.open(FIX + 'pico/pico_q8_0.gguf');
  try { assert.equal((await readGgufHeader(fa)).dataOffset, realHeaderEnd); } finally { await fa.close(); }

  for (const c of cases) {
    await t.test(c.name, async () => {
      const path = await tmpFile(c.bytes(), c.name.replace(/[^a-z0-9]+/gi, '_'));
      if (c.name.startsWith('sanity')) {
        assert.equal(await openAndReadAll(path), undefined);
        return;
      }
      const started = Date.now();
      await expectCheckpointError(path, c.pattern, { tensor: c.tensor, offset: c.offset });
      assert.ok(Date.now() - started < 2000, 'fails fast');
    });
  }
});

test('property: random damage to a real GGUF header gives success or a CheckpointError, never another error or a hang', async () => {
  const base = readFileSync(FIX + 'stories260k/stories260K_q8_0.gguf');
  const headerEnd = 14176; // its data offset: everything before is header (KV pairs with a 512-token vocabulary, tensor infos)
  const special = [0n, 1n, 31n, 33n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 53n, 2n ** 60n, 2n ** 63n, 2n ** 64n - 1n];
  const damage = fc.record({
    edits: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('byte' as const), pos: fc.integer({ min: 0, max: headerEnd - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ kind: fc.constant('u64' as const), pos: fc.integer({ min: 0, max: headerEnd - 8 }), value: fc.constantFrom(...special) }),
        fc.record({ kind: fc.constant('u32' as const), pos: fc.integer({ min: 0, max: headerEnd - 4 }), value: fc.integer({ min: 0, max: 0xffffffff }) }),
      ),
      { minLength: 1, maxLength: 6 },
    ),
    truncate: fc.oneof(
      { arbitrary: fc.constant(null), weight: 3 },
      { arbitrary: fc.integer({ min: 0, max: base.length }), weight: 1 },
    ),
  });
  let run = 0, opened = 0, refused = 0;
  await fc.assert(
    fc.asyncProperty(damage, async ({ edits, truncate }) => {
      const bytes = new Uint8Array(base);
      const dv = new DataView(bytes.buffer);
      for (const e of edits) {
        if (e.kind === 'byte') bytes[e.pos] = e.value;
        else if (e.kind === 'u32') dv.setUint32(e.pos, e.value, true);
        else dv.setBigUint64(e.pos, e.value, true);
      }
      const file = truncate === null ? bytes : bytes.subarray(0, truncate);
      const path = nodePath.join(os.tmpdir(), `ts-gguf-${process.pid}-prop-${run++}.gguf`);
      await fsp.writeFile(path, file);
      try {
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          openAndReadAll(path),
          new Promise((resolve) => { timer = setTimeout(() => resolve(new Error('hang: no result within 10 s')), 10_000); }),
        ]);
        clearTimeout(timer);
        if (outcome === undefined) { opened++; return; }
        if (!(outcome instanceof CheckpointError)) {
          throw new Error(`expected success or CheckpointError, got ${outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : String(outcome)}`);
        }
        assert.ok(outcome.message.startsWith(path));
        refused++;
      } finally {
        await fsp.rm(path, { force: true });
      }
    }),
    { numRuns: 200, seed: 424242 },
  );
  // Both outcomes happen (damage to string bytes or data offsets can leave the file readable).
  assert.ok(opened > 0 && refused > 0, `opened ${opened}, refused ${refused}`);
});
