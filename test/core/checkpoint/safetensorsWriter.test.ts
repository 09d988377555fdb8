/**
 * The safetensors writer on the real pico checkpoint: dense F32 / F16 / BF16 and raw pass-through
 * round trips through our reader, the header layout the format prescribes, sharded output with its
 * index, factorized (low-rank / MPO) output contracted back by reconstructFactorized, and bad input.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp, readFileSync } from 'node:fs';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import {
  writeSafetensors, sourcesFromCheckpoint, reconstructFactorized, parseFactorizationMetadata, factorizationMetadataValue,
  lowRankFactorization, mpoFactorization, factorShapes, FACTORIZATION_METADATA_KEY, type TensorSource,
} from '../../../src/core/checkpoint/safetensorsWriter';
import { open } from '../../../src/core/checkpoint/open';
import type { Checkpoint } from '../../../src/core/checkpoint/types';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { floatToHalf, floatToBf16, halfToFloat, bf16ToFloat } from '../../../src/core/checkpoint/dtype';
import { getLinalgBackend } from '../../../src/core/linalg';
import { decomposeMpo, reconstructMpo } from '../../../src/core/analysis/mpo';
import { mulberry32 } from '../../../src/core/analysis/mpoRandom';

const SHARED = path.resolve(__dirname, '../../../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');

let dir: string;
let pico: Checkpoint;
before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-stwriter-'));
  pico = await open(PICO);
});
after(async () => {
  await pico.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The header JSON and data region of a file, parsed with plain fs + JSON (not our reader). */
function splitFile(file: string): { n: number; text: string; header: Record<string, any>; data: Buffer } {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const text = buf.subarray(8, 8 + n).toString('utf8');
  return { n, text, header: JSON.parse(text), data: buf.subarray(8 + n) };
}

/** Checks the layout rules: N % 8 == 0, space padding, offsets contiguous in `order`, data region exactly filled. */
function assertLayout(file: string, order: string[]): void {
  const { n, text, header, data } = splitFile(file);
  assert.equal(n % 8, 0, 'header length is a multiple of 8');
  assert.match(text, /\} *$/, 'header padded with spaces only');
  assert.ok(text.length - text.trimEnd().length < 8, 'at most 7 padding spaces');
  // Order as in the text (JSON.parse would move integer-like keys such as "10" to the front).
  const at = (k: string) => text.indexOf(`${JSON.stringify(k)}:{`);
  const names = Object.keys(header).filter((k) => k !== '__metadata__').sort((x, y) => at(x) - at(y));
  assert.deepEqual(names, order, 'tensor entries in the order given');
  let off = 0;
  for (const name of order) {
    const [b, e] = header[name].data_offsets;
    assert.equal(b, off, `${name} starts where the previous ended`);
    off = e;
  }
  assert.equal(off, data.length, 'data region exactly filled');
}

test('pico -> dense F32: every tensor bitwise equal, layout and __metadata__ as written', async () => {
  const target = path.join(dir, 'pico_f32.safetensors');
  const metadata = { 'tensor_scalpel.recipe': '{"ops":[]}', source: 'pico.safetensors', note: 'ünïcødé ✓' };
  const progress: Array<[number, string]> = [];
  const res = await writeSafetensors(target, sourcesFromCheckpoint(pico, { dtype: 'F32' }), {
    inputs: pico.files, metadata, onProgress: (p) => progress.push([p.index, p.name]),
  });
  assert.deepEqual(progress, pico.tensors.map((t, i) => [i, t.name]), 'one progress report per tensor, in order');
  assert.equal(res.totalSize, pico.tensors.reduce((a, t) => a + t.byteLength, 0));
  assertLayout(target, pico.tensors.map((t) => t.name));
  const out = await open(target);
  try {
    // format: pt is added (transformers refuses metadata without a format); the rest as given.
    assert.deepEqual(out.metadata, { format: 'pt', ...metadata });
    assert.deepEqual(out.tensors.map((t) => [t.name, t.dtype, t.shape]), pico.tensors.map((t) => [t.name, 'F32', t.shape]));
    for (const t of pico.tensors) {
      const a = Buffer.from(await t.readRaw()), b = Buffer.from(await out.get(t.name)!.readRaw());
      assert.ok(a.equals(b), `${t.name} bitwise equal`);
    }
  } finally {
    await out.close();
  }
});

test('pico -> F16 and BF16: every stored element equals floatToHalf / floatToBf16 of the source', async () => {
  for (const dtype of ['F16', 'BF16'] as const) {
    const target = path.join(dir, `pico_${dtype}.safetensors`);
    await writeSafetensors(target, sourcesFromCheckpoint(pico, { dtype }), { inputs: pico.files });
    const out = await open(target);
    try {
      const encode = dtype === 'F16' ? floatToHalf : floatToBf16;
      const decode = dtype === 'F16' ? halfToFloat : bf16ToFloat;
      let checked = 0;
      for (const t of pico.tensors) {
        const o = out.get(t.name)!;
        assert.equal(o.dtype, dtype);
        const src = await t.read();
        const raw = await o.readRaw();
        const bits = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        const vals = await o.read();
        for (let i = 0; i < src.length; i++) {
          if (bits[i] !== encode(src[i])) assert.fail(`${dtype} ${t.name}[${i}]: stored ${bits[i]}, floatTo${dtype} gives ${encode(src[i])}`);
          if (vals[i] !== Math.fround(decode(bits[i]))) assert.fail(`${t.name}[${i}] decodes wrongly`);
        }
        checked += src.length;
      }
      assert.equal(checked, 818_048, `${dtype}: every parameter checked`);
    } finally {
      await out.close();
    }
  }
});

test('default sources pass the stored bytes through; dtype can be chosen per tensor', async () => {
  const target = path.join(dir, 'pico_mixed.safetensors');
  // 2-D matrices as BF16, everything else kept (raw copy).
  await writeSafetensors(target, sourcesFromCheckpoint(pico, { dtype: (t) => (t.shape.length === 2 ? 'BF16' : undefined) }), { inputs: pico.files });
  const out = await open(target);
  try {
    for (const t of pico.tensors) {
      const o = out.get(t.name)!;
      assert.equal(o.dtype, t.shape.length === 2 ? 'BF16' : 'F32', t.name);
      if (t.shape.length !== 2) assert.ok(Buffer.from(await t.readRaw()).equals(Buffer.from(await o.readRaw())), `${t.name} copied raw`);
    }
  } finally {
    await out.close();
  }
  // A raw pass-through of the F16 fixture keeps F16 bytes unchanged.
  const f16 = await open(path.join(SHARED, 'fixtures/pico/pico_f16.safetensors'));
  try {
    const copy = path.join(dir, 'pico_f16_copy.safetensors');
    await writeSafetensors(copy, sourcesFromCheckpoint(f16), { inputs: f16.files, metadata: f16.metadata as Record<string, string> });
    const a = splitFile(f16.path), b = splitFile(copy);
    // Same tensors, same bytes per tensor (the data region may be ordered differently from the fixture's).
    for (const t of f16.tensors) {
      const [x0, x1] = a.header[t.name].data_offsets, [y0, y1] = b.header[t.name].data_offsets;
      assert.ok(a.data.subarray(x0, x1).equals(b.data.subarray(y0, y1)), `${t.name} F16 bytes unchanged`);
      assert.equal(b.header[t.name].dtype, 'F16');
    }
  } finally {
    await f16.close();
  }
});

test('sharded pico (3 shards): names, index (total_size, weight_map), every shard within the limit, values bitwise', async () => {
  const sub = path.join(dir, 'sharded');
  await fsp.mkdir(sub);
  const total = pico.tensors.reduce((a, t) => a + t.byteLength, 0);
  const maxShardBytes = Math.ceil(total / 3) + 70_000; // room for three shards whatever the tensor boundaries
  const res = await writeSafetensors(path.join(sub, 'model.safetensors'), sourcesFromCheckpoint(pico), {
    inputs: pico.files, maxShardBytes, metadata: { format: 'pt' },
  });
  const shardNames = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
  assert.deepEqual((await fsp.readdir(sub)).sort(), [...shardNames, 'model.safetensors.index.json'].sort(), 'exactly the shards and the index, no temp files');
  assert.equal(res.index, path.join(sub, 'model.safetensors.index.json'));
  const index = JSON.parse(await fsp.readFile(res.index!, 'utf8'));
  assert.equal(index.metadata.total_size, total, 'total_size = sum of tensor bytes');
  assert.equal(index.metadata.format, 'pt');
  assert.deepEqual(Object.keys(index.weight_map), pico.tensors.map((t) => t.name), 'every tensor in the weight map, in order');
  // The weight map names the shard whose header really holds the tensor; shards are consecutive runs.
  let shardIdx = 0, sum = 0;
  for (const t of pico.tensors) {
    const inShard = index.weight_map[t.name];
    if (inShard !== shardNames[shardIdx]) { shardIdx++; sum = 0; }
    assert.equal(inShard, shardNames[shardIdx], `${t.name} in consecutive shard order`);
    assert.ok(t.name in splitFile(path.join(sub, inShard)).header, `${t.name} is in ${inShard}'s header`);
    sum += t.byteLength;
    assert.ok(sum <= maxShardBytes, 'shard data within maxShardBytes');
  }
  assert.equal(shardIdx, 2);
  for (const s of shardNames) {
    const { header } = splitFile(path.join(sub, s));
    assertLayout(path.join(sub, s), pico.tensors.map((t) => t.name).filter((n) => n in header));
  }
  const out = await open(res.index!);
  try {
    assert.equal(out.formatDetail, 'safetensors (3 shards)');
    assert.equal(out.tensors.length, pico.tensors.length);
    for (const t of pico.tensors) assert.ok(Buffer.from(await t.readRaw()).equals(Buffer.from(await out.get(t.name)!.readRaw())), t.name);
  } finally {
    await out.close();
  }
});

/** C = A @ B in float64 (the test's own product). */
function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const x = a[i * k + p];
    for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
  }
  return c;
}

test('low-rank factors (truncated SVD of a real 128x128 pico matrix) reconstruct to a @ b, with the Eckart-Young error', async () => {
  const name = 'h.0.attn.c_proj.weight';
  const k = 16;
  const w = await pico.get(name)!.read();
  const svd = new SingularValueDecomposition(new Matrix(Array.from({ length: 128 }, (_, r) => Array.from(w.subarray(r * 128, r * 128 + 128)))));
  const U = svd.leftSingularVectors, V = svd.rightSingularVectors, s = svd.diagonal;
  // a = U_k diag(s_k) [128, k], b = V_k^T [k, 128].
  const a = new Float32Array(128 * k), b = new Float32Array(k * 128);
  for (let r = 0; r < 128; r++) for (let j = 0; j < k; j++) a[r * k + j] = U.get(r, j) * s[j];
  for (let j = 0; j < k; j++) for (let c = 0; c < 128; c++) b[j * 128 + c] = V.get(c, j);

  const entry = lowRankFactorization(name, 128, 128, k, 'F32');
  const sources: TensorSource[] = [];
  for (const t of pico.tensors) {
    if (t.name === name) {
      sources.push({ name: entry.tensors[0], shape: [128, k], dtype: 'F32', data: async () => a });
      sources.push({ name: entry.tensors[1], shape: [k, 128], dtype: 'F32', data: async () => b });
    } else {
      sources.push({ name: t.name, shape: t.shape, dtype: t.dtype, data: () => t.readRaw() });
    }
  }
  const target = path.join(dir, 'pico_lowrank.safetensors');
  await writeSafetensors(target, sources, { inputs: pico.files, metadata: { [FACTORIZATION_METADATA_KEY]: factorizationMetadataValue({ [name]: entry }) } });

  const out = await open(target);
  try {
    assert.equal(out.get(name), undefined, 'the dense tensor is replaced by its factors');
    assert.deepEqual(out.get(`${name}.lowrank.a`)!.shape, [128, k]);
    assert.deepEqual(out.get(`${name}.lowrank.b`)!.shape, [k, 128]);
    const fac = parseFactorizationMetadata(out.metadata, out.path);
    assert.deepEqual([...fac.keys()], [name]);
    const rebuilt = await reconstructFactorized(fac.get(name)!, async (n) => out.get(n)!.read());
    const expect = matmul64(a, b, 128, k, 128);
    let maxDiff = 0, err2 = 0, w2 = 0;
    for (let i = 0; i < expect.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(rebuilt[i] - expect[i]));
      err2 += (w[i] - rebuilt[i]) ** 2;
      w2 += w[i] ** 2;
    }
    assert.ok(maxDiff < 1e-6, `reconstruction = a @ b (max |diff| ${maxDiff})`);
    // Eckart-Young: ||W - W_k||_F / ||W||_F = sqrt(sum_{j>k} s_j^2) / sqrt(sum s_j^2), with LAPACK's s_j.
    const ref = (JSON.parse(readFileSync(path.join(SHARED, 'reference/pico.spectra.json'), 'utf8')).tensors as Array<{ name: string; singularValues: number[] }>)
      .find((t) => t.name === name)!.singularValues;
    const tail = Math.sqrt(ref.slice(k).reduce((acc, x) => acc + x * x, 0) / ref.reduce((acc, x) => acc + x * x, 0));
    const rel = Math.sqrt(err2 / w2);
    assert.ok(Math.abs(rel - tail) < 1e-4 * tail + 1e-6, `relative error ${rel} vs Eckart-Young ${tail}`);
  } finally {
    await out.close();
  }
});

/** A small seeded generator for test data: mulberry32, centred on 0 (uniform in [-0.5, 0.5)). */
function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() - 0.5;
}

test('MPO cores with padding: reconstructFactorized equals the element-wise sum over bond indices', async () => {
  // W [60, 90] with out = 4*4*4 = 64 (4 padded rows) and in = 3*5*6 = 90, bonds chi = (3, 5).
  const rows = 60, cols = 90, of = [4, 4, 4], inf = [3, 5, 6], chi = [1, 3, 5, 1];
  const entry = mpoFactorization('blk.w', rows, cols, of, inf, [3, 5]);
  assert.deepEqual(entry.paddedShape, [64, 90]);
  assert.deepEqual(factorShapes(entry), [[1, 4, 3, 3], [3, 4, 5, 5], [5, 4, 6, 1]]);
  const r = rng(7);
  const cores = factorShapes(entry).map((s) => Float32Array.from({ length: s.reduce((x, y) => x * y, 1) }, r));
  const target = path.join(dir, 'mpo.safetensors');
  await writeSafetensors(target, entry.tensors.map((n, k) => ({ name: n, shape: factorShapes(entry)[k], dtype: 'F32', data: async () => cores[k] })), {
    inputs: [], metadata: { [FACTORIZATION_METADATA_KEY]: factorizationMetadataValue({ 'blk.w': entry }) },
  });
  const out = await open(target);
  try {
    assert.deepEqual(out.tensors.map((t) => t.name), ['blk.w.mpo.core.1', 'blk.w.mpo.core.2', 'blk.w.mpo.core.3']);
    const f = parseFactorizationMetadata(out.metadata).get('blk.w')!;
    const w = await reconstructFactorized(f, async (n) => out.get(n)!.read());
    assert.equal(w.length, rows * cols);
    // G_k[a, o, i, b] at ((a * O + o) * I + i) * B + b.
    const G = (k: number, a: number, o: number, i: number, b: number) => cores[k][((a * of[k] + o) * inf[k] + i) * chi[k + 1] + b];
    let maxDiff = 0;
    for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) {
      const o = [Math.floor(row / 16), Math.floor(row / 4) % 4, row % 4];
      const i = [Math.floor(col / 30), Math.floor(col / 6) % 5, col % 6];
      let sum = 0;
      for (let a1 = 0; a1 < 3; a1++) for (let a2 = 0; a2 < 5; a2++) sum += G(0, 0, o[0], i[0], a1) * G(1, a1, o[1], i[1], a2) * G(2, a2, o[2], i[2], 0);
      maxDiff = Math.max(maxDiff, Math.abs(w[row * cols + col] - sum));
    }
    assert.ok(maxDiff < 1e-6, `max |diff| ${maxDiff}`);
  } finally {
    await out.close();
  }
});

test('MPO cores from the analysis module (TT-SVD of a real pico matrix) reconstruct like reconstructMpo', async () => {
  const name = 'h.1.mlp.c_fc.weight';
  const t = pico.get(name)!;
  const w = await t.read();
  const [rows, cols] = t.shape;
  const backend = await getLinalgBackend();
  const mpo = await decomposeMpo(w, rows, cols, { backend, sites: 3, truncation: { chi: 8 }, spectra: 'sweep' });
  const entry = mpoFactorization(name, rows, cols, mpo.outFactors, mpo.inFactors, mpo.bondDimensions);
  assert.deepEqual(factorShapes(entry), mpo.cores.map((c) => c.shape));
  const target = path.join(dir, 'pico_mpo.safetensors');
  await writeSafetensors(target, entry.tensors.map((n, k) => ({ name: n, shape: mpo.cores[k].shape, dtype: 'F32', data: async () => mpo.cores[k].data })), {
    inputs: pico.files, metadata: { [FACTORIZATION_METADATA_KEY]: factorizationMetadataValue({ [name]: entry }) },
  });
  const out = await open(target);
  try {
    const f = parseFactorizationMetadata(out.metadata).get(name)!;
    const mine = await reconstructFactorized(f, async (n) => out.get(n)!.read());
    const theirs = await reconstructMpo(mpo, backend);
    let maxDiff = 0, err2 = 0, w2 = 0;
    for (let i = 0; i < mine.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(mine[i] - theirs[i]));
      err2 += (w[i] - mine[i]) ** 2;
      w2 += w[i] ** 2;
    }
    assert.ok(maxDiff < 1e-5, `equals reconstructMpo (max |diff| ${maxDiff})`);
    assert.ok(Math.abs(Math.sqrt(err2 / w2) - mpo.relativeError) < 1e-4, `relative error ${Math.sqrt(err2 / w2)} vs the decomposition's ${mpo.relativeError}`);
  } finally {
    await out.close();
  }
});

test('factorization metadata is validated', () => {
  const meta = (tensors: unknown) => ({ [FACTORIZATION_METADATA_KEY]: JSON.stringify({ version: 1, tensors }) });
  assert.equal(parseFactorizationMetadata({}).size, 0);
  assert.throws(() => parseFactorizationMetadata({ [FACTORIZATION_METADATA_KEY]: '{not json' }), CheckpointError);
  assert.throws(() => parseFactorizationMetadata(meta({ w: { kind: 'svd', shape: [2, 2], tensors: [] } })), /unknown kind/);
  assert.throws(() => parseFactorizationMetadata(meta({ w: { kind: 'lowrank', shape: [2, 2], rank: 0, tensors: ['a', 'b'] } })), /positive rank/);
  assert.throws(() => parseFactorizationMetadata(meta({ w: { kind: 'mpo', shape: [9, 4], outFactors: [2, 4], inFactors: [2, 2], bondDims: [2], tensors: ['a', 'b'] } })), /smaller than the shape/);
  assert.throws(() => parseFactorizationMetadata(meta({ w: { kind: 'mpo', shape: [8, 4], outFactors: [2, 4], inFactors: [2, 2], bondDims: [], tensors: ['a', 'b'] } })), /bondDims/);
  const ok = parseFactorizationMetadata(meta({ w: lowRankFactorization('w', 4, 6, 2) }));
  return assert.rejects(
    reconstructFactorized(ok.get('w')!, async () => new Float32Array(5)),
    (e: Error) => e instanceof CheckpointError && /w\.lowrank\.a/.test(e.message) && /\[4,2\]/.test(e.message),
  );
});

test('bad input is refused with a CheckpointError naming the tensor, and nothing is written', async () => {
  const sub = path.join(dir, 'bad');
  await fsp.mkdir(sub);
  const target = path.join(sub, 'x.safetensors');
  const f = (n: number) => async () => new Float32Array(n);
  const cases: Array<[TensorSource[], RegExp, Record<string, string>?]> = [
    [[{ name: 'a', shape: [2], dtype: 'F32', data: f(2) }, { name: 'a', shape: [2], dtype: 'F32', data: f(2) }], /tensor a: tensor name given twice/],
    [[{ name: 'a', shape: [2, 3], dtype: 'F32', data: f(5) }], /tensor a: the producer returned 5 values, the shape has 6/],
    [[{ name: 'a', shape: [2], dtype: 'I64', data: f(2) }], /tensor a: float values cannot be stored as I64/],
    [[{ name: 'a', shape: [2], dtype: 'F16', data: async () => new Uint8Array(5) }], /tensor a: raw data for F16 has 5 bytes, the shape needs 4/],
    [[{ name: 'a', shape: [2], dtype: 'Q8_0', data: f(2) }], /tensor a: cannot store dtype "Q8_0"/],
    [[{ name: 'a', shape: [-1], dtype: 'F32', data: f(2) }], /tensor a: shape \[-1\]/],
    [[{ name: '__metadata__', shape: [1], dtype: 'F32', data: f(1) }], /invalid tensor name/],
    [[{ name: 'a', shape: [1], dtype: 'F32', data: f(1) }], /__metadata__ value for "k" must be a string/, { k: 3 as unknown as string }],
  ];
  for (const [sources, re, metadata] of cases) {
    await assert.rejects(writeSafetensors(target, sources, { inputs: [], metadata }), (e: Error) => e instanceof CheckpointError && re.test(e.message) && e.message.includes(target), String(re));
    assert.deepEqual(await fsp.readdir(sub), [], `nothing left after ${re}`);
  }
});

test('formatTag: no metadata -> no __metadata__; null -> metadata exactly as given; an own format is kept', async () => {
  const one: TensorSource[] = [{ name: 'a', shape: [1], dtype: 'F32', data: async () => new Float32Array([1]) }];
  const cases: Array<[Record<string, string> | undefined, string | null | undefined, Record<string, string> | undefined]> = [
    [undefined, undefined, undefined],
    [{ k: 'v' }, null, { k: 'v' }],
    [{ k: 'v', format: 'mlx' }, undefined, { k: 'v', format: 'mlx' }],
    [{ k: 'v' }, 'tf', { format: 'tf', k: 'v' }],
  ];
  for (const [metadata, formatTag, expect] of cases) {
    const target = path.join(dir, 'tag.safetensors');
    await writeSafetensors(target, one, { inputs: [], metadata, formatTag });
    assert.deepEqual(splitFile(target).header.__metadata__, expect, JSON.stringify([metadata, formatTag]));
  }
});

test('names that look like integers keep their position in the header', async () => {
  const target = path.join(dir, 'order.safetensors');
  const names = ['z', '10', 'a', '2'];
  await writeSafetensors(target, names.map((name, i) => ({ name, shape: [1], dtype: 'F32', data: async () => new Float32Array([i]) })), { inputs: [] });
  assertLayout(target, names);
  const out = await open(target);
  try {
    for (const [i, n] of names.entries()) assert.deepEqual(Array.from(await out.get(n)!.read()), [i]);
  } finally {
    await out.close();
  }
});
