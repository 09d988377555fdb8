import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocate, chiForError, modelTotals, totals, validateFactors, type ChiTable, type Probe } from '../../webview/compress/budget';

const ref = JSON.parse(readFileSync(join(__dirname, '../../../shared/reference/pico.spectra.json'), 'utf8')) as { tensors: Array<{ name: string; shape: [number, number]; singularValues: number[] }> };

/**
 * Tables of the kind the host ships, built independently here for a one-bond (SVD) chain from the
 * LAPACK reference: params(chi) = chi (m + n), error(chi) = sqrt(sum_{i >= chi} s_i^2 / sum s^2).
 */
function svdTables(): ChiTable[] {
  return ref.tensors.map((t) => {
    const s = t.singularValues;
    const total = s.reduce((a, v) => a + v * v, 0);
    const params: number[] = [], errors: number[] = [];
    for (let chi = 1; chi <= s.length; chi++) {
      let tail = 0;
      for (let i = chi; i < s.length; i++) tail += s[i] * s[i];
      params.push(chi * (t.shape[0] + t.shape[1]));
      errors.push(Math.sqrt(tail / total));
    }
    return { name: t.name, dense: t.shape[0] * t.shape[1], params, errors };
  });
}

test('global chi: every tensor at min(chi, its max) and the totals are the table sums', () => {
  const tb = svdTables();
  const chis = allocate(tb, { kind: 'chi', chi: 20 });
  assert.ok(chis.every((c, i) => c === Math.min(20, tb[i].params.length)));
  const t = totals(tb, chis);
  assert.equal(t.before, ref.tensors.reduce((a, x) => a + x.shape[0] * x.shape[1], 0));
  assert.equal(t.after, tb.reduce((a, x, i) => a + x.params[chis[i] - 1], 0));
  assert.equal(t.ratio, t.before / t.after);
});

test('error budget: each tensor gets the smallest chi whose error is within the budget', () => {
  const tb = svdTables();
  for (const eps of [0.05, 0.2, 0.5]) {
    const chis = allocate(tb, { kind: 'error', error: eps });
    tb.forEach((t, i) => {
      assert.ok(t.errors[chis[i] - 1] <= eps || chis[i] === t.params.length, `${t.name} eps ${eps}`);
      if (chis[i] > 1) assert.ok(t.errors[chis[i] - 2] > eps, `${t.name}: chi ${chis[i]} is not the smallest`);
    });
  }
});

test('parameter budget: the total fits, nearly fills the budget, and shrinks monotonically', () => {
  const tb = svdTables();
  const dense = tb.reduce((a, t) => a + t.dense, 0);
  let prev = Infinity;
  for (const f of [0.9, 0.6, 0.4, 0.2]) {
    const chis = allocate(tb, { kind: 'params', fraction: f });
    const t = totals(tb, chis);
    assert.ok(t.after <= f * dense, `fraction ${f}: ${t.after} > ${f * dense}`);
    assert.ok(t.after >= f * dense - tb.reduce((a, x) => a + (x.params[1] - x.params[0]), 0), `fraction ${f}: ${t.after} leaves too much unused`);
    assert.ok(t.after <= prev);
    prev = t.after;
  }
});

test('overrides win over the budget and count against a parameter budget', () => {
  const tb = svdTables();
  const o = new Map([[tb[0].name, 3]]);
  const chis = allocate(tb, { kind: 'params', fraction: 0.5 }, o);
  assert.equal(chis[0], 3);
  const dense = tb.reduce((a, t) => a + t.dense, 0);
  assert.ok(totals(tb, chis).after <= 0.5 * dense);
});

test('complexity: a global-chi update reads O(T) entries, an error budget O(T log C), a parameter budget O(T log C log(1/tol))', () => {
  // Synthetic tables large enough that a linear scan over chi would show: 200 tensors x 4096 levels.
  const T = 200, C = 4096;
  const tb: ChiTable[] = Array.from({ length: T }, (_, t) => ({
    name: `t${t}`, dense: C * C,
    params: Float64Array.from({ length: C }, (_, c) => (c + 1) * 2 * C),
    errors: Float64Array.from({ length: C }, (_, c) => Math.exp(-(c + 1) / (50 + t))),
  }));
  const p: Probe = { reads: 0 };
  const chis = allocate(tb, { kind: 'chi', chi: 100 }, new Map(), p);
  totals(tb, chis, undefined, p);
  assert.ok(p.reads <= 2 * T, `global chi read ${p.reads} entries`);
  const q: Probe = { reads: 0 };
  allocate(tb, { kind: 'error', error: 0.1 }, new Map(), q);
  assert.ok(q.reads <= T * (Math.ceil(Math.log2(C)) + 1), `error budget read ${q.reads}`);
  const r: Probe = { reads: 0 };
  allocate(tb, { kind: 'params', fraction: 0.3 }, new Map(), r);
  assert.ok(r.reads <= 26 * T * (Math.ceil(Math.log2(C)) + 2), `param budget read ${r.reads}`);
  assert.ok(r.reads < T * C / 2, 'a parameter budget must not scan the tables even once');
});

test('model totals and file size estimate', () => {
  const t = { before: 1000, after: 250, ratio: 4, maxError: 0.1, meanError: 0.05 };
  const fz = modelTotals(2000, 8000, t, true);
  assert.equal(fz.paramsAfter, 1250);
  assert.equal(fz.fileBytes, 8000 - 750 * 4);
  assert.equal(modelTotals(2000, 8000, t, false).fileBytes, 8000);
});

test('site factorisations are validated with a reason', () => {
  assert.deepEqual(validateFactors([384, 128], '16x24', '8, 16'), { ok: true, outFactors: [16, 24], inFactors: [8, 16] });
  const bad = (o: string, i: string) => { const v = validateFactors([384, 128], o, i); assert.equal(v.ok, false); return (v as { message: string }).message; };
  assert.match(bad('16x24', '8x8'), /multiply to 64/);
  assert.match(bad('16x24', '128'), /same number/);
  assert.match(bad('0x384', '128'), /positive integers/);
  assert.match(bad('', '128'), /both/);
  assert.equal(chiForError({ name: 'x', dense: 1, params: [], errors: [] }, 0.1), 0);
});

test('a parameter budget spreads over the selected tensors only', () => {
  const tb = svdTables();
  const selected = new Set(tb.filter((t) => /^h\./.test(t.name)).map((t) => t.name));
  const chis = allocate(tb, { kind: 'params', fraction: 0.25 }, new Map(), undefined, selected);
  const t = totals(tb, chis, selected);
  const dense = tb.filter((x) => selected.has(x.name)).reduce((a, x) => a + x.dense, 0);
  assert.equal(t.before, dense);
  assert.ok(t.after <= 0.25 * dense && t.after > 0.2 * dense, `${t.after} of ${dense}`);
});
