/**
 * The shared d3 views (webview/shared/views) drawn in a linkedom document from real data: the
 * LAPACK singular values of stories260K's matrices (../shared/reference), with the Marchenko-Pastur
 * edge and truncation curve computed by src/core. Each picture is serialised and parsed as XML, and
 * its pixels are checked against the scale formulas written out here, independently of d3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { interpolateViridis } from 'd3';
import {
  bondProfileView, energyView, modelMapView, spectrumView, PRINT_THEME, STYLESHEET_THEME, LINE_MARGIN,
} from '../../webview/shared/views';
import { mapLayout } from '../../webview/overview/mapLayout';
import { rankAtX } from '../../webview/spectrum/marker';
import { serializeSvg, staticDocument } from '../../src/report/svg';
import { spectrumMetrics, truncationCurve, renyi2Entropy, vonNeumannEntropy, normalizedEntropy } from '../../src/core/analysis/spectrum';
import { classes, parseXml, pathVertices, within, decodeEntities, type XmlElement } from '../report/xml';

interface RefTensor { name: string; shape: [number, number]; singularValues: number[] }
const REF: { tensors: RefTensor[] } = JSON.parse(readFileSync(new URL('../../../shared/reference/stories260k.spectra.json', import.meta.url), 'utf8'));
const byName = new Map(REF.tensors.map((t) => [t.name, t]));
const doc = staticDocument();

/** ~g formatting of a decade or 1-2-5 tick, as the axis writes it (1e-2 -> "0.01"). */
const label = (v: number) => String(Number(v.toPrecision(6)));

function ticksOf(els: XmlElement[], axis: 'x' | 'y'): string[] {
  return els.filter((e) => e.name === 'text' && within(e, (a) => a.name === 'g' && classes(a).includes('axis') && classes(a).includes(axis))).map((e) => e.text);
}

/** The decades inside [lo, hi], or 1-2-5 steps when there are fewer than three decades. */
function expectedLogTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) if (10 ** e >= lo * (1 - 1e-9) && 10 ** e <= hi * (1 + 1e-9)) out.push(10 ** e);
  if (out.length >= 3) return out;
  const fine: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of [1, 2, 5]) { const v = m * 10 ** e; if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) fine.push(v); }
  return fine;
}

test('spectrum view of a stories260K matrix: one vertex per singular value, MP edge and outliers where the log scales put them', () => {
  const t = byName.get('model.layers.0.mlp.down_proj.weight')!;
  const s = t.singularValues;
  const m = spectrumMetrics(s, { rows: t.shape[0], cols: t.shape[1] });
  const W = 640, H = 300;
  const view = spectrumView(doc, { id: 'chart-sv', title: t.name, description: `Singular values of ${t.name}`, width: W, height: H, spectra: [{ label: t.name, values: s, mpEdge: m.mpEdge }] });
  const els = parseXml(serializeSvg(view.svg));
  const root = els[0];
  assert.equal(root.name, 'svg');
  assert.equal(root.attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(root.attrs.role, 'img');
  assert.equal(root.attrs['aria-label'], `Singular values of ${t.name}`);
  assert.equal(root.attrs['aria-describedby'], 'chart-sv-desc');
  assert.ok(els.some((e) => e.name === 'desc' && e.attrs.id === 'chart-sv-desc'));

  // Plot area from the default margin; the rank axis is log [1, r] exactly (the marker inverts it).
  const left = LINE_MARGIN.left, right = W - LINE_MARGIN.right, top = LINE_MARGIN.top, bottom = H - LINE_MARGIN.bottom;
  const r = s.length;
  const xOf = (i: number) => left + (Math.log(i) / Math.log(r)) * (right - left);
  // The value axis: [0.8 min, 1.25 max] (edge included) rounded out to whole decades.
  const lo = 10 ** Math.floor(Math.log10(0.8 * Math.min(s[r - 1], m.mpEdge))), hi = 10 ** Math.ceil(Math.log10(1.25 * Math.max(s[0], m.mpEdge)));
  const yOf = (v: number) => bottom - ((Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (bottom - top);

  const line = els.filter((e) => e.name === 'path' && classes(e).includes('line'));
  assert.equal(line.length, 1);
  const pts = pathVertices(line[0].attrs.d);
  assert.equal(pts.length, r, 'every singular value of this full-rank matrix is drawn');
  for (const i of [1, 2, Math.floor(r / 2), r]) {
    assert.ok(Math.abs(pts[i - 1][0] - xOf(i)) < 0.01, `x of s_${i}: ${pts[i - 1][0]} vs ${xOf(i)}`);
    assert.ok(Math.abs(pts[i - 1][1] - yOf(s[i - 1])) < 0.01, `y of s_${i}: ${pts[i - 1][1]} vs ${yOf(s[i - 1])}`);
    assert.equal(rankAtX(pts[i - 1][0], view.plot.left, view.plot.right, view.maxRank), i, 'the rank marker reads back the rank under the vertex');
  }

  const edge = els.filter((e) => e.name === 'line' && classes(e).includes('mp-edge'));
  assert.equal(edge.length, 1);
  assert.ok(Math.abs(Number(edge[0].attrs.y1) - yOf(m.mpEdge)) < 0.01, `edge at y ${edge[0].attrs.y1}, formula ${yOf(m.mpEdge)}`);
  assert.equal(Number(edge[0].attrs.y1), Number(edge[0].attrs.y2));
  assert.equal(Number(edge[0].attrs.x1), left);
  assert.equal(Number(edge[0].attrs.x2), right);
  const outliers = els.filter((e) => e.name === 'circle' && classes(e).includes('outlier'));
  assert.equal(outliers.length, m.outliers, 'one circle per singular value above the edge (core count)');
  for (const c of outliers) assert.ok(Number(c.attrs['data-y']) > m.mpEdge);

  assert.deepEqual(ticksOf(els, 'y'), expectedLogTicks(lo, hi).map(label));
  assert.deepEqual(ticksOf(els, 'x'), expectedLogTicks(1, r).map(label));
  assert.ok(els.some((e) => e.name === 'text' && classes(e).includes('axis-label') && e.text === 'rank i'));
  assert.ok(els.some((e) => e.name === 'text' && classes(e).includes('axis-label') && e.text === 'singular value s_i'));
});

test('spectrum view: values below 1e-6 s_max are left out and counted, non-positive values never reach the log axis', () => {
  const s = byName.get('model.layers.1.self_attn.q_proj.weight')!.singularValues;
  const values = [...s, s[0] * 1e-9, 0];
  const view = spectrumView(doc, { title: 'q', spectra: [{ label: 'q', values }], legend: true }, PRINT_THEME);
  const xml = serializeSvg(view.svg);
  const els = parseXml(xml);
  assert.equal(pathVertices(els.find((e) => e.name === 'path' && classes(e).includes('line'))!.attrs.d).length, s.length);
  assert.ok(els.some((e) => e.name === 'text' && decodeEntities(e.text) === 'q (2 ≈ 0 not drawn)'));
  assert.ok(!/NaN|Infinity/.test(xml));
});

test('energy view: vertex k sits at the energy 1 - e_k^2 of the truncation curve core computes', () => {
  const t = byName.get('model.layers.2.mlp.gate_proj.weight')!;
  const tc = truncationCurve(t.singularValues, { rows: t.shape[0], cols: t.shape[1] });
  const errors = Array.from(tc.errors);
  const W = 640, H = 300;
  const view = energyView(doc, { title: 'energy', width: W, height: H, series: [{ label: t.name, errors }] });
  const els = parseXml(serializeSvg(view.svg));
  const pts = pathVertices(els.find((e) => e.name === 'path' && classes(e).includes('line'))!.attrs.d);
  const K = errors.length - 1;
  assert.equal(pts.length, K);
  const top = LINE_MARGIN.top, bottom = H - LINE_MARGIN.bottom;
  // Independent energy from the singular values: sum_{i<=k} s_i^2 / sum s_i^2.
  const s = t.singularValues, total = s.reduce((a, v) => a + v * v, 0);
  let acc = 0;
  for (let k = 1; k <= K; k++) {
    acc += s[k - 1] * s[k - 1];
    const y = bottom - (acc / total) * (bottom - top);
    assert.ok(Math.abs(pts[k - 1][1] - y) < 0.02, `k=${k}: ${pts[k - 1][1]} vs ${y}`);
  }
  assert.equal(pts[K - 1][1], top, 'all the energy at full rank');
  assert.deepEqual(ticksOf(els, 'y'), ['0', '0.2', '0.4', '0.6', '0.8', '1']);
});

test('model map view of stories260K: one cell per matrix, layers x kinds in the blocks, colours from the value', () => {
  const names = REF.tensors.map((t) => t.name);
  const layout = mapLayout(names);
  const entropy = new Map(REF.tensors.map((t) => [t.name, normalizedEntropy(vonNeumannEntropy(t.singularValues), { rows: t.shape[0], cols: t.shape[1] })]));
  const spec = {
    title: 'map', description: 'Model map of normalised entropy', rows: layout.rows, columns: layout.columns.map((c) => (c === null ? '–' : String(c))),
    cells: layout.cells.map((c) => ({ ...c, value: entropy.get(c.name)!, scanned: true })), domain: [0, 1] as [number, number], metricLabel: 'S / ln r',
  };
  const layers = new Set(names.map((n) => /layers\.(\d+)\./.exec(n)?.[1]).filter(Boolean)).size;
  const kinds = new Set(names.filter((n) => /layers\./.test(n)).map((n) => n.replace(/^.*layers\.\d+\./, ''))).size;
  assert.equal(layers, 5);
  assert.equal(kinds, 7);

  for (const theme of [PRINT_THEME, STYLESHEET_THEME]) {
    const view = modelMapView(doc, { ...spec, showValues: theme === PRINT_THEME }, theme);
    const els = parseXml(serializeSvg(view.svg));
    assert.equal(els[0].attrs['aria-label'], 'Model map of normalised entropy');
    const cells = els.filter((e) => e.name === 'rect' && classes(e).includes('cell'));
    assert.equal(cells.length, names.length);
    assert.equal(cells.filter((c) => c.attrs['data-block'] !== 'none').length, layers * kinds);
    assert.equal(new Set(cells.map((c) => `${c.attrs['data-row']},${c.attrs['data-col']}`)).size, cells.length, 'no cell hides another');
    assert.equal(view.cells.size, names.length);
    for (const c of cells) {
      const v = entropy.get(c.attrs['data-name'])!;
      if (theme === PRINT_THEME) assert.equal(c.attrs.fill, interpolateViridis(v));
      else {
        assert.equal(c.attrs.fill, undefined, 'webview cells take their colour from the stylesheet');
        assert.ok(Math.abs(Number(c.attrs['fill-opacity']) - (0.15 + 0.85 * v)) < 0.006);
      }
      const { x, y } = view.cellAt(Number(c.attrs['data-row']), Number(c.attrs['data-col']));
      assert.equal(Number(c.attrs.x), x + 1);
      assert.equal(Number(c.attrs.y), y + 1);
    }
    if (theme === PRINT_THEME) {
      const written = els.filter((e) => e.name === 'text' && classes(e).includes('cell-value'));
      assert.equal(written.length, names.length);
      const q0 = 'model.layers.0.self_attn.q_proj.weight';
      const cell = cells.find((c) => c.attrs['data-name'] === q0)!;
      const text = written.find((e) => Number(e.attrs.x) === Number(cell.attrs.x) - 1 + view.cellSize / 2 && Number(e.attrs.y) === Number(cell.attrs.y) - 1 + view.cellSize / 2 + 4)!;
      assert.equal(text.text, entropy.get(q0)!.toFixed(2));
    }
  }
});

test('bond profile view: bar heights are S and ln min(L, R) on one linear scale, Renyi-2 dots below S', () => {
  // Two sites of a real 64 x 172 matrix: the single bond is the matrix itself; its Schmidt values are s_i.
  const t = byName.get('model.layers.3.mlp.down_proj.weight')!;
  const S = vonNeumannEntropy(t.singularValues), S2 = renyi2Entropy(t.singularValues), max = Math.log(Math.min(...t.shape));
  const bonds = [{ entropy: S, max, renyi2: S2 }, { entropy: null, max: max / 2 }];
  const H = 220;
  const view = bondProfileView(doc, { title: 'bonds', height: H, bonds }, PRINT_THEME);
  const els = parseXml(serializeSvg(view.svg));
  const bar = els.filter((e) => e.name === 'rect' && classes(e).includes('bar'));
  const outline = els.filter((e) => e.name === 'rect' && classes(e).includes('bar-max'));
  assert.equal(bar.length, 1, 'a bond without an entropy has no filled bar');
  assert.equal(outline.length, 2);
  const base = Number(outline[0].attrs.y) + Number(outline[0].attrs.height);
  assert.ok(Math.abs(base - view.plot.bottom) < 0.01);
  const ratio = Number(bar[0].attrs.height) / Number(outline[0].attrs.height);
  assert.ok(Math.abs(ratio - S / max) < 1e-3, `bar ratio ${ratio} vs S / ln min = ${S / max}`);
  const dot = els.find((e) => e.name === 'circle' && classes(e).includes('renyi2'))!;
  assert.ok(S2 <= S && Number(dot.attrs.cy) >= Number(bar[0].attrs.y), 'Renyi-2 <= von Neumann');
  assert.equal(bar[0].attrs.fill, PRINT_THEME.bar);
});

test('the stylesheet theme writes no colours (the webview colours by class), the print theme only concrete ones', () => {
  const t = byName.get('model.layers.4.self_attn.v_proj.weight')!;
  const spec = { title: 'v', spectra: [{ label: 'v', values: t.singularValues, mpEdge: t.singularValues[3] }], legend: true, heading: true };
  const css = serializeSvg(spectrumView(doc, spec, STYLESHEET_THEME).svg);
  assert.ok(!/(fill|stroke)="(#|rgb)/.test(css), 'no concrete colour in the webview rendering');
  const print = serializeSvg(spectrumView(doc, spec, PRINT_THEME).svg);
  assert.ok(!/currentColor|var\(--/.test(print), 'every colour concrete in the static rendering');
  assert.ok(/stroke="#c62828"/.test(print), 'the MP edge in the print theme colour');
  assert.ok(!/<script|href=|url\(/.test(print), 'no scripts or external references');
});
