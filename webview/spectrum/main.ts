/**
 * The spectrum view: singular values on log-log axes with the Marchenko-Pastur bulk edge and the
 * outliers above it, the cumulative energy curve, and a rank marker (drag with the mouse, or focus it
 * and use the arrow keys) whose readouts come from the truncation curve the host shipped.
 * Several tensors may be overlaid ("Add Spectrum to Comparison"); the marker reads the active one.
 */
import { select } from 'd3';
import type { HostToSpectrum, SpectrumSeries, SpectrumToHost } from '../../src/protocol/messages';
import css from '../shared/base.css';
import { h, installStyle, svgDocument, svgToPngBase64 } from '../shared/dom';
import { createMessenger } from '../shared/messaging';
import { fmt } from '../shared/metrics';
import { toCsv } from '../shared/csv';
import { energyView, spectrumView, type LineView } from '../shared/views';
import { clampRank, rankAtX, readoutAt, stepRank } from './marker';

interface UiState { rank: number; active: number }
const api = acquireVsCodeApi<UiState>();
installStyle(css);
let ui: UiState = { rank: 8, active: 0, ...(api.getState() ?? {}) };
let series: SpectrumSeries[] = [];
let loading: string | undefined;
let error: string | undefined;
const app = document.getElementById('app')!;

const msg = createMessenger<SpectrumToHost, HostToSpectrum, UiState>(api, (m) => {
  if (m.type === 'spectra') {
    series = m.series;
    loading = m.loading;
    error = m.error;
    if (ui.active >= series.length) ui.active = Math.max(0, series.length - 1);
    render();
  }
});

const W = 640, H = 300;
let updateMarker: (() => void) | undefined;

function save(): void {
  api.setState(ui);
}

function render(): void {
  app.replaceChildren();
  app.setAttribute('aria-busy', String(!!loading));
  if (series.length === 0) {
    app.append(h('h1', {}, 'Spectrum'));
    if (error) app.append(h('p', { class: 'notice error', role: 'alert', id: 'spectrum-error' }, error));
    else if (loading) app.append(h('p', { class: 'status', id: 'spectrum-loading' }, loading));
    else app.append(h('p', { class: 'status' }, 'No tensor yet. Right-click a 2-D tensor in the Models view and choose "Analyze Spectrum", or click a cell of the model map.'));
    return;
  }
  const active = series[ui.active];
  const K = active.truncation.errors.length - 1;
  ui.rank = clampRank(ui.rank, active.truncation);
  const title = series.length === 1 ? active.name : `${series.length} spectra`;
  app.append(h('header', {}, h('h1', { id: 'spectrum-title' }, title), h('p', { class: 'muted' }, series.length === 1
    ? `${active.model} · [${active.matrix.join(' × ')}] · ${active.mode} mode · ${active.outliers} outlier(s) above the Marchenko-Pastur edge ${fmt(active.mpEdge)}`
    : 'Overlaid for comparison; the marker reads the active series.')));
  if (loading) app.append(h('p', { class: 'status' }, loading));
  if (error) app.append(h('p', { class: 'notice error', role: 'alert' }, error));

  // Legend with the active-series choice and Remove buttons.
  const legend = h('div', { class: 'legend', role: 'radiogroup', 'aria-label': 'Active series (the marker reads it)' });
  series.forEach((s, i) => {
    const radio = h('input', { type: 'radio', name: 'active', id: `series-${i}`, 'aria-label': `${s.model} ${s.name}` }) as HTMLInputElement;
    radio.checked = i === ui.active;
    radio.addEventListener('change', () => { ui.active = i; save(); render(); });
    const remove = h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${s.name} from the comparison`, title: 'Remove' }, '×');
    remove.addEventListener('click', () => void msg.send({ type: 'removeSeries', path: s.path, name: s.name }));
    legend.append(h('span', {}, radio, h('label', { for: `series-${i}` }, h('span', { class: `swatch series-${i % 6}` }), `${s.name}`, series.some((o) => o.model !== s.model) ? h('span', { class: 'muted' }, ` (${s.model})`) : null), remove));
  });
  app.append(legend);

  // Readouts.
  const dl = h('dl', { class: 'readouts', 'aria-live': 'polite' });
  const dd = (label: string, id: string) => { const d = h('dd', { id }); dl.append(h('div', {}, h('dt', {}, label), d)); return d; };
  const ro = {
    rank: dd('Rank k', 'readout-rank'), error: dd('Truncation error', 'readout-error'), params: dd('Parameters kept', 'readout-params'),
    ratio: dd('Compression ratio', 'readout-ratio'), energy: dd('Energy kept', 'readout-energy'),
  };
  const slider = h('input', { type: 'range', id: 'rank-slider', min: 1, max: K, step: 1, value: ui.rank, 'aria-label': 'Rank marker' }) as HTMLInputElement;
  slider.addEventListener('input', () => { ui.rank = Number(slider.value); save(); updateMarker?.(); });
  app.append(h('div', { class: 'toolbar' }, h('label', { for: 'rank-slider' }, 'Rank'), slider), dl);

  // The pictures are the shared views (webview/shared/views), the same the report renders; this
  // file adds only the interactive layer: the rank marker, its drag and its keys.
  const maxK = Math.max(...series.map((s) => Math.max(1, s.singularValues.length)));
  const svSpec = { title: 'Singular values (log-log)', description: `Singular values of ${series.map((s) => s.name).join(', ')} against rank on log scales; dashed line: Marchenko-Pastur bulk edge; circles: outliers above it.` };
  const enSpec = { title: 'Cumulative energy', description: 'Cumulative energy sum of s squared up to rank k over the total, against rank on a log scale.' };
  const svgSv = chart(svSpec.title, spectrumView(document, {
    ...svSpec, id: 'chart-sv', width: W, height: H, maxRank: maxK,
    spectra: series.map((s) => ({ label: s.name, values: s.singularValues, mpEdge: s.mpEdge })),
  }));
  const svgEn = chart(enSpec.title, energyView(document, {
    ...enSpec, id: 'chart-energy', width: W, height: H, maxRank: maxK,
    series: series.map((s) => ({ label: s.name, errors: s.truncation.errors })),
  }));
  app.append(svgSv.wrap, svgEn.wrap);
  const { x, plot } = svgSv.view;

  // The marker: a line on both charts; drag anywhere on a chart, or focus a chart and use the keys.
  const markers = [svgSv, svgEn].map((c) => {
    const g = c.svg.append('g').attr('class', 'marker');
    const ln = g.append('line').attr('class', 'marker-line').attr('y1', c.view.plot.top).attr('y2', c.view.plot.bottom);
    const handle = g.append('rect').attr('class', 'marker-handle').attr('width', 10).attr('height', 10).attr('y', c.view.plot.top - 6);
    return { ln, handle };
  });
  updateMarker = () => {
    const a = series[ui.active];
    const r = readoutAt(a.truncation, a.matrix[0], a.matrix[1], ui.rank);
    ui.rank = r.rank;
    for (const m of markers) {
      m.ln.attr('x1', x(r.rank)).attr('x2', x(r.rank));
      m.handle.attr('x', x(r.rank) - 5);
    }
    ro.rank.textContent = `${r.rank} of ${a.truncation.errors.length - 1}`;
    ro.error.textContent = fmt(r.error, 4);
    ro.params.textContent = `${r.params.toLocaleString('en-US')} of ${r.denseParams.toLocaleString('en-US')}`;
    ro.ratio.textContent = `${fmt(r.ratio, 4)}×`;
    ro.energy.textContent = `${fmt(r.energy * 100, 4)}%`;
    slider.value = String(r.rank);
    for (const c of [svgSv, svgEn]) {
      c.svg.attr('aria-valuenow', r.rank).attr('aria-valuetext', `rank ${r.rank}, error ${fmt(r.error, 4)}, ratio ${fmt(r.ratio, 3)}`);
    }
  };
  for (const c of [svgSv, svgEn]) {
    const node = c.svg.node()!;
    c.svg.attr('tabindex', 0).attr('role', 'slider').attr('aria-valuemin', 1).attr('aria-valuemax', K)
      .attr('aria-label', `${c.label}: rank marker (arrow keys move it)`);
    const toRank = (ev: PointerEvent) => {
      const box = node.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * W;
      ui.rank = clampRank(rankAtX(px, plot.left, plot.right, svgSv.view.maxRank), series[ui.active].truncation);
      save();
      updateMarker?.();
    };
    node.addEventListener('pointerdown', (ev) => { node.setPointerCapture(ev.pointerId); node.focus(); toRank(ev); });
    node.addEventListener('pointermove', (ev) => { if (node.hasPointerCapture(ev.pointerId)) toRank(ev); });
    node.addEventListener('keydown', (ev) => {
      const k = stepRank(ui.rank, ev.key, series[ui.active].truncation);
      if (k === undefined) return;
      ev.preventDefault();
      ui.rank = k;
      save();
      updateMarker?.();
    });
  }
  updateMarker();

  // Exports.
  const exportSvg = h('button', { type: 'button', class: 'secondary', id: 'export-svg' }, 'Export SVG');
  const exportPng = h('button', { type: 'button', class: 'secondary', id: 'export-png' }, 'Export PNG');
  const exportCsv = h('button', { type: 'button', class: 'secondary', id: 'export-csv' }, 'Export CSV');
  const base = series.length === 1 ? active.name.replace(/[^\w.-]+/g, '_') : 'spectra';
  exportSvg.addEventListener('click', () => void msg.send({ type: 'saveExport', format: 'svg', suggestedName: `${base}.spectrum.svg`, text: svgDocument(svgSv.svg.node()!) }));
  exportPng.addEventListener('click', async () => {
    const base64 = await svgToPngBase64(svgDocument(svgSv.svg.node()!), W, H);
    void msg.send({ type: 'saveExport', format: 'png', suggestedName: `${base}.spectrum.png`, base64 });
  });
  exportCsv.addEventListener('click', () => {
    const rows: Array<Array<string | number>> = [];
    for (const s of series) s.singularValues.forEach((v, i) => rows.push([s.model, s.name, i + 1, v, s.truncation.errors[i + 1] ?? '', s.truncation.params[i + 1] ?? '']));
    void msg.send({ type: 'saveExport', format: 'csv', suggestedName: `${base}.spectrum.csv`, text: toCsv(['model', 'tensor', 'rank', 'singular_value', 'relative_error_at_rank', 'params_at_rank'], rows) });
  });
  app.append(h('div', { class: 'toolbar' }, exportSvg, exportPng, exportCsv));
}

/** A view's <svg> in its figure, with the d3 selection the marker layer is added to. */
function chart(label: string, view: LineView & { maxRank: number }) {
  const wrap = h('figure', { class: 'chart-wrap' }, h('figcaption', { class: 'muted' }, label), view.svg);
  return { wrap, svg: select(view.svg), view, label };
}

render();
api.postMessage({ type: 'ready', messageId: 0 });
