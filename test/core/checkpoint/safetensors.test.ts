import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { openSafetensors, openSafetensorsIndex } from '../../../src/core/checkpoint/safetensors';
import { open } from '../../../src/core/checkpoint/open';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { floatToBf16 } from '../../../src/core/checkpoint/dtype';
import {
  FIXTURES, buildSafetensors, frobenius, loadSpectra, splitSafetensors, tempDir, type RawTensor,
} from './safetensorsTestUtil';

const STORIES = path.join(FIXTURES, 'stories260k', 'stories260K.safetensors');
const PICO = path.join(FIXTURES, 'pico', 'pico.safetensors');
const PICO_F16 = path.join(FIXTURES, 'pico', 'pico_f16.safetensors');

/** Float16 has an 11-bit significand: rounding moves each element by at most 2^-11 of itself, hence the norm too. */
const F16_REL = 2 ** -11;

const cases = [
  { file: STORIES, model: 'stories260k' as const, dtype: 'F32', rel: 1e-5 },
  { file: PICO, model: 'pico' as const, dtype: 'F32', rel: 1e-5 },
  { file: PICO_F16, model: 'pico' as const, dtype: 'F16', rel: F16_REL + 1e-6 },
];

for (const c of cases) {
  test(`${path.basename(c.file)}: index matches the header and the reference spectra`, async () => {
    const raw = await splitSafetensors(c.file);
    const ckpt = await open(c.file);
    try {
      assert.equal(ckpt.format, 'safetensors');
      assert.equal(ckpt.formatDetail, 'safetensors');
      assert.deepEqual(ckpt.files, [path.resolve(c.file)]);
      assert.equal(ckpt.sizeOnDisk, (await fsp.stat(c.file)).size);
      const headerNames = Object.keys(raw.header).filter((k) => k !== '__metadata__');
      assert.deepEqual(ckpt.tensors.map((t) => t.name), headerNames);
      for (const t of ckpt.tensors) {
        const h = raw.header[t.name];
        assert.equal(t.dtype, c.dtype, t.name);
        assert.deepEqual(t.shape, h.shape, t.name);
        assert.equal(t.byteOffset, 8 + raw.headerLength + h.data_offsets[0], t.name);
        assert.equal(t.byteLength, h.data_offsets[1] - h.data_offsets[0], t.name);
        assert.equal(t.params, h.shape.reduce((a: number, b: number) => a * b, 1));
      }
      // __metadata__ is exposed unchanged.
      assert.deepEqual(ckpt.metadata, raw.header.__metadata__);
      assert.ok(Object.keys(ckpt.metadata).length > 0);

      const ref = await loadSpectra(c.model);
      assert.ok(ref.length > 0);
      for (const r of ref) {
        const t = ckpt.get(r.name);
        assert.ok(t, `reference tensor ${r.name} missing`);
        assert.deepEqual(t.shape, r.shape, r.name);
        const w = await t.read();
        assert.equal(w.length, r.shape[0] * r.shape[1]);
        // ||W||_F^2 = sum_i s_i^2 (the reference's LAPACK singular values of the F32 weights).
        const fromSpectrum = Math.sqrt(r.singularValues.reduce((s, x) => s + x * x, 0));
        const norm = frobenius(w);
        const relErr = Math.abs(norm - fromSpectrum) / fromSpectrum;
        assert.ok(relErr <= c.rel, `${r.name}: ||W||_F ${norm} vs sqrt(sum s^2) ${fromSpectrum} (rel ${relErr.toExponential(2)} > ${c.rel})`);
      }
    } finally {
      await ckpt.close();
    }
  });
}

test('readRaw returns the exact stored bytes and read() of F16 matches the F32 file within f16 rounding', async () => {
  const f32 = await openSafetensors(PICO);
  const f16 = await openSafetensors(PICO_F16);
  const whole = new Uint8Array(await fsp.readFile(PICO));
  try {
    for (const t of f32.tensors) {
      const rawBytes = await t.readRaw();
      assert.deepEqual(rawBytes, whole.subarray(t.byteOffset, t.byteOffset + t.byteLength), t.name);
      const a = await t.read();
      const b = await f16.get(t.name)!.read();
      assert.equal(b.length, a.length);
      // Round-to-nearest f16: |h - x| <= 2^-11 |x|, or half the smallest subnormal step 2^-25 near zero.
      const bad = a.findIndex((x, i) => !(Math.abs(x - b[i]) <= F16_REL * Math.abs(x) + 2 ** -25));
      assert.equal(bad, -1, `${t.name}[${bad}]: ${a[bad]} vs ${b[bad]}`);
    }
  } finally {
    await f32.close();
    await f16.close();
  }
});

test('sharded: pico.safetensors split into 3 shards + index opens and reads identical values', async () => {
  const dir = await tempDir('shards');
  try {
    const single = await openSafetensors(PICO);
    const raw = await splitSafetensors(PICO);
    const names = single.tensors.map((t) => t.name);
    const shardFiles = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'sub/model-00003-of-00003.safetensors'];
    await fsp.mkdir(path.join(dir, 'sub'));
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < 3; s++) {
      // Round-robin so every shard holds tensors from all blocks, in a different order than the header.
      const mine: RawTensor[] = [];
      for (let i = s; i < names.length; i += 3) {
        const t = single.get(names[i])!;
        mine.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: await t.readRaw() });
        weightMap[t.name] = shardFiles[s];
      }
      await fsp.writeFile(path.join(dir, shardFiles[s]), buildSafetensors(mine.reverse(), { shard: String(s) }));
    }
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    await fsp.writeFile(indexPath, JSON.stringify({ metadata: { total_size: raw.data.length }, weight_map: weightMap }, null, 2));

    const sharded = await open(indexPath);
    try {
      assert.equal(sharded.format, 'safetensors');
      assert.equal(sharded.formatDetail, 'safetensors (3 shards)');
      assert.deepEqual(sharded.files, [indexPath, ...shardFiles.map((f) => path.join(dir, f))]);
      let size = 0;
      for (const f of sharded.files) size += (await fsp.stat(f)).size;
      assert.equal(sharded.sizeOnDisk, size);
      assert.equal(sharded.metadata.total_size, raw.data.length);
      assert.deepEqual((sharded.metadata.__shard_metadata__ as Record<string, unknown>)[shardFiles[2]], { shard: '2' });
      assert.deepEqual([...sharded.tensors.map((t) => t.name)].sort(), [...names].sort());
      for (const t of single.tensors) {
        const u = sharded.get(t.name)!;
        assert.equal(u.file, path.join(dir, weightMap[t.name]));
        assert.deepEqual(u.shape, t.shape);
        assert.equal(u.dtype, t.dtype);
        assert.deepEqual(await u.read(), await t.read(), t.name);
      }
    } finally {
      await sharded.close();
      await single.close();
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('every safetensors dtype decodes; 0-d and empty tensors are indexed', async () => {
  const dir = await tempDir('dtypes');
  try {
    const f64 = new Float64Array([1.5, -2.25, 1e-300]);
    const i64 = new BigInt64Array([-(2n ** 40n), 7n]);
    const bf16 = new Uint16Array([1, -3.5, 0.15625].map(floatToBf16));
    const tensors: RawTensor[] = [
      { name: 'f64', dtype: 'F64', shape: [3], bytes: new Uint8Array(f64.buffer) },
      { name: 'i64', dtype: 'I64', shape: [2], bytes: new Uint8Array(i64.buffer) },
      { name: 'bf16', dtype: 'BF16', shape: [3], bytes: new Uint8Array(bf16.buffer) },
      { name: 'i8', dtype: 'I8', shape: [2, 2], bytes: new Uint8Array(new Int8Array([-128, -1, 0, 127]).buffer) },
      { name: 'u16', dtype: 'U16', shape: [2], bytes: new Uint8Array(new Uint16Array([65535, 3]).buffer) },
      { name: 'bool', dtype: 'BOOL', shape: [3], bytes: new Uint8Array([1, 0, 1]) },
      // OCP FP8 E4M3: 0x38 = 2^(7-7) * 1 = 1.0; 0xC4 = -(1 + 4/8) * 2^(8-7) = -3.0.
      { name: 'fp8', dtype: 'F8_E4M3', shape: [2], bytes: new Uint8Array([0x38, 0xc4]) },
      { name: 'scalar', dtype: 'F32', shape: [], bytes: new Uint8Array(new Float32Array([42]).buffer) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], bytes: new Uint8Array(0) },
    ];
    const file = path.join(dir, 'dtypes.safetensors');
    await fsp.writeFile(file, buildSafetensors(tensors));
    const c = await openSafetensors(file);
    try {
      assert.deepEqual(Array.from(await c.get('f64')!.read()), Array.from(new Float32Array(f64)));
      assert.deepEqual(Array.from(await c.get('i64')!.read()), [-(2 ** 40), 7]);
      assert.deepEqual(Array.from(await c.get('bf16')!.read()), [1, -3.5, 0.15625]);
      assert.deepEqual(Array.from(await c.get('i8')!.read()), [-128, -1, 0, 127]);
      assert.deepEqual(Array.from(await c.get('u16')!.read()), [65535, 3]);
      assert.deepEqual(Array.from(await c.get('bool')!.read()), [1, 0, 1]);
      assert.deepEqual(Array.from(await c.get('fp8')!.read()), [1, -3]);
      const scalar = c.get('scalar')!;
      assert.deepEqual(scalar.shape, []);
      assert.equal(scalar.params, 1);
      assert.deepEqual(Array.from(await scalar.read()), [42]);
      const empty = c.get('empty')!;
      assert.equal(empty.params, 0);
      assert.equal(empty.byteLength, 0);
      assert.equal((await empty.read()).length, 0);
    } finally {
      await c.close();
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a cancelled read throws CancelledError, not garbage', async () => {
  const c = await openSafetensors(PICO);
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(c.tensors[1].read({ signal: ac.signal }), (e: Error) => e.name === 'CancelledError');
  } finally {
    await c.close();
  }
});

test('openSafetensorsIndex on a JSON without weight_map is a CheckpointError', async () => {
  const dir = await tempDir('noindex');
  try {
    const f = path.join(dir, 'config.json');
    await fsp.writeFile(f, '{"hidden_size": 64}');
    await assert.rejects(openSafetensorsIndex(f), (e: unknown) => e instanceof CheckpointError && /weight_map/.test(e.message));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
