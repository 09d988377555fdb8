/**
 * The report's charts are the shared d3 views rendered in linkedom (src/report/svg.ts): well-formed
 * standalone SVG, escaped, accessible, and byte for byte what the view draws for the same data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { bondProfileChart, energyChart, lineChart, modelMapChart, spectrumChart, escapeXml } from '../../src/report/charts';
import { modelMapSvg } from '../../src/report/html';
import { serializeSvg, staticDocument, escapeAttr } from '../../src/report/svg';
import type { TourResult, TourTensorSpectrum } from '../../src/report/types';
import { lineView, spectrumView, PRINT_THEME, type LineViewSpec } from '../../webview/shared/views';
import { spectrumMetrics } from '../../src/core/analysis/spectrum';
import { classes, parseXml, decodeEntities } from './xml';

interface RefTensor { name: string; shape: [number, number]; singularValues: number[] }
const REF: { tensors: RefTensor[] } = JSON.parse(readFileSync(new URL('../../../shared/reference/stories260k.spectra.json', import.meta.url), 'utf8'));
const MARGIN = { top: 40, right: 20, bottom: 40, left: 60 };
const doc = staticDocument();

test('the XML checker itself rejects what is not well-formed', () => {
  assert.throws(() => parseXml('<svg><g></svg>'), /closes/);
  assert.throws(() => parseXml('<svg><text>a & b</text></svg>'), /bare '&'/);
  assert.throws(() => parseXml('<svg a="1" a="2"/>'), /duplicate/);
  assert.throws(() => parseXml('<svg x=1/>'), /bad attributes/);
  assert.throws(() => parseXml('<svg/><svg/>'), /one root/);
  assert.throws(() => parseXml('<svg><g>'), /unclosed/);
  assert.equal(parseXml('<svg a="x &amp; y"><g/><text>1 &lt; 2</text></svg>').length, 3);
});

test('the report\'s spectrum chart is the spectrum view\'s output for the same data (one drawing code)', () => {
  const t = REF.tensors.find((x) => x.name === 'model.layers.2.mlp.down_proj.weight')!;
  const m = spectrumMetrics(t.singularValues, { rows: t.shape[0], cols: t.shape[1] });
  const spec = { title: t.name, description: `Singular values of ${t.name}`, spectra: [{ label: 's_i', values: t.singularValues, mpEdge: m.mpEdge }], width: 540, height: 320 };
  const report = spectrumChart(spec);
  const view = serializeSvg(spectrumView(doc, { heading: true, legend: true, ...spec }, PRINT_THEME).svg);
  assert.equal(report, view);
  // And it is a real picture of the data, not an empty frame.
  const els = parseXml(report);
  assert.equal(els.filter((e) => e.name === 'circle' && classes(e).includes('outlier')).length, m.outliers);
  assert.ok(els.some((e) => e.name === 'text' && classes(e).includes('chart-title') && e.text === t.name));
});

test('every report chart is a standalone, accessible SVG: xmlns, role, aria-label, title, desc, no scripts or links', () => {
  const s = REF.tensors[3].singularValues;
  const errs = s.map((_, k) => Math.sqrt(s.slice(k).reduce((a, v) => a + v * v, 0) / s.reduce((a, v) => a + v * v, 0))).concat([0]);
  const charts = {
    spectrum: spectrumChart({ title: 'spectrum', spectra: [{ label: 's', values: s, mpEdge: s[2] }] }),
    energy: energyChart({ title: 'energy', series: [{ label: 'e', errors: errs }] }),
    line: lineChart({ title: 'line', xLabel: 'k', yLabel: 'err', yScale: 'log', series: [{ label: 'err', points: errs.map((e, k) => [k, e] as [number, number]) }] }),
    bonds: bondProfileChart({ title: 'bonds', bonds: [{ entropy: 1, max: 2, renyi2: 0.7 }, { entropy: 0.4, max: 1 }] }),
    map: modelMapChart({ title: 'map', rows: ['q'], columns: ['0'], cells: [{ name: 'q0', row: 0, col: 0, depth: 0, value: 0.5, scanned: true }], domain: [0, 1], metricLabel: 'S' }),
  };
  for (const [name, svg] of Object.entries(charts)) {
    const els = parseXml(svg);
    const root = els[0];
    assert.equal(root.name, 'svg', name);
    assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg', name);
    assert.equal(root.attrs.role, 'img', name);
    assert.equal(root.attrs['aria-label'], name);
    assert.ok(els.some((e) => e.name === 'title' && e.parent === root && e.text === name), `${name}: <title>`);
    assert.ok(els.some((e) => e.name === 'desc' && e.parent === root), `${name}: <desc>`);
    assert.ok(!/<script|href=|url\(|currentColor|var\(--/.test(svg), `${name}: nothing external, every colour concrete`);
    assert.ok(!/NaN|Infinity|undefined/.test(svg), name);
  }
});

test('text and attributes are escaped: the serialiser writes XML where linkedom\'s outerHTML would not', () => {
  const title = 'Linear <test> & "quotes"';
  const svg = lineChart({ title, xLabel: 'x < y', yLabel: 'a & b', series: [{ label: 'a & b', points: [[0, 0], [1, 1]] }] });
  const els = parseXml(svg);
  assert.equal(decodeEntities(els[0].attrs['aria-label']), title);
  assert.ok(els.some((e) => e.name === 'title' && decodeEntities(e.text) === title));
  assert.ok(els.some((e) => e.attrs.class === 'series' && decodeEntities(e.attrs['data-label']) === 'a & b'));
  assert.ok(els.some((e) => classes(e).includes('axis-label') && decodeEntities(e.text) === 'x < y'));
  assert.equal(escapeAttr('<a & "b">'), '&lt;a &amp; &quot;b&quot;&gt;');
  assert.equal(escapeXml(`it's`), 'it&#39;s');
});

test('line view: a known value lands at its pixel on a linear scale and on a log scale', () => {
  const spec: LineViewSpec = {
    title: 'linear', xLabel: 'x', yLabel: 'y', width: 500, height: 300, margin: MARGIN,
    xDomain: [0, 10], yDomain: [0, 100], series: [{ label: 'a', points: [[0, 0], [5, 50], [10, 100]], markers: true }],
  };
  const els = parseXml(serializeSvg(lineView(doc, spec).svg));
  // Plot area: x from 60 to 480, y from 260 (bottom) to 40 (top); [0,10] and [0,100] are already nice.
  const mid = els.find((e) => e.name === 'circle' && e.attrs['data-x'] === '5')!;
  assert.equal(Number(mid.attrs.cx), 60 + 0.5 * (480 - 60));
  assert.equal(Number(mid.attrs.cy), 260 - 0.5 * (260 - 40));
  const log: LineViewSpec = {
    title: 'log', xLabel: 'i', yLabel: 's', width: 400, height: 340, margin: MARGIN, yScale: 'log',
    xDomain: [0, 4], yDomain: [1, 1000], series: [{ label: 's', points: [[1, 10], [2, 100], [3, 0], [4, -1]], markers: true }],
  };
  const v = lineView(doc, log);
  const lels = parseXml(serializeSvg(v.svg));
  const top = MARGIN.top, bottom = 340 - MARGIN.bottom;
  const c10 = lels.find((e) => e.name === 'circle' && e.attrs['data-y'] === '10')!;
  const c100 = lels.find((e) => e.name === 'circle' && e.attrs['data-y'] === '100')!;
  assert.ok(Math.abs(Number(c10.attrs.cy) - (bottom - (bottom - top) / 3)) < 0.01);
  assert.ok(Math.abs(Number(c100.attrs.cy) - (bottom - (2 * (bottom - top)) / 3)) < 0.01);
  // Non-positive values cannot sit on a log axis: skipped, not drawn at -Infinity.
  assert.equal(lels.filter((e) => e.name === 'circle' && classes(e).includes('point')).length, 2);
  assert.equal(v.y(1), bottom);
  assert.equal(v.y(1000), top);
});

test('legend rows and the heading push the plot down instead of overlapping it', () => {
  const many: LineViewSpec = { title: 't', xLabel: 'x', yLabel: 'y', width: 300, legend: true, series: ['first series', 'second series', 'third series'].map((label, i) => ({ label, points: [[0, i], [1, i + 1]] })) };
  const one: LineViewSpec = { ...many, series: many.series.slice(0, 1) };
  const a = lineView(doc, many), b = lineView(doc, one), c = lineView(doc, { ...one, legend: false }), d = lineView(doc, { ...one, legend: false, heading: true });
  assert.ok(a.plot.top > b.plot.top && b.plot.top > c.plot.top && d.plot.top > c.plot.top);
  const legend = parseXml(serializeSvg(a.svg)).filter((e) => e.name === 'text' && e.parent?.attrs.class === 'legend');
  assert.ok(legend.every((e) => Number(e.attrs.y) < a.plot.top), 'legend text above the plot');
});

test('the report\'s model map: one cell per block matrix with its normalised entropy written in it', () => {
  const tensors: TourTensorSpectrum[] = REF.tensors.map((t) => {
    const m = spectrumMetrics(t.singularValues, { rows: t.shape[0], cols: t.shape[1] });
    const depth = /layers\.(\d+)\./.exec(t.name);
    return {
      name: t.name, kind: t.name.replace(/^.*layers\.\d+\./, '').replace(/\.weight$/, ''), depth: depth ? Number(depth[1]) : null, shape: t.shape,
      normalizedEntropy: m.normalizedEntropy, vonNeumannEntropy: m.vonNeumannEntropy, effectiveRank: m.effectiveRank, stableRank: m.stableRank,
      spectralNorm: m.spectralNorm, mpEdge: m.mpEdge, outliers: m.outliers, alpha: m.alpha,
    };
  });
  // modelMapSvg reads only the spectra table of a tour result.
  const svg = modelMapSvg({ spectra: { tensors } } as unknown as TourResult);
  const els = parseXml(svg);
  const blocks = tensors.filter((t) => t.depth !== null);
  const cells = els.filter((e) => e.name === 'rect' && classes(e).includes('cell'));
  assert.equal(cells.length, 5 * 7);
  assert.equal(cells.length, blocks.length);
  for (const t of blocks) {
    const cell = cells.find((e) => e.attrs['data-name'] === t.name)!;
    assert.equal(Number(cell.attrs['data-value']), t.normalizedEntropy);
    assert.equal(Number(cell.attrs['data-block']), t.depth);
  }
  const written = els.filter((e) => e.name === 'text' && classes(e).includes('cell-value')).map((e) => e.text).sort();
  assert.deepEqual(written, blocks.map((t) => t.normalizedEntropy!.toFixed(2)).sort());
  assert.match(els[0].attrs['aria-label'], /7 tensor kinds over 5 blocks/);
});
