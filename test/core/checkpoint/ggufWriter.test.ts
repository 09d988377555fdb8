/**
 * The GGUF writer on the real fixtures: copies byte-identical to files written by llama.cpp / gguf-py,
 * F32 -> Q8_0 byte-identical to llama.cpp's own Q8_0 file, F16 / BF16 / Q8_0 values against an
 * independent rounding and quantizer written below, and the output read by an independent parser
 * (@huggingface/gguf) with the same metadata and tensor infos.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp, readFileSync } from 'node:fs';
import { gguf as hfGguf } from '@huggingface/gguf';
import { writeGguf, ggufSourcesFrom, resolveGgufStoreType, GGUF_FILE_TYPE, type GgufWriteResult } from '../../../src/core/checkpoint/ggufWriter';
import { openGguf, type GgufCheckpoint } from '../../../src/core/checkpoint/gguf';
import { CheckpointError } from '../../../src/core/checkpoint/errors';

const FIX = path.resolve(__dirname, '../../../../shared/fixtures');
const STORIES = path.join(FIX, 'real/stories260K.gguf');
const LLAMA2 = path.join(FIX, 'real/llama-2-tiny-random.gguf');

let dir: string;
before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-ggufwriter-')); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function withGguf<T>(file: string, fn: (ck: GgufCheckpoint) => Promise<T>): Promise<T> {
  const ck = await openGguf(file);
  try {
    return await fn(ck);
  } finally {
    await ck.close();
  }
}

/**
 * Independent rounding of a float to a binary format with `mant` stored mantissa bits and smallest
 * normal exponent `emin` (f16: 10, -14; bf16: 7, -126), round half to even, by scaling to the ulp:
 * value = round(x / ulp) * ulp with ulp = 2^(max(e, emin) - mant), e = floor(log2 |x|).
 * Overflow (beyond the largest finite value) -> infinity.
 */
function roundTo(x: number, mant: number, emin: number, maxFinite: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, emin) - mant);
  const q = a / ulp;
  const fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const v = r * ulp;
  if (v > maxFinite) return Math.sign(x) * Infinity;
  return Math.sign(x) * v;
}
const toF16 = (x: number) => roundTo(x, 10, -14, 65504);
const toBf16 = (x: number) => roundTo(x, 7, -126, 3.3895313892515355e38);

/**
 * An independent Q8_0 round trip (ggml's quantize_row_q8_0_ref + dequantize_row_q8_0): per block of
 * 32, d = amax / 127 and id = 1 / d in float32, q = roundf(x * id) (half away from zero),
 * the stored scale is d rounded to f16, and the decoded value is f16(d) * q.
 */
function q8RoundTrip(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = Math.fround(amax / 127);
    const id = d === 0 ? 0 : Math.fround(1 / d);
    const d16 = toF16(d);
    for (let j = 0; j < 32; j++) {
      const v = Math.fround(x[b + j] * id);
      // An int8 has no negative zero: `| 0` turns -0 into 0 like the C cast does.
      const q = (Math.sign(v) * Math.floor(Math.abs(v) + 0.5)) | 0;
      out[b + j] = d16 * q;
    }
  }
  return out;
}

function assertArraysEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}[${i}]: ${actual[i]} != expected ${expected[i]}`);
  }
}

/** @huggingface/gguf's view of a file: metadata as plain values, tensor infos as tuples. */
async function hfView(file: string) {
  const r = await hfGguf(file, { allowLocalFile: true, typedMetadata: true });
  const kv = Object.entries(r.typedMetadata).filter(([k]) => !['version', 'tensor_count', 'kv_count'].includes(k))
    .map(([k, v]) => [k, v.type, (v as { subType?: number }).subType, v.value] as const);
  return {
    version: r.metadata.version,
    kv,
    dataOffset: Number(r.tensorDataOffset),
    tensors: r.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype as number, Number(t.offset)] as [string, number[], number, number]),
  };
}

/** The independent parser sees exactly the tensor infos we planned, and the input's metadata (+ added keys). */
async function assertHfAgrees(out: string, input: string, res: GgufWriteResult, added: string[] = []): Promise<void> {
  const theirsOut = await hfView(out);
  const theirsIn = await hfView(input);
  assert.equal(theirsOut.version, 3);
  assert.equal(theirsOut.dataOffset, res.dataOffset, 'data offset');
  assert.deepEqual(theirsOut.tensors, res.tensors.map((t) => [t.name, t.ne, t.typeId, t.relativeOffset]), 'tensor infos: names, ne, types, offsets');
  const outKv = theirsOut.kv.filter(([k]) => !added.includes(k));
  assert.deepEqual(outKv, theirsIn.kv, 'metadata key/values (with types) as in the input, in order');
  assert.deepEqual(theirsOut.kv.slice(theirsOut.kv.length - added.length).map(([k]) => k), added, 'added keys at the end');
}

test('copies of the GGUF fixtures are byte-identical to the files llama.cpp / gguf-py wrote', async () => {
  for (const f of ['real/stories260K.gguf', 'pico/pico_f32.gguf', 'pico/pico_f16.gguf', 'pico/pico_q8_0.gguf', 'pico/pico_q4_k.gguf', 'stories260k/stories260K_q8_0.gguf']) {
    const input = path.join(FIX, f);
    const out = path.join(dir, `copy_${path.basename(f)}`);
    await withGguf(input, async (ck) => {
      const res = await writeGguf(out, ggufSourcesFrom(ck), { inputs: ck.files, kv: ck.gguf.kv });
      assert.equal(res.fallbacks.length, 0);
      assert.equal(res.fileSize, (await fsp.stat(out)).size);
    });
    assert.ok(readFileSync(out).equals(readFileSync(input)), `${f}: copy is byte-identical`);
  }
});

// The Llama-2 vocabulary holds the token U+FEFF (bytes ef bb bf): strings must be decoded with
// ignoreBOM, or that token reads as "" and the copy differs.
test('llama-2-tiny-random (F16, 32,000-token vocabulary, a U+FEFF token) copies byte-identically', async () => {
  const out = path.join(dir, 'copy_llama2.gguf');
  await withGguf(LLAMA2, (ck) => writeGguf(out, ggufSourcesFrom(ck), { inputs: ck.files, kv: ck.gguf.kv }));
  assert.ok(readFileSync(out).equals(readFileSync(LLAMA2)));
});

test('llama-2-tiny-random round-trips: tensor data identical, metadata and infos identical for @huggingface/gguf', async () => {
  const out = path.join(dir, 'llama2_f16.gguf');
  await withGguf(LLAMA2, async (ck) => {
    const res = await writeGguf(out, ggufSourcesFrom(ck, { type: 'F16' }), { inputs: ck.files, kv: ck.gguf.kv });
    await assertHfAgrees(out, LLAMA2, res);
    await withGguf(out, async (copy) => {
      assert.equal((copy.gguf.kv.get('tokenizer.ggml.tokens')!.value as string[]).length, 32000);
      for (const t of ck.tensors) assert.ok(Buffer.from(await t.readRaw()).equals(Buffer.from(await copy.get(t.name)!.readRaw())), `${t.name} bytes`);
    });
  });
});

test('stories260K F32 -> Q8_0 is byte-identical to llama.cpp\'s stories260K_q8_0.gguf (ffn_down falls back to F16)', async () => {
  const out = path.join(dir, 'stories_q8_0.gguf');
  const progress: string[] = [];
  await withGguf(STORIES, async (ck) => {
    const res = await writeGguf(out, ggufSourcesFrom(ck, { type: 'Q8_0' }), { inputs: ck.files, kv: ck.gguf.kv, onProgress: (p) => progress.push(`${p.name}:${p.storedType}`) });
    assert.deepEqual(res.fallbacks.map((f) => [f.name, f.requested, f.stored]), [0, 1, 2, 3, 4].map((i) => [`blk.${i}.ffn_down.weight`, 'Q8_0', 'F16']));
    assert.match(res.fallbacks[0].reason, /row length 172 is not a multiple of the Q8_0 block size 32/);
    assert.deepEqual(progress, ck.tensors.map((t) => `${t.name}:${t.shape.length === 1 ? 'F32' : t.name.includes('ffn_down') ? 'F16' : 'Q8_0'}`));
    await assertHfAgrees(out, STORIES, res);
  });
  assert.ok(readFileSync(out).equals(readFileSync(path.join(FIX, 'stories260k/stories260K_q8_0.gguf'))), 'byte-identical to the llama.cpp file');
});

test('pico F32 -> Q8_0 with general.file_type set is byte-identical to pico_q8_0.gguf', async () => {
  const out = path.join(dir, 'pico_q8_0.gguf');
  await withGguf(path.join(FIX, 'pico/pico_f32.gguf'), (ck) => writeGguf(out, ggufSourcesFrom(ck, { type: 'Q8_0' }), {
    inputs: ck.files, kv: ck.gguf.kv, extraKv: { 'general.file_type': { type: 'uint32', value: GGUF_FILE_TYPE.MOSTLY_Q8_0 } },
  }));
  assert.ok(readFileSync(out).equals(readFileSync(path.join(FIX, 'pico/pico_q8_0.gguf'))));
});

test('stories260K -> F16, BF16, Q8_0: our reader decodes exactly the independently rounded / quantized values', async () => {
  await withGguf(STORIES, async (ck) => {
    for (const type of ['F16', 'BF16', 'Q8_0'] as const) {
      const out = path.join(dir, `stories_${type}_values.gguf`);
      const res = await writeGguf(out, ggufSourcesFrom(ck, { type }), { inputs: ck.files, kv: ck.gguf.kv });
      await withGguf(out, async (w) => {
        assert.deepEqual([...w.gguf.kv.keys()], [...ck.gguf.kv.keys()]);
        for (const t of ck.tensors) {
          const src = await t.read();
          const o = w.get(t.name)!;
          const got = await o.read();
          const stored = res.tensors.find((x) => x.name === t.name)!.storedType;
          assert.equal(o.dtype, stored);
          const expect = t.shape.length === 1 ? src
            : stored === 'Q8_0' ? q8RoundTrip(src)
            : stored === 'F16' ? src.map(toF16)
            : src.map(toBf16);
          assertArraysEqual(got, expect, `${type} ${t.name}`);
        }
      });
    }
  });
});

test('alignment 64 and an added recipe key: offsets aligned, key readable, independent parser agrees', async () => {
  const out = path.join(dir, 'stories_align64.gguf');
  const recipe = JSON.stringify({ compress: { 'blk.*.ffn_up.weight': { rank: 16 } } });
  await withGguf(STORIES, async (ck) => {
    const res = await writeGguf(out, ggufSourcesFrom(ck, { type: (t) => (t.name.startsWith('blk.0.') ? 'F16' : undefined) }), {
      inputs: ck.files, kv: ck.gguf.kv, alignment: 64, extraKv: { 'tensor_scalpel.recipe': recipe },
    });
    assert.equal(res.alignment, 64);
    assert.equal(res.dataOffset % 64, 0);
    for (const t of res.tensors) assert.equal(t.relativeOffset % 64, 0, `${t.name} offset aligned`);
    await assertHfAgrees(out, STORIES, res, ['tensor_scalpel.recipe', 'general.alignment']);
    await withGguf(out, async (w) => {
      assert.equal(w.gguf.alignment, 64);
      assert.deepEqual(w.gguf.kv.get('tensor_scalpel.recipe'), { type: 'string', value: recipe });
      for (const t of ck.tensors) {
        const expect = t.name.startsWith('blk.0.') && t.shape.length === 2 ? (await t.read()).map(toF16) : await t.read();
        assertArraysEqual(await w.get(t.name)!.read(), expect, t.name);
      }
    });
  });
});

test('llama-2-tiny-random -> Q8_0: exactly the tensors whose rows are not whole 32-blocks fall back to F16', async () => {
  const out = path.join(dir, 'llama2_q8.gguf');
  await withGguf(LLAMA2, async (ck) => {
    const res = await writeGguf(out, ggufSourcesFrom(ck, { type: 'Q8_0' }), { inputs: ck.files, kv: ck.gguf.kv });
    const expectFallback = ck.tensors.filter((t) => t.shape.length === 2 && t.shape[1] % 32 !== 0).map((t) => t.name);
    assert.ok(expectFallback.length > 0 && expectFallback.includes('token_embd.weight'));
    assert.deepEqual(res.fallbacks.map((f) => f.name), expectFallback);
    assert.ok(res.tensors.some((t) => t.storedType === 'Q8_0'), 'ffn_down [8, 32] is quantized');
    await assertHfAgrees(out, LLAMA2, res);
    await withGguf(out, async (w) => {
      for (const t of ck.tensors) {
        const src = await t.read();
        const stored = w.get(t.name)!.dtype;
        assertArraysEqual(await w.get(t.name)!.read(), stored === 'Q8_0' ? q8RoundTrip(src) : src, t.name);
      }
    });
  });
});

test('resolveGgufStoreType and bad input', async () => {
  assert.deepEqual(resolveGgufStoreType([64, 172], 'Q8_0').type, 'F16');
  assert.deepEqual(resolveGgufStoreType([172, 64], 'Q8_0'), { type: 'Q8_0' });
  assert.deepEqual(resolveGgufStoreType([64, 172], 'BF16'), { type: 'BF16' });
  const target = path.join(dir, 'bad.gguf');
  const f = (n: number) => async () => new Float32Array(n);
  const cases: Array<[Parameters<typeof writeGguf>[1], RegExp, Parameters<typeof writeGguf>[2]?]> = [
    [[{ name: 'a', shape: [4], type: 'Q9_9', data: f(4) }], /tensor a: unknown ggml type "Q9_9"/],
    [[{ name: 'a', shape: [2, 3], type: 'F32', data: f(5) }], /tensor a: the producer returned 5 values, the shape has 6/],
    [[{ name: 'a', shape: [64], type: 'Q8_0', data: f(63) }], /tensor a: the producer returned 63 values/],
    [[{ name: 'a', shape: [64], type: 'Q4_K', data: f(64) }], /tensor a: row length ne0 = 64 is not a multiple of the Q4_K block size 256/],
    [[{ name: 'a', shape: [256], type: 'Q4_K', data: f(256) }], /tensor a: float values cannot be stored as Q4_K/],
    [[{ name: 'a', shape: [32], type: 'Q8_0', data: async () => new Uint8Array(33) }], /tensor a: raw data for Q8_0 has 33 bytes, the shape needs 34/],
    [[{ name: 'a', shape: [1, 1, 1, 1, 1], type: 'F32', data: f(1) }], /tensor a: 5 dimensions/],
    [[{ name: 'a', shape: [1], type: 'F32', data: f(1) }, { name: 'a', shape: [1], type: 'F32', data: f(1) }], /tensor a: tensor name given twice/],
    [[], /general.alignment must be a power-of-two uint32/, { inputs: [], alignment: 48 }],
  ];
  for (const [sources, re, opts] of cases) {
    await assert.rejects(writeGguf(target, sources, opts ?? { inputs: [] }), (e: Error) => e instanceof CheckpointError && re.test(e.message) && e.message.includes(target), String(re));
  }
  assert.deepEqual((await fsp.readdir(dir)).filter((n) => n.includes('bad.gguf')), [], 'nothing left behind');
});
