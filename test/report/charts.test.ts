import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heatmap, lineChart, spectrumChart, plotScales, chartMargin, type LineChartSpec } from '../../src/report/charts';
import { parseXml, decodeEntities } from './xml';

const MARGIN = { top: 40, right: 20, bottom: 40, left: 60 };

test('the XML checker itself rejects what is not well-formed', () => {
  assert.throws(() => parseXml('<svg><g></svg>'), /closes/);
  assert.throws(() => parseXml('<svg><text>a & b</text></svg>'), /bare '&'/);
  assert.throws(() => parseXml('<svg a="1" a="2"/>'), /duplicate/);
  assert.throws(() => parseXml('<svg x=1/>'), /bad attributes/);
  assert.throws(() => parseXml('<svg/><svg/>'), /one root/);
  assert.throws(() => parseXml('<svg><g>'), /unclosed/);
  assert.equal(parseXml('<svg a="x &amp; y"><g/><text>1 &lt; 2</text></svg>').length, 3);
});

test('line chart: well-formed, accessible, and a known value lands at its pixel on a linear scale', () => {
  const spec: LineChartSpec = {
    title: 'Linear <test> & "quotes"', xLabel: 'x', yLabel: 'y', width: 500, height: 300, margin: MARGIN,
    xDomain: [0, 10], yDomain: [0, 100], series: [{ label: 'a & b', points: [[0, 0], [5, 50], [10, 100]], markers: true }],
  };
  const svg = lineChart(spec);
  const els = parseXml(svg);
  const root = els[0];
  assert.equal(root.name, 'svg');
  assert.equal(root.attrs.role, 'img');
  assert.equal(decodeEntities(root.attrs['aria-label']), 'Linear <test> & "quotes"');
  assert.ok(els.some((e) => e.name === 'title' && decodeEntities(e.text) === 'Linear <test> & "quotes"'));
  assert.ok(els.some((e) => e.attrs.class === 'series' && decodeEntities(e.attrs['data-label']) === 'a & b'));
  assert.ok(els.some((e) => e.attrs.class?.startsWith('axis-label x') && e.text === 'x'));
  // Plot area: x from 60 to 480, y from 260 (bottom) to 40 (top); [0,10] and [0,100] are already nice.
  const mid = els.find((e) => e.name === 'circle' && e.attrs['data-x'] === '5')!;
  assert.equal(Number(mid.attrs.cx), 60 + 0.5 * (480 - 60));
  assert.equal(Number(mid.attrs.cy), 260 - 0.5 * (260 - 40));
  const end = els.find((e) => e.name === 'circle' && e.attrs['data-x'] === '10')!;
  assert.equal(Number(end.attrs.cx), 480);
  assert.equal(Number(end.attrs.cy), 40);
});

test('log scale: 10 on a [1, 1000] axis sits one third of the way up, 100 two thirds', () => {
  const spec: LineChartSpec = {
    title: 'log', xLabel: 'i', yLabel: 's', width: 400, height: 340, margin: MARGIN, yScale: 'log',
    xDomain: [0, 4], yDomain: [1, 1000], series: [{ label: 's', points: [[1, 10], [2, 100], [3, 0], [4, -1]], markers: true }],
  };
  const els = parseXml(lineChart(spec));
  const top = MARGIN.top, bottom = 340 - MARGIN.bottom;
  const c10 = els.find((e) => e.name === 'circle' && e.attrs['data-y'] === '10')!;
  const c100 = els.find((e) => e.name === 'circle' && e.attrs['data-y'] === '100')!;
  assert.ok(Math.abs(Number(c10.attrs.cy) - (bottom - (bottom - top) / 3)) < 0.01);
  assert.ok(Math.abs(Number(c100.attrs.cy) - (bottom - (2 * (bottom - top)) / 3)) < 0.01);
  // Non-positive values cannot sit on a log axis: they are skipped, not drawn at -Infinity.
  assert.equal(els.filter((e) => e.name === 'circle' && e.attrs.class === 'point').length, 2);
  assert.ok(!lineChart(spec).includes('NaN') && !lineChart(spec).includes('Infinity'));
  const sc = plotScales(spec);
  assert.equal(sc.y(1), bottom);
  assert.equal(sc.y(1000), top);
});

test('spectrum chart: outliers above the MP edge are circled, the edge is drawn, numerical zeros are left out', () => {
  const values = [50, 20, 9, 4, 3, 2.5, 2, 1.5, 1, 0.5, 1e-12];
  const edge = 5;
  const svg = spectrumChart({ title: 'W', spectra: [{ label: 's_i', values }], mpEdge: edge, width: 500, height: 320 });
  const els = parseXml(svg);
  const circled = els.filter((e) => e.name === 'circle' && e.attrs.class === 'highlight');
  assert.deepEqual(circled.map((e) => Number(e.attrs['data-y'])), values.filter((v) => v > edge));
  const rule = els.find((e) => e.name === 'g' && e.attrs.class === 'rule h')!;
  assert.equal(Number(rule.attrs['data-value']), edge);
  // The edge line and a point of the same value are at the same height.
  const spec: LineChartSpec = { title: 'W', xLabel: '', yLabel: '', yScale: 'log', width: 500, height: 320, series: [{ label: 's_i (1 ≈ 0 not drawn)', points: values.slice(0, -1).map((v, i) => [i + 1, v]) }], hLines: [{ value: edge, label: 'MP edge 5' }], highlights: values.filter((v) => v > edge).map((v, i) => ({ x: i + 1, y: v, label: 'outliers above the MP edge' })) };
  const sc = plotScales(spec);
  const lineEl = els.findIndex((e) => e === rule);
  assert.equal(Number(els[lineEl + 1].attrs.y1), Math.round(sc.y(edge) * 100) / 100);
  assert.equal(els.filter((e) => e.name === 'circle' && e.attrs.class === 'point').length, values.length - 1);
  assert.match(svg, /1 ≈ 0 not drawn/);
});

test('legend rows push the plot down instead of overlapping it', () => {
  const many: LineChartSpec = { title: 't', xLabel: 'x', yLabel: 'y', width: 300, series: ['first series', 'second series', 'third series'].map((label, i) => ({ label, points: [[0, i], [1, i + 1]] })) };
  const one: LineChartSpec = { ...many, series: many.series.slice(0, 1) };
  assert.ok(chartMargin(many).top > chartMargin(one).top);
  parseXml(lineChart(many));
});

test('heatmap: one cell per (row, column), empty cells marked, colours follow the domain', () => {
  const rows = ['attn_q', 'attn_k', 'ffn_up'], cols = ['block 0', 'block 1', 'block 2', 'block 3'];
  const values = rows.map((_, i) => cols.map((_, j) => (i === 1 && j === 2 ? null : (i * cols.length + j) / 11)));
  const svg = heatmap({ title: 'map', rowLabels: rows, colLabels: cols, values, domain: [0, 1], valueLabel: 'S / ln r' });
  const els = parseXml(svg);
  const cells = els.filter((e) => e.name === 'rect' && e.attrs.class?.split(' ').includes('cell'));
  assert.equal(cells.length, rows.length * cols.length);
  const seen = new Set(cells.map((c) => `${c.attrs['data-row']},${c.attrs['data-col']}`));
  assert.equal(seen.size, rows.length * cols.length);
  const empty = cells.filter((c) => c.attrs.class === 'cell empty');
  assert.deepEqual(empty.map((c) => [c.attrs['data-row'], c.attrs['data-col']]), [['1', '2']]);
  // Viridis ends: 0 -> #440154 (dark purple), 1 -> #fde725 (yellow).
  const first = cells.find((c) => c.attrs['data-row'] === '0' && c.attrs['data-col'] === '0')!;
  const last = cells.find((c) => c.attrs['data-row'] === '2' && c.attrs['data-col'] === '3')!;
  assert.equal(first.attrs.fill, '#440154');
  assert.equal(Number(last.attrs['data-value']), 1);
  assert.equal(last.attrs.fill, '#fde725');
  // Cell geometry: column j starts one cell width after column j - 1.
  const c0 = cells.find((c) => c.attrs['data-row'] === '0' && c.attrs['data-col'] === '0')!;
  const c1 = cells.find((c) => c.attrs['data-row'] === '0' && c.attrs['data-col'] === '1')!;
  assert.equal(Number(c1.attrs.x) - Number(c0.attrs.x), Number(c0.attrs.width));
});
