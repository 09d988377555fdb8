/**
 * The spectrum view: singular values on log-log axes with the Marchenko-Pastur bulk edge and the
 * outliers above it, the cumulative energy curve, and a rank marker (drag with the mouse, or focus it
 * and use the arrow keys) whose readouts come from the truncation curve the host shipped.
 * Several tensors may be overlaid ("Add Spectrum to Comparison"); the marker reads the active one.
 */
import { axisBottom, axisLeft, line, scaleLinear, scaleLog, select, type Selection } from 'd3';
import type { HostToSpectrum, SpectrumSeries, SpectrumToHost } from '../../src/protocol/messages';
import css from '../shared/base.css';
import { h, installStyle, svgDocument, svgToPngBase64 } from '../shared/dom';
import { createMessenger } from '../shared/messaging';
import { fmt } from '../shared/metrics';
import { toCsv } from '../shared/csv';
import { clampRank, energyCurve, rankAtX, readoutAt, stepRank } from './marker';

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

const W = 640, H = 300, M = { top: 14, right: 20, bottom: 40, left: 64 };
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

  const svgSv = chart('sv', 'Singular values (log-log)', `Singular values of ${series.map((s) => s.name).join(', ')} against rank on log scales; dashed line: Marchenko-Pastur bulk edge; circles: outliers above it.`);
  const svgEn = chart('energy', 'Cumulative energy', `Cumulative energy sum of s squared up to rank k over the total, against rank on a log scale.`);
  app.append(svgSv.wrap, svgEn.wrap);

  const maxK = Math.max(...series.map((s) => Math.max(1, s.singularValues.length)));
  const x = scaleLog().domain([1, Math.max(2, maxK)]).range([M.left, W - M.right]);
  let sMin = Infinity, sMax = 0;
  for (const s of series) for (const v of s.singularValues) if (v > 0) { sMin = Math.min(sMin, v); sMax = Math.max(sMax, v); }
  for (const s of series) if (s.mpEdge > 0) { sMin = Math.min(sMin, s.mpEdge); sMax = Math.max(sMax, s.mpEdge); }
  if (!(sMin < Infinity)) { sMin = 1e-3; sMax = 1; }
  const y = scaleLog().domain([sMin * 0.8, sMax * 1.25]).range([H - M.bottom, M.top]).nice();
  const yE = scaleLinear().domain([0, 1]).range([H - M.bottom, M.top]);
  axes(svgSv.svg, x, y, 'rank i', 'singular value s_i');
  axes(svgEn.svg, x, yE, 'rank k', 'energy kept');

  series.forEach((s, i) => {
    const cls = `series-${i % 6}`;
    const pts = s.singularValues.map((v, j) => [j + 1, v] as [number, number]).filter((p) => p[1] > 0);
    svgSv.svg.append('path').attr('class', `line ${cls}`).attr('d', line<[number, number]>().x((p) => x(p[0])).y((p) => y(p[1]))(pts) ?? '');
    if (s.mpEdge > 0) svgSv.svg.append('line').attr('class', 'mp-edge').attr('x1', M.left).attr('x2', W - M.right).attr('y1', y(s.mpEdge)).attr('y2', y(s.mpEdge))
      .append('title').text(`Marchenko-Pastur edge of ${s.name}: ${fmt(s.mpEdge)}`);
    svgSv.svg.append('g').selectAll('circle').data(pts.filter((p) => p[1] > s.mpEdge)).join('circle')
      .attr('class', 'outlier').attr('r', 3.5).attr('cx', (p) => x(p[0])).attr('cy', (p) => y(p[1]))
      .append('title').text((p) => `outlier ${p[0]}: s = ${fmt(p[1])}`);
    const en = energyCurve(s.truncation).map((v, k) => [k, v] as [number, number]).filter((p) => p[0] >= 1);
    svgEn.svg.append('path').attr('class', `line ${cls}`).attr('d', line<[number, number]>().x((p) => x(p[0])).y((p) => yE(p[1]))(en) ?? '');
  });

  // The marker: a line on both charts; drag anywhere on a chart, or focus a chart and use the keys.
  const markers = [svgSv, svgEn].map((c) => {
    const g = c.svg.append('g').attr('class', 'marker');
    const ln = g.append('line').attr('class', 'marker-line').attr('y1', M.top).attr('y2', H - M.bottom);
    const handle = g.append('rect').attr('class', 'marker-handle').attr('width', 10).attr('height', 10).attr('y', M.top - 6);
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
      ui.rank = clampRank(rankAtX(px, M.left, W - M.right, Math.max(2, maxK)), series[ui.active].truncation);
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

function chart(id: string, label: string, desc: string) {
  const wrap = h('figure', { class: 'chart-wrap' }, h('figcaption', { class: 'muted' }, label));
  const svg = select(wrap).append('svg').attr('id', `chart-${id}`).attr('class', 'chart').attr('viewBox', `0 0 ${W} ${H}`)
    .attr('width', W).attr('height', H).attr('aria-describedby', `chart-${id}-desc`);
  svg.append('desc').attr('id', `chart-${id}-desc`).text(desc);
  return { wrap, svg, label };
}

function axes(svg: Selection<SVGSVGElement, unknown, null, undefined>, x: ReturnType<typeof scaleLog>, y: ReturnType<typeof scaleLog> | ReturnType<typeof scaleLinear>, xl: string, yl: string): void {
  svg.append('g').attr('class', 'axis').attr('transform', `translate(0,${H - M.bottom})`).call(axisBottom(x as never).ticks(6, '~g') as never);
  svg.append('g').attr('class', 'axis').attr('transform', `translate(${M.left},0)`).call(axisLeft(y as never).ticks(5, '~g') as never);
  svg.append('text').attr('x', (M.left + W - M.right) / 2).attr('y', H - 6).attr('text-anchor', 'middle').text(xl);
  svg.append('text').attr('transform', `translate(14,${(M.top + H - M.bottom) / 2}) rotate(-90)`).attr('text-anchor', 'middle').text(yl);
}

render();
api.postMessage({ type: 'ready', messageId: 0 });
