/**
 * The model map tab of the overview: a heatmap of one spectrum metric with tensor kinds as rows and
 * block index (depth) as columns, filled live while the host's scan streams results; hover for the
 * values, click (or Enter) a cell to open that tensor's spectrum; a sortable table beside it; exports
 * of the map as SVG / PNG and of the numbers as CSV. The host computes; this file only draws.
 */
import type { HostToMap, MapTensorMetrics, MapToHost, OverviewModel, ScanStatus, Unsent } from '../../src/protocol/messages';
import { classifyTensor, KIND_LABEL, KIND_ORDER, type TensorKind } from '../shared/classify';
import { toCsv } from '../shared/csv';
import { svgDocument, svgToPngBase64 } from '../shared/dom';
import { fmt, metricDomain, metricValue, METRICS, type MapMetric } from '../shared/metrics';
import { mapLayout, sortMapRows, type MapSort } from './mapLayout';
import { modelMapView } from '../shared/views';

export interface MapUi {
  metric: MapMetric;
  sort: MapSort;
}

type Send = (m: Unsent<MapToHost>) => Promise<unknown>;
type H = <K extends keyof HTMLElementTagNameMap>(tag: K, props?: Partial<Record<string, string | number | boolean>>, ...children: Array<Node | string | null | undefined | false>) => HTMLElementTagNameMap[K];

export class ModelMap {
  private status: ScanStatus = { state: 'idle', done: 0, total: 0, failures: [] };
  private readonly metrics = new Map<string, MapTensorMetrics>();
  private model: OverviewModel | undefined;
  private root: HTMLElement | undefined;
  private scheduled = false;

  constructor(private readonly send: Send, private readonly h: H, private ui: MapUi, private readonly saveUi: (u: MapUi) => void) {}

  setModel(m: OverviewModel): void {
    this.model = m;
  }

  onMessage(m: HostToMap): void {
    if (m.type === 'mapState') {
      this.status = m.status;
      this.metrics.clear();
      for (const t of m.tensors) this.metrics.set(t.name, t);
    } else if (m.type === 'mapResult') {
      this.status = m.status;
      if (m.tensor) this.metrics.set(m.tensor.name, m.tensor);
    }
    this.schedule();
  }

  /** Redraws at most once per animation frame however fast results stream in. */
  private schedule(): void {
    if (this.scheduled || !this.root?.isConnected) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; if (this.root?.isConnected) this.draw(this.root); });
  }

  render(): HTMLElement {
    const root = this.h('section', { id: 'model-map-section', 'aria-labelledby': 'map-heading' });
    this.root = root;
    this.draw(root);
    return root;
  }

  private draw(root: HTMLElement): void {
    const h = this.h;
    const m = this.model;
    root.replaceChildren();
    root.append(h('h2', { id: 'map-heading' }, 'Model map'));
    if (!m) return;
    const mats = m.tensors.filter((t) => t.shape.length >= 2 && t.shape.every((d) => d > 1));
    if (mats.length === 0) {
      root.append(h('p', { class: 'status', id: 'map-empty' }, 'This checkpoint has no matrices (tensors of two or more dimensions) to analyse.'));
      return;
    }
    const s = this.status;
    const start = h('button', { type: 'button', id: 'scan-start', disabled: s.state === 'running' }, s.state === 'done' ? 'Scan again' : 'Scan spectra');
    start.addEventListener('click', () => void this.send({ type: 'startScan' }));
    const cancel = h('button', { type: 'button', class: 'secondary', id: 'scan-cancel', hidden: s.state !== 'running' }, 'Cancel');
    cancel.addEventListener('click', () => void this.send({ type: 'cancelScan' }));
    const pct = s.total > 0 ? Math.round((100 * s.done) / s.total) : 0;
    const progress = h('span', {
      id: 'scan-progress', role: 'progressbar', 'aria-label': 'Scan progress', 'aria-valuemin': 0, 'aria-valuemax': Math.max(1, s.total), 'aria-valuenow': s.done,
      'data-state': s.state,
    }, s.state === 'idle' ? `${mats.length} matrices; not scanned yet.` : s.state === 'running' ? `Scanning ${s.done} of ${s.total || '…'} (${pct}%)` :
      s.state === 'done' ? `Scanned ${s.done} matrices${s.seconds !== undefined ? ` in ${s.seconds.toFixed(1)} s` : ''}${s.failures.length ? `, ${s.failures.length} failed` : ''}.` :
        s.state === 'cancelled' ? `Cancelled after ${s.done} of ${s.total}.` : `Scan failed: ${s.message ?? ''}`);
    const metricSel = h('select', { id: 'map-metric', 'aria-label': 'Metric shown in the map' }, ...METRICS.map((x) => h('option', { value: x.id, title: x.help }, x.label))) as HTMLSelectElement;
    metricSel.value = this.ui.metric;
    metricSel.addEventListener('change', () => { this.ui = { ...this.ui, metric: metricSel.value as MapMetric }; this.saveUi(this.ui); this.draw(root); });
    const compress = h('button', { type: 'button', class: 'secondary', id: 'open-compress' }, 'Compress…');
    compress.addEventListener('click', () => void this.send({ type: 'openCompress' }));
    const ablate = h('button', { type: 'button', class: 'secondary', id: 'open-ablate' }, 'Ablate…');
    ablate.addEventListener('click', () => void this.send({ type: 'openAblate' }));
    root.append(h('div', { class: 'toolbar map-toolbar' }, start, cancel, progress));
    root.append(h('div', { class: 'toolbar map-toolbar' }, h('label', {}, 'Metric ', metricSel), compress, ablate));
    if (s.state === 'error') root.append(h('p', { class: 'error-message', role: 'alert' }, s.message ?? 'The scan failed.'));

    const layout = mapLayout(mats.map((t) => t.name));
    const metric = this.ui.metric;
    const values = [...this.metrics.values()].map((t) => metricValue(t, metric));
    const [lo, hi] = metricDomain(values);
    const label = METRICS.find((x) => x.id === metric)!.label;
    const tooltip = h('div', { class: 'map-tooltip', role: 'tooltip', id: 'map-tooltip', hidden: true });
    // The picture is the shared view (the report renders the same); this adds focus, clicks and the hover readout.
    const view = modelMapView(document, {
      id: 'model-map',
      title: `Model map: ${label}`,
      description: `Model map of ${label}: ${layout.rows.length} tensor kinds by ${layout.columns.length} depth columns; ${this.metrics.size} of ${mats.length} matrices scanned. Range ${fmt(lo)} to ${fmt(hi)}.`,
      rows: layout.rows.map((k) => KIND_LABEL[k]),
      columns: layout.columns.map((c) => (c === null ? '–' : String(c))),
      cells: layout.cells.map((c) => {
        const t = this.metrics.get(c.name);
        return { name: c.name, row: c.row, col: c.col, depth: c.depth, value: t ? metricValue(t, metric) : null, scanned: t !== undefined };
      }),
      domain: [lo, hi], metricLabel: label,
      // Scanned cells get the hover readout below instead of a native tooltip.
      cellTitle: (c) => (c.scanned ? null : `${c.name}: not scanned yet`),
    });
    const svg = view.svg;
    const W = Number(svg.getAttribute('width')), Hh = Number(svg.getAttribute('height'));
    const wrap = h('div', { class: 'map-wrap' }, svg);
    const cell = view.cellSize;
    for (const c of layout.cells) {
      const t = this.metrics.get(c.name);
      if (!t) continue;
      const v = metricValue(t, metric);
      const { x, y } = view.cellAt(c.row, c.col);
      const node = view.cells.get(c.name)!;
      node.setAttribute('tabindex', '0');
      node.setAttribute('role', 'button');
      node.setAttribute('aria-label', `${c.name}: ${label} ${fmt(v)}. Open its spectrum.`);
      const open = (add: boolean) => void this.send({ type: 'openSpectrum', name: c.name, add });
      node.addEventListener('click', (ev) => open(ev.shiftKey));
      node.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(ev.shiftKey); } });
      const show = () => {
        tooltip.hidden = false;
        tooltip.replaceChildren(h('strong', {}, c.name), h('br'), `[${t.matrix.join(' × ')}] ${t.mode}`, h('br'),
          `norm. entropy ${fmt(t.normalizedEntropy)} · eff. rank ${fmt(t.effectiveRank)} / ${t.rank}`, h('br'),
          `stable rank ${fmt(t.stableRank)} · alpha ${fmt(t.alpha)} · outliers ${t.outliers}`);
        tooltip.style.left = `${x + cell + 4}px`;
        tooltip.style.top = `${y + cell}px`;
      };
      node.addEventListener('mouseenter', show);
      node.addEventListener('focus', show);
      node.addEventListener('mouseleave', () => { tooltip.hidden = true; });
      node.addEventListener('blur', () => { tooltip.hidden = true; });
    }
    wrap.append(tooltip);

    const exportSvg = h('button', { type: 'button', class: 'secondary', id: 'map-export-svg' }, 'Export SVG');
    const exportPng = h('button', { type: 'button', class: 'secondary', id: 'map-export-png' }, 'Export PNG');
    const exportCsv = h('button', { type: 'button', class: 'secondary', id: 'map-export-csv' }, 'Export CSV');
    const base = m.fileName.replace(/\.[^.]+$/, '');
    exportSvg.addEventListener('click', () => void this.send({ type: 'saveExport', format: 'svg', suggestedName: `${base}.map.svg`, text: svgDocument(svg) }));
    exportPng.addEventListener('click', async () => {
      const base64 = await svgToPngBase64(svgDocument(svg), W, Hh);
      void this.send({ type: 'saveExport', format: 'png', suggestedName: `${base}.map.png`, base64 });
    });
    exportCsv.addEventListener('click', () => void this.send({ type: 'saveExport', format: 'csv', suggestedName: `${base}.spectra.csv`, text: this.csv() }));

    // The sortable table.
    const rows = sortMapRows([...this.metrics.values()], this.ui.sort);
    const cols: Array<{ key: MapSort['key']; label: string; num: boolean }> = [
      { key: 'name', label: 'Tensor', num: false }, { key: 'kind', label: 'Kind', num: false }, { key: 'depth', label: 'Block', num: true },
      ...METRICS.map((x) => ({ key: x.id as MapSort['key'], label: x.label, num: true })),
    ];
    const head = h('tr');
    for (const c of cols) {
      const sorted = this.ui.sort.key === c.key;
      const b = h('button', { type: 'button', class: 'sort' }, c.label, sorted ? (this.ui.sort.dir === 'asc' ? ' ▲' : ' ▼') : '');
      b.addEventListener('click', () => {
        this.ui = { ...this.ui, sort: { key: c.key, dir: sorted && this.ui.sort.dir === 'asc' ? 'desc' : 'asc' } };
        this.saveUi(this.ui);
        this.draw(root);
      });
      head.append(h('th', { scope: 'col', class: c.num ? 'num' : undefined, 'aria-sort': sorted ? (this.ui.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none' }, b));
    }
    const body = h('tbody');
    for (const t of rows) {
      const k = classifyTensor(t.name);
      const tr = h('tr', { class: 'map-row', tabindex: 0, 'data-name': t.name },
        h('td', { class: 'name' }, t.name), h('td', {}, KIND_LABEL[k.kind]), h('td', { class: 'num' }, k.depth === null ? '–' : String(k.depth)),
        ...METRICS.map((x) => h('td', { class: 'num' }, fmt(metricValue(t, x.id)))));
      const open = () => void this.send({ type: 'openSpectrum', name: t.name });
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
      body.append(tr);
    }
    const table = h('div', { class: 'map-table-wrap' }, h('table', { class: 'data', id: 'map-table' }, h('thead', {}, head), body));
    root.append(h('div', { class: 'map-grid' }, h('div', {}, wrap, h('div', { class: 'toolbar' }, exportSvg, exportPng, exportCsv),
      h('p', { class: 'muted' }, 'Click a cell (Shift+click: add to the comparison) or focus it and press Enter to open its spectrum.')), table));
  }

  /** The numbers of the map as CSV (every scanned tensor, every metric). */
  csv(): string {
    const rows = [...this.metrics.values()].map((t) => {
      const k = classifyTensor(t.name);
      return [t.name, k.kind, k.depth, t.matrix[0], t.matrix[1], t.mode, t.normalizedEntropy, t.effectiveRank, t.rank, t.stableRank, t.alpha, t.outliers, t.spectralNorm, t.frobeniusNorm];
    });
    return toCsv(['tensor', 'kind', 'block', 'rows', 'cols', 'mode', 'normalized_entropy', 'effective_rank', 'full_rank', 'stable_rank', 'alpha', 'outliers', 'spectral_norm', 'frobenius_norm'], rows);
  }
}

export type { TensorKind };
export { KIND_ORDER };
