import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { directionRows, firstDivergence, formatFraction, formatKl, formatMs, formatPerplexity, formatRate, visiblePiece } from '../../webview/evaluate/logic';

test('firstDivergence: first differing index, prefix length, or -1 when identical', () => {
  assert.equal(firstDivergence([1, 2, 3], [1, 2, 3]), -1);
  assert.equal(firstDivergence([], []), -1);
  assert.equal(firstDivergence([1, 2, 3], [1, 5, 3]), 1);
  assert.equal(firstDivergence([7], [8]), 0);
  assert.equal(firstDivergence([1, 2], [1, 2, 9]), 2); // one stopped (EOS) where the other went on
  assert.equal(firstDivergence([1, 2, 9], [1, 2]), 2);
});

test('firstDivergence: the sequences agree before the index and differ at it (property)', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 12 }), (a, b) => {
    const i = firstDivergence(a, b);
    if (i === -1) return a.length === b.length && a.every((v, k) => v === b[k]);
    for (let k = 0; k < i; k++) if (a[k] !== b[k]) return false;
    return i === Math.min(a.length, b.length) ? a.length !== b.length : a[i] !== b[i];
  }));
});

test('metric formats', () => {
  assert.equal(formatPerplexity(3.284058163672875), '3.284');
  assert.equal(formatPerplexity(1523.4), '1523');
  assert.equal(formatPerplexity(123456), '1.235e+5');
  assert.equal(formatPerplexity(NaN), '–');
  assert.equal(formatFraction(0.9921875), '99.22 %');
  assert.equal(formatFraction(1), '100 %');
  assert.equal(formatFraction(0), '0 %');
  assert.equal(formatFraction(null), '–');
  assert.equal(formatKl(0), '0');
  assert.equal(formatKl(0.00035164392278873253), '3.52e-4');
  assert.equal(formatKl(0.12345), '0.1235');
  assert.equal(formatRate(21628.12), '21,628');
  assert.equal(formatRate(12.345), '12.3');
  assert.equal(formatMs(0.6409114), '0.641');
  assert.equal(formatMs(1234.5), '1,235');
  assert.equal(formatMs(null), '–');
  assert.equal(visiblePiece(''), '∅');
  assert.equal(visiblePiece('a\nb'), 'a⏎\nb');
});

test('directionRows: bars relative to the largest magnitude; best and chosen rows', () => {
  const layers = [
    { layer: 0, label: 'block 0 input', norm: 0.5, separation: 1 },
    { layer: 1, label: 'block 1 input', norm: 2, separation: 4 },
    { layer: 2, label: 'final norm input', norm: 4, separation: -2 },
  ];
  const rows = directionRows(layers, 1, undefined);
  assert.deepEqual(rows.map((r) => r.normBar), [0.125, 0.5, 1]);
  assert.deepEqual(rows.map((r) => r.separationBar), [0.25, 1, 0.5]);
  assert.deepEqual(rows.map((r) => r.best), [false, true, false]);
  assert.deepEqual(rows.map((r) => r.chosen), [false, true, false]); // no choice yet: the best
  assert.deepEqual(directionRows(layers, 1, 2).map((r) => r.chosen), [false, false, true]);
  assert.deepEqual(directionRows(layers, 1, 9).map((r) => r.chosen), [false, true, false]); // a stale choice falls back
  assert.equal(rows[2].separation, '-2.000');
  assert.equal(rows[1].norm, '2.000');
  const degenerate = directionRows([{ layer: 0, label: 'x', norm: 0, separation: Infinity }], 0, undefined);
  assert.equal(degenerate[0].separation, '∞');
  assert.equal(degenerate[0].normBar, 0);
});
