import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { truncationCurve } from '../../src/core/analysis/spectrum';
import { clampRank, energyCurve, rankAtX, rankForError, readoutAt, stepRank } from '../../webview/spectrum/marker';
import { toCsv, csvField } from '../../webview/shared/csv';
import { fmt, metricDomain, metricValue } from '../../webview/shared/metrics';

const ref = JSON.parse(readFileSync(join(__dirname, '../../../shared/reference/pico.spectra.json'), 'utf8')) as { tensors: Array<{ name: string; shape: [number, number]; singularValues: number[] }> };

test('marker readouts at rank k match the reference spectrum: error, params, ratio, energy', () => {
  for (const t of ref.tensors) {
    const [m, n] = t.shape;
    const s = t.singularValues;
    const curve = truncationCurve(s, { rows: m, cols: n });
    const total = s.reduce((a, v) => a + v * v, 0);
    for (const k of [1, 2, 5, Math.floor(s.length / 2), s.length - 1]) {
      let tail = 0;
      for (let i = k; i < s.length; i++) tail += s[i] * s[i];
      const want = Math.sqrt(tail / total);
      const r = readoutAt(curve, m, n, k);
      assert.equal(r.rank, k);
      assert.ok(Math.abs(r.error - want) <= 1e-12 * Math.max(1, want), `${t.name} k=${k}: ${r.error} vs ${want}`);
      assert.equal(r.params, k * (m + n));
      assert.equal(r.ratio, (m * n) / (k * (m + n)));
      assert.ok(Math.abs(r.energy - (1 - tail / total)) < 1e-12);
    }
  }
});

test('marker clamps to [1, K], steps with keys, and maps pixels on a log axis', () => {
  const t = { errors: [1, 0.5, 0.3, 0.2, 0.1, 0], params: [0, 10, 20, 30, 40, 50] };
  assert.equal(clampRank(0, t), 1);
  assert.equal(clampRank(99, t), 5);
  assert.equal(stepRank(3, 'ArrowRight', t), 4);
  assert.equal(stepRank(5, 'ArrowRight', t), 5);
  assert.equal(stepRank(1, 'ArrowLeft', t), 1);
  assert.equal(stepRank(3, 'Home', t), 1);
  assert.equal(stepRank(3, 'End', t), 5);
  assert.equal(stepRank(3, 'a', t), undefined);
  // x = x0 + (x1 - x0) ln k / ln K: the ends and the geometric middle.
  assert.equal(rankAtX(100, 100, 500, 100), 1);
  assert.equal(rankAtX(500, 100, 500, 100), 100);
  assert.equal(rankAtX(300, 100, 500, 100), 10);
  assert.equal(rankAtX(0, 100, 500, 100), 1);
  assert.equal(rankForError(t, 0.25), 3);
  assert.deepEqual(energyCurve({ errors: [1, 0.6, 0], params: [0, 1, 2] }).map((v) => Number(v.toFixed(12))), [0, 0.64, 1]);
});

test('CSV export quotes per RFC 4180', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField(null), '');
  assert.equal(csvField(NaN), '');
  assert.equal(toCsv(['x', 'y'], [[1, 'a\nb'], [2.5, null]]), 'x,y\r\n1,"a\nb"\r\n2.5,\r\n');
});

test('metric accessors and colour domain', () => {
  const t = { name: 'w', matrix: [4, 8] as [number, number], mode: 'exact' as const, normalizedEntropy: 0.9, effectiveRank: 3, rank: 4, stableRank: 2, alpha: null, outliers: 1, spectralNorm: 1, frobeniusNorm: 1 };
  assert.equal(metricValue(t, 'effRankRatio'), 0.75);
  assert.equal(metricValue(t, 'alpha'), null);
  assert.deepEqual(metricDomain([null, 2, 5, NaN]), [2, 5]);
  assert.deepEqual(metricDomain([3, 3]), [2.5, 3.5]);
  assert.deepEqual(metricDomain([]), [0, 1]);
  assert.equal(fmt(0.123456), '0.1235');
  assert.equal(fmt(null), '–');
});
