import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open } from '../../../src/core/checkpoint';
import { loadModel, requireTokenizer, type LanguageModel } from '../../../src/core/evaluate';
import { captureResiduals, promptIds, residualOutputs } from '../../../src/core/evaluate/activations';
import { PICO, STORIES_GGUF } from './fixtures';

const PROMPTS = ['Once upon a time, there was a little', 'The cat was happy. It', 'Tom'];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** head(norm(x)) in float64: RMSNorm (Llama) or LayerNorm (GPT-2) of one row, then W_head [vocab, d] times it. */
function headOf(x: Float32Array, norm: { kind: 'rms' | 'ln'; gamma: Float32Array; beta?: Float32Array; eps: number }, head: Float32Array, vocab: number): Float64Array {
  const d = x.length;
  const y = new Float64Array(d);
  if (norm.kind === 'rms') {
    let ms = 0;
    for (const v of x) ms += v * v;
    const inv = 1 / Math.sqrt(ms / d + norm.eps);
    for (let j = 0; j < d; j++) y[j] = x[j] * inv * norm.gamma[j];
  } else {
    let mean = 0;
    for (const v of x) mean += v;
    mean /= d;
    let vr = 0;
    for (const v of x) vr += (v - mean) ** 2;
    const inv = 1 / Math.sqrt(vr / d + norm.eps);
    for (let j = 0; j < d; j++) y[j] = (x[j] - mean) * inv * norm.gamma[j] + norm.beta![j];
  }
  const out = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) { let s = 0; for (let j = 0; j < d; j++) s += head[v * d + j] * y[j]; out[v] = s; }
  return out;
}

test('stories260K: block-0 capture = the token embedding row; capture leaves the logits unchanged; final capture gives the logits through norm + head', async () => {
  const model = await loadModel(STORIES_GGUF, { captureResiduals: true });
  const plain = await loadModel(STORIES_GGUF);
  const ckpt = await open(STORIES_GGUF);
  try {
    const arch = model.architecture!;
    assert.deepEqual(model.graphStats!.residualOutputs, residualOutputs(5));
    const d = arch.dModel;
    const E = await ckpt.get('token_embd.weight')!.read();
    const gamma = await ckpt.get('output_norm.weight')!.read();
    const head = ckpt.get('output.weight') ? await ckpt.get('output.weight')!.read() : E;
    for (const prompt of PROMPTS) {
      const ids = promptIds(model, prompt);
      const out = await model.run!(ids, [...residualOutputs(arch.nLayer), 'logits']);
      assert.equal(maxAbsDiff(out.logits, await plain.logits(ids)), 0, 'extra outputs do not change the logits');
      const T = ids.length;
      for (let t = 0; t < T; t++) {
        assert.deepEqual(Array.from(out['residual.0'].subarray(t * d, (t + 1) * d)), Array.from(E.subarray(ids[t] * d, (ids[t] + 1) * d)), `x_0 at position ${t} = E[${ids[t]}]`);
      }
      const xL = out['residual.final'].subarray((T - 1) * d, T * d);
      const expect = headOf(xL, { kind: 'rms', gamma, eps: arch.eps }, head, arch.vocabSize);
      const got = out.logits.subarray((T - 1) * arch.vocabSize, T * arch.vocabSize);
      assert.ok(maxAbsDiff(got, expect) <= 1e-4 * maxAbs(expect), `logits = head(RMSNorm(x_L)): max diff ${maxAbsDiff(got, expect)}`);
      // Blocks change the stream: consecutive captures differ.
      assert.ok(maxAbsDiff(out['residual.1'], out['residual.0']) > 1e-3);
    }
  } finally { await model.close(); await plain.close(); await ckpt.close(); }
});

test('PicoGPT: block-0 capture = wte[id] + wpe[position]; final capture -> LayerNorm -> tied head = the logits', async () => {
  const file = path.join(PICO, 'pico.safetensors');
  const model = await loadModel(file, { captureResiduals: true });
  const ckpt = await open(file);
  try {
    const arch = model.architecture!;
    const d = arch.dModel;
    const wte = await ckpt.get('wte.weight')!.read();
    const wpe = await ckpt.get('wpe.weight')!.read();
    const gamma = await ckpt.get('ln_f.weight')!.read();
    const beta = await ckpt.get('ln_f.bias')!.read();
    const ids = requireTokenizer(model).encode('ROMEO:\nBut soft, what light');
    const out = await model.run!(ids, ['residual.0', 'residual.final', 'logits']);
    for (let t = 0; t < ids.length; t++) {
      for (let j = 0; j < d; j++) {
        const expect = Math.fround(wte[ids[t] * d + j] + wpe[t * d + j]);
        assert.equal(out['residual.0'][t * d + j], expect, `x_0[${t}, ${j}]`);
      }
    }
    for (const t of [0, ids.length - 1]) {
      const expect = headOf(out['residual.final'].subarray(t * d, (t + 1) * d), { kind: 'ln', gamma, beta, eps: arch.eps }, wte, arch.vocabSize);
      const got = out.logits.subarray(t * arch.vocabSize, (t + 1) * arch.vocabSize);
      assert.ok(maxAbsDiff(got, expect) <= 1e-4 * maxAbs(expect), `position ${t}: max diff ${maxAbsDiff(got, expect)}`);
    }
  } finally { await model.close(); await ckpt.close(); }
});

test('captureResiduals pools the last token or the mean over positions, one row per prompt', async () => {
  const model: LanguageModel = await loadModel(STORIES_GGUF, { captureResiduals: true });
  try {
    const last = await captureResiduals(model, PROMPTS, { pooling: 'last' });
    const mean = await captureResiduals(model, PROMPTS, { pooling: 'mean' });
    assert.equal(last.points, 6);
    assert.equal(last.labels[5], 'final norm input');
    const d = last.dModel;
    for (let p = 0; p < PROMPTS.length; p++) {
      const ids = promptIds(model, PROMPTS[p]);
      const T = ids.length;
      assert.equal(last.tokens[p], T);
      const out = await model.run!(ids, ['residual.3']);
      const x = out['residual.3'];
      assert.deepEqual(Array.from(last.activations[3].subarray(p * d, (p + 1) * d)), Array.from(x.subarray((T - 1) * d, T * d)));
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += x[t * d + j];
        assert.ok(Math.abs(mean.activations[3][p * d + j] - s / T) < 1e-5);
      }
    }
    const noCapture = await loadModel(STORIES_GGUF);
    try {
      await assert.rejects(captureResiduals(noCapture, PROMPTS), /no output residual\.0/);
    } finally { await noCapture.close(); }
  } finally { await model.close(); }
});
