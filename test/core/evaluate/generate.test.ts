import { test } from 'node:test';
import assert from 'node:assert/strict';
import { argmaxRow, generate, generateText, loadModel, requireTokenizer, sampleRow, seededRandom } from '../../../src/core/evaluate';
import { STORIES_GGUF } from './fixtures';

test('seeded generator: same seed same stream, values in [0, 1), roughly uniform', () => {
  const a = seededRandom(42), b = seededRandom(42), c = seededRandom(43);
  const xa = Array.from({ length: 1000 }, a), xb = Array.from({ length: 1000 }, b), xc = Array.from({ length: 1000 }, c);
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  assert.ok(xa.every((x) => x >= 0 && x < 1));
  const mean = xa.reduce((s, x) => s + x, 0) / xa.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('sampleRow: top-k 1 is argmax; frequencies follow softmax(l / T)', () => {
  const l = Float32Array.from([1, 3, 2, 0]);
  const rand = seededRandom(7);
  for (let i = 0; i < 20; i++) assert.equal(sampleRow(l, 0, 4, 1.5, 1, rand), argmaxRow(l, 0, 4));
  const counts = [0, 0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleRow(l, 0, 4, 1, 0, rand)]++;
  const z = [1, 3, 2, 0].reduce((s, x) => s + Math.exp(x), 0);
  [1, 3, 2, 0].forEach((x, j) => {
    const p = Math.exp(x) / z;
    // 5 standard deviations of a binomial proportion.
    assert.ok(Math.abs(counts[j] / n - p) < 5 * Math.sqrt((p * (1 - p)) / n), `token ${j}: ${counts[j] / n} vs ${p}`);
  });
  // top-k 2 never picks outside the two largest.
  for (let i = 0; i < 200; i++) assert.ok([1, 2].includes(sampleRow(l, 0, 4, 1, 2, rand)));
});

test('generation: greedy is deterministic, sampling repeats with its seed and differs across seeds, EOS stops', async () => {
  const m = await loadModel(STORIES_GGUF);
  try {
    const tok = requireTokenizer(m);
    const g1 = await generateText(m, 'Once upon a time', { maxTokens: 24 });
    const g2 = await generateText(m, 'Once upon a time', { maxTokens: 24 });
    assert.deepEqual(g1.ids, g2.ids);
    assert.ok(g1.text.startsWith('Once upon a time'));
    assert.equal(g1.text, 'Once upon a time' + g1.completion);
    const s1 = await generateText(m, 'Once upon a time', { maxTokens: 24, temperature: 1, topK: 40, seed: 1 });
    const s1b = await generateText(m, 'Once upon a time', { maxTokens: 24, temperature: 1, topK: 40, seed: 1 });
    const s2 = await generateText(m, 'Once upon a time', { maxTokens: 24, temperature: 1, topK: 40, seed: 2 });
    assert.deepEqual(s1.ids, s1b.ids);
    assert.notDeepEqual(s1.ids, s2.ids);
    // Force an early EOS: declare the first greedy token the "EOS" -> nothing is generated.
    const first = g1.ids[0];
    const stopped = await generate(m, g1.promptIds, { maxTokens: 10, eos: first });
    assert.equal(stopped.stop, 'eos');
    assert.deepEqual(stopped.ids, []);
    assert.ok(g1.msPerToken > 0 && g1.tokensPerSecond > 0);
    assert.equal(tok.eos, 2);
  } finally { await m.close(); }
});

test('generation beyond the context length keeps the last window of tokens', async () => {
  const m = await loadModel(STORIES_GGUF, { contextLength: 8 });
  try {
    assert.equal(m.contextLength, 8);
    const g = await generate(m, [1, 403, 407], { maxTokens: 12 });
    assert.equal(g.ids.length, 12);
    await assert.rejects(m.logits(new Array(9).fill(1)), RangeError);
  } finally { await m.close(); }
});
