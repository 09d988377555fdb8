import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { allocateBudget, uniformAllocation, budgetStates, lowerHull, BudgetError, type BudgetInput } from '../../../src/core/surgery/budget';
import { open } from '../../../src/core/checkpoint';
import { getLinalgBackend } from '../../../src/core/linalg';
import { planSites } from '../../../src/core/analysis/mpo';
import { matrixToSiteTensor } from '../../../src/core/analysis/mpoTensor';

const SHARED = path.resolve(__dirname, '../../../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');

interface RefTensor { name: string; shape: number[]; singularValues: number[]; frobeniusNorm: number }

/** PicoGPT's 16 block matrices with their LAPACK (float64) singular values from ../shared/reference. */
async function picoSvdInputs(): Promise<BudgetInput[]> {
  const ref = JSON.parse(await readFile(path.join(SHARED, 'reference/pico.spectra.json'), 'utf8')).tensors as RefTensor[];
  return ref.filter((t) => /^h\.\d+\.(attn|mlp)\./.test(t.name) && t.shape.length === 2)
    .map((t) => ({ name: t.name, method: 'svd', rows: t.shape[0], cols: t.shape[1], singularValues: t.singularValues }));
}

/** The same matrices as 2-site MPOs: exact bond spectra of the site tensors' unfoldings. */
async function picoMpoInputs(): Promise<BudgetInput[]> {
  const backend = await getLinalgBackend();
  const ckpt = await open(PICO);
  try {
    const out: BudgetInput[] = [];
    for (const t of ckpt.tensors.filter((x) => x.shape.length === 2 && x.group.kind === 'block')) {
      const [rows, cols] = t.shape;
      const plan = planSites(rows, cols, 2);
      const P = matrixToSiteTensor(await t.read(), rows, cols, plan.outFactors, plan.inFactors);
      const L = plan.outFactors[0] * plan.inFactors[0];
      const s = await backend.singularValues({ rows: L, cols: P.length / L, data: P }, { method: 'direct' });
      out.push({ name: t.name, method: 'mpo', rows, cols, outFactors: plan.outFactors, inFactors: plan.inFactors, bondSpectra: [s] });
    }
    return out;
  } finally {
    await ckpt.close();
    await backend.dispose();
  }
}

test('svd budget on PicoGPT: meets every target exactly or below, and its errors are the spectra tails', async () => {
  const inputs = await picoSvdInputs();
  assert.equal(inputs.length, 16);
  const dense = inputs.reduce((a, t) => a + t.rows * t.cols, 0);
  for (const ratio of [0.05, 0.1, 0.2, 0.3, 0.5, 0.8]) {
    const target = Math.floor(ratio * dense);
    const a = allocateBudget(inputs, target);
    assert.ok(a.totalParams <= target, `ratio ${ratio}: ${a.totalParams} > ${target}`);
    assert.equal(a.totalParams, a.choices.reduce((s, c) => s + c.params, 0));
    for (const [i, c] of a.choices.entries()) {
      const t = inputs[i] as Extract<BudgetInput, { method: 'svd' }>;
      const s = Array.from(t.singularValues);
      const total = s.reduce((x, v) => x + v * v, 0);
      if (c.compressed) {
        assert.equal(c.params, c.rank! * (t.rows + t.cols));
        const tail = s.slice(c.rank).reduce((x, v) => x + v * v, 0);
        assert.ok(Math.abs(c.discardedWeight - tail / total) < 1e-12);
      } else {
        assert.equal(c.params, t.rows * t.cols);
        assert.equal(c.discardedWeight, 0);
      }
    }
  }
});

test('svd budget on PicoGPT beats uniform allocation at the same parameter count', async () => {
  const inputs = await picoSvdInputs();
  const lines: string[] = [];
  let strictlyBetter = 0;
  for (const fraction of [0.1, 0.2, 0.3, 0.4, 0.5]) {
    const uniform = uniformAllocation(inputs, fraction);
    const greedy = allocateBudget(inputs, uniform.totalParams);
    assert.ok(greedy.totalParams <= uniform.totalParams);
    assert.ok(greedy.totalError <= uniform.totalError + 1e-12, `fraction ${fraction}: greedy ${greedy.totalError} > uniform ${uniform.totalError}`);
    if (greedy.totalError < uniform.totalError * 0.99) strictlyBetter++;
    lines.push(`fraction ${fraction}: params ${uniform.totalParams}, uniform error ${uniform.totalError.toFixed(4)}, greedy ${greedy.totalError.toFixed(4)} (${greedy.totalParams} params)`);
  }
  console.log(lines.join('\n'));
  assert.ok(strictlyBetter >= 3, 'the spectra differ between layers, so the allocation must be clearly better most of the time');
});

test('mpo budget on PicoGPT: meets the target, beats uniform chi, monotone in the budget', async () => {
  const inputs = await picoMpoInputs();
  const dense = inputs.reduce((a, t) => a + t.rows * t.cols, 0);
  // ||W||^2 from the bond spectrum = the reference Frobenius norm.
  const ref = JSON.parse(await readFile(path.join(SHARED, 'reference/pico.spectra.json'), 'utf8')).tensors as RefTensor[];
  for (const t of inputs) {
    const s = Array.from((t as Extract<BudgetInput, { method: 'mpo' }>).bondSpectra[0]);
    const norm = Math.sqrt(s.reduce((a, v) => a + v * v, 0));
    const r = ref.find((x) => x.name === t.name)!;
    assert.ok(Math.abs(norm - r.frobeniusNorm) < 1e-5 * r.frobeniusNorm, t.name);
  }
  let prevError = Infinity;
  for (const ratio of [0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6]) {
    const target = Math.floor(ratio * dense);
    const a = allocateBudget(inputs, target);
    assert.ok(a.totalParams <= target);
    assert.ok(a.totalError <= prevError + 1e-12, `error must not grow with the budget (ratio ${ratio})`);
    prevError = a.totalError;
  }
  for (const fraction of [0.1, 0.2, 0.3]) {
    const uniform = uniformAllocation(inputs, fraction);
    const greedy = allocateBudget(inputs, uniform.totalParams);
    assert.ok(greedy.totalError < uniform.totalError, `fraction ${fraction}: greedy ${greedy.totalError} vs uniform ${uniform.totalError}`);
  }
});

test('budget is monotone in the target over a fine sweep, and the floor is respected', async () => {
  const inputs = await picoSvdInputs();
  const dense = inputs.reduce((a, t) => a + t.rows * t.cols, 0);
  let prev = Infinity;
  for (let i = 1; i <= 60; i++) {
    const a = allocateBudget(inputs, Math.floor((i / 60) * dense));
    assert.ok(a.totalError <= prev + 1e-12, `step ${i}`);
    prev = a.totalError;
  }
  const floor = 0.25;
  const a = allocateBudget(inputs, Math.floor(0.4 * dense), { floor });
  assert.ok(a.totalParams <= Math.floor(0.4 * dense));
  for (const [i, c] of a.choices.entries()) {
    if (c.compressed) assert.ok(c.rank! >= Math.ceil(floor * Math.min(inputs[i].rows, inputs[i].cols)), `${c.name} rank ${c.rank}`);
  }
  assert.throws(() => allocateBudget(inputs, Math.floor(0.05 * dense), { floor: 0.5 }), BudgetError);
});

test('lowerHull keeps the convex corners and drops a dent', () => {
  const states = [
    { level: undefined, params: 100, error: 0 },
    { level: 3, params: 80, error: 0.1 },
    { level: 2, params: 60, error: 0.5 }, // a dent: above the chord from 80 to 40
    { level: 1, params: 40, error: 0.6 },
  ];
  assert.deepEqual(lowerHull(states), [0, 1, 3]);
  // An exactly-below-target refinement picks the dent state when it fits and the hull point does not.
  const t: BudgetInput = { name: 't', method: 'svd', rows: 10, cols: 10, singularValues: [4, 3, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.01, 0] };
  const st = budgetStates(t);
  assert.equal(st[0].level, undefined);
  assert.deepEqual(st.slice(1).map((s) => s.level), [4, 3, 2, 1], 'rank >= 5 stores 5 * 20 >= 100 params: never chosen');
  const a = allocateBudget([t], 60);
  assert.equal(a.choices[0].rank, 3);
  assert.equal(a.totalParams, 60);
});
