/**
 * The GGUF reader on the real fixtures in ../shared/fixtures: tensor index, values (Frobenius norms
 * against ../shared/reference), quantized files against the F32 file within each type's quantisation
 * error and against an independent decoder written below, and metadata parity with @huggingface/gguf.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { gguf as hfGguf } from '@huggingface/gguf';
import { openGguf, GgufCheckpoint, type GgufValue } from '../../../src/core/checkpoint/gguf';
import { open } from '../../../src/core/checkpoint/open';
import { CancelledError } from '../../../src/core/checkpoint/errors';
import { ggmlTypeInfo, type GgmlTypeInfo } from '../../../src/core/checkpoint/ggmlQuants';

const SHARED = new URL('../../../../shared/', import.meta.url).pathname;
const FIX = SHARED + 'fixtures/';

const GGUF_FIXTURES = [
  'real/stories260K.gguf',
  'real/llama-2-tiny-random.gguf',
  'pico/pico_f32.gguf',
  'pico/pico_f16.gguf',
  'pico/pico_q8_0.gguf',
  'pico/pico_q4_k.gguf',
  'stories260k/stories260K_q8_0.gguf',
];

interface RefTensor { name: string; shape: number[]; singularValues: number[] }
function reference(which: 'pico' | 'stories260k'): Map<string, RefTensor> {
  const j = JSON.parse(readFileSync(`${SHARED}reference/${which}.spectra.json`, 'utf8')) as { tensors: RefTensor[] };
  return new Map(j.tensors.map((t) => [t.name, t]));
}

/** ||W||_F = sqrt(sum of squares), accumulated in float64. */
function frobenius(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** GGUF (llama.cpp) tensor names -> the Hugging Face names of the reference. */
function hfNameStories(g: string): string {
  if (g === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (g === 'output.weight') return 'lm_head.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(g);
  if (!m) return g;
  const part: Record<string, string> = {
    attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
    ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  };
  return `model.layers.${m[1]}.${part[m[2]]}.weight`;
}
function hfNamePico(g: string): string {
  if (g === 'token_embd.weight' || g === 'output.weight') return 'wte.weight'; // lm_head is tied to wte
  if (g === 'position_embd.weight') return 'wpe.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(g);
  if (!m) return g;
  const part: Record<string, string> = { attn_qkv: 'attn.c_attn', attn_output: 'attn.c_proj', ffn_up: 'mlp.c_fc', ffn_down: 'mlp.c_proj' };
  return `h.${m[1]}.${part[m[2]]}.weight`;
}

// ---------- an independent decoder for the fixture types (DataView, one element at a time) ----------

function half(bits: number): number {
  const e = (bits >>> 10) & 0x1f, f = bits & 0x3ff, s = bits & 0x8000 ? -1 : 1;
  if (e === 0) return s * f / 16777216; // 2^-24
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1024 + f) * 2 ** (e - 25);
}

/** Element i of a tensor stored as `dtype`, decoded straight from the spec with no block loops. */
function independentElement(dtype: string, dv: DataView, i: number): number {
  switch (dtype) {
    case 'F32': return dv.getFloat32(4 * i, true);
    case 'F16': return half(dv.getUint16(2 * i, true));
    case 'Q8_0': { // 34-byte blocks {f16 d, i8 q[32]}: x = d * q
      const block = Math.floor(i / 32), o = block * 34;
      return half(dv.getUint16(o, true)) * dv.getInt8(o + 2 + (i % 32));
    }
    case 'Q4_K': { // 144-byte super-blocks {f16 d, f16 dmin, u8 scales[12], u8 qs[128]}
      const sb = Math.floor(i / 256), o = sb * 144, e = i % 256;
      const sub = Math.floor(e / 32); // 8 sub-blocks of 32
      const byte = (k: number) => dv.getUint8(o + 4 + k); // the 12 scale bytes
      // 6-bit scale and min of sub-block `sub`: the first four sit in bytes 0-3 / 4-7; the last four
      // take their low nibbles from bytes 8-11 and their top two bits from the spare bits 6-7 of bytes 0-7.
      const scale = sub < 4 ? byte(sub) % 64 : (byte(sub + 4) % 16) + 16 * Math.floor(byte(sub - 4) / 64);
      const min = sub < 4 ? byte(sub + 4) % 64 : Math.floor(byte(sub + 4) / 16) + 16 * Math.floor(byte(sub) / 64);
      // sub-blocks 2c and 2c+1 share qs[32c .. 32c+31]: low nibbles, then high nibbles
      const qbyte = dv.getUint8(o + 16 + 32 * Math.floor(sub / 2) + (e % 32));
      const q = sub % 2 === 0 ? qbyte % 16 : Math.floor(qbyte / 16);
      return half(dv.getUint16(o, true)) * scale * q - half(dv.getUint16(o + 2, true)) * min;
    }
    default: throw new Error(`independent decoder has no ${dtype}`);
  }
}

function independentDecode(dtype: string, raw: Uint8Array, count: number): Float32Array {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = independentElement(dtype, dv, i);
  return out;
}

// ---------- tests ----------

/** Every *.gguf under ../shared/fixtures, relative to it. */
function allGgufFixtures(): string[] {
  return (readdirSync(FIX, { recursive: true }) as string[]).filter((p) => p.endsWith('.gguf')).sort();
}

test('every GGUF fixture opens (via open() and openGguf), GGUF v3, tensors read to the right length', async () => {
  const found = allGgufFixtures();
  for (const f of GGUF_FIXTURES) assert.ok(found.includes(f), `fixture ${f} present`);
  for (const f of found) {
    const ck = await open(FIX + f);
    try {
      assert.ok(ck instanceof GgufCheckpoint, f);
      assert.equal(ck.format, 'gguf');
      assert.equal(ck.formatDetail, 'GGUF v3');
      assert.deepEqual(ck.files, [FIX + f]);
      assert.equal(ck.sizeOnDisk, statSync(FIX + f).size);
      const typeIds = (ck as GgufCheckpoint).gguf.tensorTypes;
      for (const t of ck.tensors) {
        const info: GgmlTypeInfo = ggmlTypeInfo[typeIds.get(t.name)!];
        assert.equal(t.dtype, info.name);
        assert.equal(t.params, t.shape.reduce((a, b) => a * b, 1));
        assert.equal(t.byteLength, (t.params / info.blockSize) * info.bytesPerBlock, `${f} ${t.name} byteLength`);
        assert.equal(t.byteOffset % 32, 0, `${f} ${t.name} aligned`);
        assert.equal(t.file, FIX + f);
        const raw = await t.readRaw();
        assert.equal(raw.length, t.byteLength);
        const x = await t.read();
        assert.equal(x.length, t.params);
        assert.ok(x.every(Number.isFinite), `${f} ${t.name} finite`);
      }
      // the metadata is JSON-serialisable as it stands
      assert.deepEqual(JSON.parse(JSON.stringify(ck.metadata)), ck.metadata);
    } finally {
      await ck.close();
    }
  }
});

test('stories260K.gguf: 48 tensors, 37 2-D, dim 64, 5 layers, FFN 172, vocab 512 (README facts)', async () => {
  const ck = await openGguf(FIX + 'real/stories260K.gguf');
  try {
    assert.equal(ck.tensors.length, 48);
    assert.equal(ck.tensors.filter((t) => t.shape.length === 2).length, 37);
    assert.ok(ck.tensors.every((t) => t.dtype === 'F32'));
    const shape = (n: string) => ck.get(n)?.shape;
    assert.deepEqual(shape('token_embd.weight'), [512, 64]);
    assert.deepEqual(shape('output.weight'), [512, 64]);
    assert.deepEqual(shape('output_norm.weight'), [64]);
    for (let l = 0; l < 5; l++) {
      assert.deepEqual(shape(`blk.${l}.attn_q.weight`), [64, 64]);
      assert.deepEqual(shape(`blk.${l}.attn_k.weight`), [32, 64]); // 4 KV heads x head dim 8
      assert.deepEqual(shape(`blk.${l}.attn_v.weight`), [32, 64]);
      assert.deepEqual(shape(`blk.${l}.attn_output.weight`), [64, 64]);
      assert.deepEqual(shape(`blk.${l}.ffn_gate.weight`), [172, 64]);
      assert.deepEqual(shape(`blk.${l}.ffn_up.weight`), [172, 64]);
      assert.deepEqual(shape(`blk.${l}.ffn_down.weight`), [64, 172]);
      assert.deepEqual(ck.get(`blk.${l}.ffn_down.weight`)!.group, { kind: 'block', index: l, label: `block ${l}` });
    }
    assert.equal(ck.get('blk.5.attn_q.weight'), undefined);
    assert.equal(ck.get('token_embd.weight')!.group.kind, 'embedding');
    assert.equal(ck.get('output.weight')!.group.kind, 'head');
    const md = ck.metadata;
    assert.equal(md['general.architecture'], 'llama');
    assert.equal(md['llama.embedding_length'], 64);
    assert.equal(md['llama.block_count'], 5);
    assert.equal(md['llama.feed_forward_length'], 172);
    assert.equal(md['llama.attention.head_count'], 8);
    assert.equal(md['llama.attention.head_count_kv'], 4);
    assert.deepEqual(md['tokenizer.ggml.tokens'], { arrayOf: 'string', length: 512, first: ['<unk>', '<s>', '</s>', '<0x00>', '<0x01>', '<0x02>', '<0x03>', '<0x04>'] });
    const tokens = ck.gguf.kv.get('tokenizer.ggml.tokens') as Extract<GgufValue, { type: 'array' }>;
    assert.equal(tokens.itemType, 'string');
    assert.equal(tokens.value.length, 512);
    const scores = ck.gguf.kv.get('tokenizer.ggml.scores')!;
    assert.ok(scores.type === 'array' && scores.value instanceof Float32Array && scores.value.length === 512);
    assert.equal(ck.gguf.version, 3);
    assert.equal(ck.gguf.alignment, 32);
    assert.equal(ck.gguf.tensorTypes.size, 48);
  } finally {
    await ck.close();
  }
});

test('llama-2-tiny-random.gguf: F16, token_embd [32000, 8] row-major, 32,000-token vocabulary', async () => {
  const ck = await openGguf(FIX + 'real/llama-2-tiny-random.gguf');
  try {
    const emb = ck.get('token_embd.weight')!;
    assert.deepEqual(emb.shape, [32000, 8]);
    assert.equal(emb.dtype, 'F16');
    assert.equal(ck.gguf.tensorInfos.find((t) => t.name === 'token_embd.weight')!.ne.join(), '8,32000', 'ggml order is reversed');
    const twoD = ck.tensors.filter((t) => t.shape.length === 2);
    assert.equal(twoD.length, 9);
    assert.ok(twoD.every((t) => t.dtype === 'F16'));
    assert.deepEqual(ck.tensors.filter((t) => t.shape.length === 1).map((t) => t.dtype), ['F32', 'F32', 'F32']);
    assert.deepEqual(ck.get('output.weight')!.shape, [32000, 8]);
    const tokens = ck.gguf.kv.get('tokenizer.ggml.tokens')!;
    assert.ok(tokens.type === 'array' && tokens.value.length === 32000);
    assert.deepEqual((ck.metadata['tokenizer.ggml.tokens'] as { length: number }).length, 32000);
    assert.equal((ck.metadata['tokenizer.ggml.tokens'] as { first: unknown[] }).first.length, 8);
    // Row-major: row r of token_embd is the embedding of token r, i.e. elements [8r, 8r+8).
    const x = await emb.read();
    const raw = await emb.readRaw();
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (const r of [0, 1, 31999]) for (let c = 0; c < 8; c++) assert.equal(x[8 * r + c], half(dv.getUint16(2 * (8 * r + c), true)));
  } finally {
    await ck.close();
  }
});

test('pico GGUF files: 53 tensors; dtype mixes as the README says (Q4_K only for the four ffn_down)', async () => {
  const expectMix: Record<string, Record<string, number>> = {
    'pico/pico_f32.gguf': { F32: 53 },
    'pico/pico_f16.gguf': { F16: 19, F32: 34 },
    'pico/pico_q8_0.gguf': { Q8_0: 19, F32: 34 },
    'pico/pico_q4_k.gguf': { Q8_0: 15, Q4_K: 4, F32: 34 },
    'stories260k/stories260K_q8_0.gguf': { Q8_0: 32, F16: 5, F32: 11 },
  };
  for (const [f, mix] of Object.entries(expectMix)) {
    const ck = await openGguf(FIX + f);
    try {
      const got: Record<string, number> = {};
      for (const t of ck.tensors) got[t.dtype] = (got[t.dtype] ?? 0) + 1;
      assert.deepEqual(got, mix, f);
      if (f.includes('q4_k')) {
        assert.deepEqual(ck.tensors.filter((t) => t.dtype === 'Q4_K').map((t) => t.name), [0, 1, 2, 3].map((l) => `blk.${l}.ffn_down.weight`));
      }
      if (f.includes('stories260K_q8_0')) {
        // 172 is not a multiple of 32, so ffn_down (ne0 = 172) falls back to F16
        assert.deepEqual(ck.tensors.filter((t) => t.dtype === 'F16').map((t) => t.name), [0, 1, 2, 3, 4].map((l) => `blk.${l}.ffn_down.weight`));
      }
    } finally {
      await ck.close();
    }
  }
});

test('F32 GGUF values: ||W||_F of every 2-D tensor equals sqrt(sum s_i^2) of the reference (rel 1e-5)', async () => {
  const cases: Array<[string, 'pico' | 'stories260k', (n: string) => string, number]> = [
    ['real/stories260K.gguf', 'stories260k', hfNameStories, 37],
    ['pico/pico_f32.gguf', 'pico', hfNamePico, 19],
  ];
  for (const [f, which, rename, expectedCount] of cases) {
    const ref = reference(which);
    const ck = await openGguf(FIX + f);
    let n = 0;
    try {
      for (const t of ck.tensors.filter((t) => t.shape.length === 2)) {
        const r = ref.get(rename(t.name));
        assert.ok(r, `${f} ${t.name}: no reference tensor ${rename(t.name)}`);
        assert.deepEqual(t.shape, r.shape, `${t.name} shape`);
        const expected = Math.sqrt(r.singularValues.reduce((a, s) => a + s * s, 0));
        const got = frobenius(await t.read());
        assert.ok(Math.abs(got - expected) <= 1e-5 * expected, `${f} ${t.name}: ||W||_F ${got} vs reference ${expected}`);
        n++;
      }
    } finally {
      await ck.close();
    }
    assert.equal(n, expectedCount, `${f}: 2-D tensors checked`);
  }
});

/**
 * Quantised fixtures against the F32 file of the same weights, with the error each type allows:
 *  - F16:  round to nearest, |y - x| <= 2^-11 |x| (normal range), <= 2^-25 (subnormal);
 *  - Q8_0: per block of 32, d = amax/127 and q = round(x/d), stored with d' = f16(d):
 *          |y - x| <= d/2 + 127 |d - d'|   (+ 1e-6 d for float32 arithmetic);
 *  - Q4_K: per sub-block of 32 with step s = d*sc and offset m = dmin*mn, y is on the grid s*q - m,
 *          q = 0..15; the grid point is the one nearest x, and |y - x| <= s/2 because these files'
 *          x all lie inside the grid's range (nothing was clamped).
 * And every decoded value equals the independent decoder above on the same raw bytes.
 */
test('quantised GGUF fixtures: within each type\'s quantisation error of the F32 values, and equal to an independent decoder', async () => {
  const pairs: Array<[string, string]> = [
    ['pico/pico_f32.gguf', 'pico/pico_f16.gguf'],
    ['pico/pico_f32.gguf', 'pico/pico_q8_0.gguf'],
    ['pico/pico_f32.gguf', 'pico/pico_q4_k.gguf'],
    ['real/stories260K.gguf', 'stories260k/stories260K_q8_0.gguf'],
  ];
  const checked: Record<string, number> = {};
  for (const [f32Path, qPath] of pairs) {
    const A = await openGguf(FIX + f32Path);
    const B = await openGguf(FIX + qPath);
    try {
      for (const t of B.tensors) {
        const x = await A.get(t.name)!.read();
        const y = await t.read();
        const raw = await t.readRaw();
        const indep = independentDecode(t.dtype, raw, t.params);
        for (let i = 0; i < y.length; i++) {
          if (y[i] !== indep[i]) assert.fail(`${qPath} ${t.name}[${i}]: reader ${y[i]} vs independent decoder ${indep[i]}`);
        }
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        if (t.dtype === 'F32') {
          assert.deepEqual(y, x, `${t.name}: F32 copied unchanged`);
        } else if (t.dtype === 'F16') {
          for (let i = 0; i < y.length; i++) {
            const bound = Math.max(Math.abs(x[i]) * 2 ** -11, 2 ** -25);
            if (Math.abs(y[i] - x[i]) > bound) assert.fail(`${t.name}[${i}]: F16 error ${Math.abs(y[i] - x[i])} > ${bound}`);
          }
        } else if (t.dtype === 'Q8_0') {
          for (let b = 0; b < y.length / 32; b++) {
            let amax = 0;
            for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
            const d = amax / 127;
            const dStored = half(dv.getUint16(34 * b, true));
            const bound = d / 2 + 127 * Math.abs(d - dStored) + 1e-6 * d;
            for (let j = 0; j < 32; j++) {
              const err = Math.abs(y[32 * b + j] - x[32 * b + j]);
              if (err > bound) assert.fail(`${t.name} block ${b}[${j}]: Q8_0 error ${err} > ${bound}`);
            }
          }
        } else if (t.dtype === 'Q4_K') {
          for (let e = 0; e < y.length; e++) {
            const sb = Math.floor(e / 256), sub = Math.floor((e % 256) / 32), o = sb * 144;
            // the grid of this sub-block, recovered from the independent decoder at q = 0 and q = 1
            const step = independentStepQ4K(dv, o, sub), offset = -independentOffsetQ4K(dv, o, sub);
            let nearest = Infinity;
            for (let q = 0; q < 16; q++) nearest = Math.min(nearest, Math.abs(Math.fround(step * q + offset) - x[e]));
            const err = Math.abs(y[e] - x[e]);
            if (err > nearest + 1e-7 * step) assert.fail(`${t.name}[${e}]: Q4_K value is not the grid point nearest the F32 value`);
            if (err > step / 2 * (1 + 1e-6)) assert.fail(`${t.name}[${e}]: Q4_K error ${err} > half step ${step / 2}`);
          }
        } else {
          assert.fail(`unexpected dtype ${t.dtype}`);
        }
        checked[t.dtype] = (checked[t.dtype] ?? 0) + 1;
      }
    } finally {
      await A.close();
      await B.close();
    }
  }
  assert.deepEqual(checked, { F16: 19 + 5, F32: 34 * 3 + 11, Q8_0: 19 + 15 + 32, Q4_K: 4 });
});

function q4kScaleMin(dv: DataView, o: number, sub: number): [number, number] {
  const byte = (k: number) => dv.getUint8(o + 4 + k);
  return sub < 4
    ? [byte(sub) % 64, byte(sub + 4) % 64]
    : [(byte(sub + 4) % 16) + 16 * Math.floor(byte(sub - 4) / 64), Math.floor(byte(sub + 4) / 16) + 16 * Math.floor(byte(sub) / 64)];
}
function independentStepQ4K(dv: DataView, o: number, sub: number): number {
  return half(dv.getUint16(o, true)) * q4kScaleMin(dv, o, sub)[0];
}
function independentOffsetQ4K(dv: DataView, o: number, sub: number): number {
  return half(dv.getUint16(o + 2, true)) * q4kScaleMin(dv, o, sub)[1];
}

/** A @huggingface/gguf value and ours, compared as plain JS values (typed arrays as arrays). */
function plain(v: GgufValue): unknown {
  if (v.type !== 'array') return v.value;
  return Array.from(v.value as ArrayLike<unknown>, (item) => (typeof item === 'object' && item !== null && 'type' in (item as object) ? plain(item as GgufValue) : item));
}

test('metadata and tensor infos agree with @huggingface/gguf on every fixture', async () => {
  for (const f of GGUF_FIXTURES) {
    const ours = await openGguf(FIX + f);
    try {
      const theirs = await hfGguf(FIX + f, { allowLocalFile: true, typedMetadata: true });
      const hfKv = Object.entries(theirs.typedMetadata).filter(([k]) => !['version', 'tensor_count', 'kv_count'].includes(k));
      assert.deepEqual([...ours.gguf.kv.keys()], hfKv.map(([k]) => k), `${f}: same keys in the same order`);
      for (const [k, tv] of hfKv) {
        const mine = ours.gguf.kv.get(k)!;
        // typed arrays compared as plain arrays; 64-bit integers are bigint on both sides.
        // @huggingface/gguf decodes strings with a BOM-stripping TextDecoder, so Llama-2's U+FEFF
        // vocabulary token reads as "" there; we keep it (the bytes in the file are ef bb bf).
        const stripBom = (v: unknown): unknown => (Array.isArray(v) ? v.map(stripBom) : typeof v === 'string' ? v.replace(/^\uFEFF/, '') : v);
        assert.deepEqual(stripBom(plain(mine)), stripBom(tv.value), `${f}: value of ${k}`);
      }
      assert.equal(theirs.metadata.version, ours.gguf.version);
      assert.equal(Number(theirs.tensorDataOffset), ours.gguf.dataOffset, `${f}: data offset`);
      assert.deepEqual(
        ours.gguf.tensorInfos.map((t) => [t.name, t.ne, t.type, t.relativeOffset]),
        theirs.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype as number, Number(t.offset)]),
        `${f}: tensor infos`,
      );
    } finally {
      await ours.close();
    }
  }
});

test('read() and readRaw() honour an aborted signal; readRaw of F32 is the decoded bytes', async () => {
  const ck = await openGguf(FIX + 'real/stories260K.gguf');
  try {
    const t = ck.get('token_embd.weight')!;
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(t.read({ signal: ac.signal }), CancelledError);
    await assert.rejects(t.readRaw({ signal: ac.signal }), CancelledError);
    const raw = await t.readRaw();
    const x = await t.read();
    assert.deepEqual(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), x);
  } finally {
    await ck.close();
  }
});

test('strings keep a leading U+FEFF: the Llama-2 vocabulary token "\\uFEFF" is read as stored', async () => {
  const ck = await openGguf(FIX + 'real/llama-2-tiny-random.gguf');
  try {
    const tokens = ck.gguf.kv.get('tokenizer.ggml.tokens')!;
    assert.ok(tokens.type === 'array');
    const values = tokens.value as string[];
    assert.ok(values.includes('\uFEFF'), 'the U+FEFF token is present');
    assert.ok(!values.slice(3).includes(''), 'no vocabulary entry past the specials decodes to an empty string');
  } finally {
    await ck.close();
  }
});
