/**
 * The checkpoint overview webview: format, parameters, dtype mix, size, metadata, and a sortable,
 * filterable table of groups and tensors — all from the header the host read. Talks to the host only
 * through the typed messages of src/protocol/messages.ts; keeps its UI state (sort, filter, scroll,
 * expanded metadata) with getState/setState so it survives being hidden and shown again.
 */
import type {
  HostToOverview, OverviewMetadataEntry, OverviewModel, OverviewState, OverviewTensor, OverviewToHost, Unsent,
} from '../../src/protocol/messages';
import css from './style.css';
import { formatBytes, formatCompact, formatInt, formatPercent, formatShape } from './format';
import { DEFAULT_SORT, filterTensors, nextSort, sortTensors, summarizeGroups, type SortKey, type SortSpec } from './table';
import { ModelMap, type MapUi } from './map';
import { h } from '../shared/dom';

interface UiState {
  sort: SortSpec;
  filter: string;
  group: string;
  /** Metadata keys whose long values the user expanded. */
  openMeta: string[];
  /** Render every row instead of the first ROW_LIMIT. */
  showAll: boolean;
  scrollY: number;
  highlighted?: string;
  /** Which tab shows: the header overview or the model map. */
  tab?: 'overview' | 'map';
  map?: MapUi;
}

/** Rows rendered before a "Show all" button: the DOM stays light for MoE models with 10,000+ tensors. */
const ROW_LIMIT = 1000;

const api = acquireVsCodeApi<UiState>();

// Count Content-Security-Policy violations on the page (the e2e test reads this; it must stay 0).
let cspViolations = 0;
document.addEventListener('securitypolicyviolation', (e) => {
  cspViolations++;
  document.documentElement.dataset.cspViolations = String(cspViolations);
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
});
document.documentElement.dataset.cspViolations = '0';
const nonce = (document.currentScript as HTMLScriptElement | null)?.nonce ?? '';
const styleEl = document.createElement('style');
styleEl.nonce = nonce;
styleEl.textContent = css;
document.head.appendChild(styleEl);

let ui: UiState = { sort: DEFAULT_SORT, filter: '', group: '', openMeta: [], showAll: false, scrollY: 0, ...(api.getState() ?? {}) };
let state: OverviewState = { kind: 'loading' };
const app = document.getElementById('app')!;

function saveUi(patch: Partial<UiState> = {}): void {
  ui = { ...ui, ...patch };
  api.setState(ui);
}

// --- messaging (request ids + inReplyTo, as in vscode-hexeditor) ---------------------------------
let nextMessageId = 1;
const pending = new Map<number, (reply: HostToOverview) => void>();

function send(msg: Unsent<OverviewToHost>): Promise<HostToOverview> {
  const messageId = nextMessageId++;
  return new Promise((resolve) => {
    pending.set(messageId, resolve);
    api.postMessage({ ...msg, messageId } as OverviewToHost);
  });
}

const modelMap = new ModelMap((m) => send(m), h, ui.map ?? { metric: 'normalizedEntropy', sort: { key: 'depth', dir: 'asc' } }, (map) => saveUi({ map }));

window.addEventListener('message', (event: MessageEvent<HostToOverview>) => {
  const m = event.data;
  if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
  if (m.inReplyTo !== undefined) {
    const resolve = pending.get(m.inReplyTo);
    pending.delete(m.inReplyTo);
    resolve?.(m);
  }
  switch (m.type) {
    case 'state':
      state = m.state;
      render();
      break;
    case 'highlightTensor':
      highlight(m.name);
      break;
    case 'ack':
      break;
    case 'mapState':
    case 'mapResult':
      modelMap.onMessage(m);
      break;
    case 'showMap':
      saveUi({ tab: 'map' });
      render();
      break;
  }
});

window.addEventListener('scroll', () => {
  ui.scrollY = window.scrollY;
  api.setState(ui);
}, { passive: true });

// --- rendering -----------------------------------------------------------------------------------
function render(): void {
  app.replaceChildren();
  app.setAttribute('aria-busy', String(state.kind === 'loading'));
  if (state.kind === 'loading') {
    app.append(h('p', { class: 'status' }, 'Reading the header…'));
    return;
  }
  if (state.kind === 'error') {
    renderError(state);
    return;
  }
  renderModel(state.model);
  requestAnimationFrame(() => {
    if (ui.highlighted) highlight(ui.highlighted, false);
    else window.scrollTo(0, ui.scrollY);
  });
}

function renderError(s: Extract<OverviewState, { kind: 'error' }>): void {
  const showLog = h('button', { type: 'button', id: 'show-log' }, 'Show Log');
  showLog.addEventListener('click', () => void send({ type: 'showLog' }));
  const reload = h('button', { type: 'button', class: 'secondary', id: 'reload' }, 'Reload');
  reload.addEventListener('click', () => void send({ type: 'reload' }));
  app.append(h('section', { class: 'error-view', role: 'alert' },
    h('h1', {}, `Cannot open ${s.fileName}`),
    h('p', { class: 'error-message', id: 'error-message' }, s.message),
    h('div', { class: 'actions' }, showLog, reload),
    h('p', { class: 'muted' }, `${s.errorName} while reading the header of ${s.path}. The details are in the Tensor Scalpel log.`),
  ));
}

function renderModel(m: OverviewModel): void {
  const reload = h('button', { type: 'button', class: 'secondary', title: 'Read the header again' }, 'Reload');
  reload.addEventListener('click', () => void send({ type: 'reload' }));
  modelMap.setModel(m);
  const tab = ui.tab ?? 'overview';
  const tabButton = (id: 'overview' | 'map', label: string) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${id}`, class: `tab${tab === id ? ' active' : ''}`, 'aria-selected': String(tab === id), 'aria-controls': 'tab-panel', tabindex: tab === id ? 0 : -1 }, label);
    b.addEventListener('click', () => { saveUi({ tab: id }); render(); document.getElementById(`tab-${id}`)?.focus(); });
    b.addEventListener('keydown', (ev) => {
      if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
      const next = id === 'overview' ? 'map' : 'overview';
      saveUi({ tab: next }); render(); document.getElementById(`tab-${next}`)?.focus();
    });
    return b;
  };
  const header = h('header', { class: 'title' },
    h('div', {},
      h('h1', { id: 'file-name' }, m.fileName),
      h('p', { class: 'muted path' }, m.path)),
    reload);
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Views of this checkpoint' }, tabButton('overview', 'Overview'), tabButton('map', 'Model map'));
  if (tab === 'map') {
    app.append(header, tabs, h('div', { id: 'tab-panel', role: 'tabpanel', 'aria-labelledby': 'tab-map' }, modelMap.render()));
    return;
  }
  app.append(
    header,
    tabs,
    renderFacts(m),
    renderDtypeMix(m),
    renderGroups(m),
    renderTensors(m),
    renderMetadata(m.metadata),
  );
}

function fact(label: string, value: string, id: string, detail?: string): HTMLElement {
  return h('div', { class: 'fact' },
    h('dt', {}, label),
    h('dd', { id }, value, detail ? h('span', { class: 'muted detail' }, ` ${detail}`) : null));
}

function renderFacts(m: OverviewModel): HTMLElement {
  const files = m.files.length > 1
    ? h('details', { class: 'files' },
      h('summary', {}, `${m.files.length} files`),
      h('ul', {}, ...m.files.map((f) => h('li', {}, f))))
    : null;
  return h('section', { 'aria-label': 'Summary' },
    h('dl', { class: 'facts' },
      fact('Format', m.formatDetail || m.format, 'format'),
      fact('Parameters', formatInt(m.totalParams), 'total-params', `(${formatCompact(m.totalParams)})`),
      fact('Tensors', formatInt(m.tensors.length), 'tensor-count'),
      fact('Size on disk', formatBytes(m.sizeOnDisk), 'size-on-disk', `(${formatInt(m.sizeOnDisk)} bytes)`),
      fact('Files', String(m.files.length), 'file-count')),
    files);
}

/** Colours for the dtype bar come from the theme's chart palette (readable in every theme). */
const CHART_VARS = ['--vscode-charts-blue', '--vscode-charts-orange', '--vscode-charts-green', '--vscode-charts-purple', '--vscode-charts-yellow', '--vscode-charts-red'];

function renderDtypeMix(m: OverviewModel): HTMLElement {
  const bar = h('div', { class: 'dtype-bar', role: 'img', 'aria-label': m.dtypeMix.map((d) => `${d.dtype} ${formatPercent(d.params, m.totalParams)}`).join(', ') });
  const legend = h('ul', { class: 'dtype-legend', id: 'dtype-mix' });
  m.dtypeMix.forEach((d, i) => {
    const colour = `var(${CHART_VARS[i % CHART_VARS.length]})`;
    const seg = h('span', { class: 'seg', title: `${d.dtype}: ${formatInt(d.params)} parameters` });
    seg.style.flexGrow = String(d.params);
    seg.style.backgroundColor = colour;
    bar.append(seg);
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = colour;
    legend.append(h('li', {}, swatch, h('strong', {}, d.dtype), ` ${formatPercent(d.params, m.totalParams)} · ${formatInt(d.params)} params`));
  });
  return h('section', { 'aria-labelledby': 'dtype-heading' },
    h('h2', { id: 'dtype-heading' }, 'Dtype mix'),
    m.totalParams > 0 ? bar : null,
    legend);
}

function renderGroups(m: OverviewModel): HTMLElement {
  const groups = summarizeGroups(m.tensors);
  const body = h('tbody', {});
  for (const g of groups) {
    const tr = h('tr', { class: `group-row${ui.group === g.label ? ' selected' : ''}`, tabindex: 0, title: `Show only ${g.label} in the tensor table` },
      h('td', {}, g.label),
      h('td', { class: 'num' }, formatInt(g.tensors)),
      h('td', { class: 'num' }, formatInt(g.params)),
      h('td', { class: 'num' }, formatPercent(g.params, m.totalParams)),
      h('td', { class: 'num' }, formatBytes(g.bytes)));
    const pick = () => {
      saveUi({ group: ui.group === g.label ? '' : g.label });
      render();
    };
    tr.addEventListener('click', pick);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    body.append(tr);
  }
  return h('section', { 'aria-labelledby': 'groups-heading' },
    h('h2', { id: 'groups-heading' }, 'Groups'),
    h('table', { class: 'data groups', id: 'groups-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Group'),
        h('th', { scope: 'col', class: 'num' }, 'Tensors'),
        h('th', { scope: 'col', class: 'num' }, 'Parameters'),
        h('th', { scope: 'col', class: 'num' }, 'Share'),
        h('th', { scope: 'col', class: 'num' }, 'Stored'))),
      body));
}

interface Column { key: SortKey; label: string; num?: boolean }
const COLUMNS: Column[] = [
  { key: 'group', label: 'Group' },
  { key: 'name', label: 'Name' },
  { key: 'shape', label: 'Shape' },
  { key: 'dtype', label: 'Dtype' },
  { key: 'params', label: 'Parameters', num: true },
  { key: 'bytes', label: 'Stored', num: true },
  { key: 'offset', label: 'Offset', num: true },
];
/** Sharded checkpoints and external data get a File column before the offset. */
const FILE_COLUMN: Column = { key: 'file', label: 'File' };
function columnsFor(m: OverviewModel): Column[] {
  return m.files.length > 1 ? [...COLUMNS.slice(0, -1), FILE_COLUMN, COLUMNS[COLUMNS.length - 1]] : COLUMNS;
}

function renderTensors(m: OverviewModel): HTMLElement {
  const section = h('section', { 'aria-labelledby': 'tensors-heading' });
  const input = h('input', {
    type: 'search', id: 'tensor-filter', placeholder: 'Filter by name (all words must match)', 'aria-label': 'Filter tensors by name',
    value: ui.filter, spellcheck: 'false',
  });
  const groupSelect = h('select', { id: 'group-filter', 'aria-label': 'Show one group' },
    h('option', { value: '' }, 'All groups'),
    ...summarizeGroups(m.tensors).map((g) => h('option', { value: g.label, selected: ui.group === g.label }, g.label)));
  const count = h('span', { class: 'muted', id: 'tensor-count-shown', 'aria-live': 'polite' });
  const table = h('table', { class: 'data tensors', id: 'tensor-table' });
  const tbody = h('tbody', {});
  const more = h('div', {});

  const columns = columnsFor(m);
  const multiFile = columns.includes(FILE_COLUMN);
  const headRow = h('tr', {});
  for (const c of columns) {
    const sorted = ui.sort.key === c.key;
    const btn = h('button', { type: 'button', class: 'sort', title: `Sort by ${c.label.toLowerCase()}` }, c.label,
      h('span', { class: 'arrow', 'aria-hidden': 'true' }, sorted ? (ui.sort.dir === 'asc' ? ' ▲' : ' ▼') : ''));
    btn.addEventListener('click', () => {
      saveUi({ sort: nextSort(ui.sort, c.key) });
      render();
    });
    headRow.append(h('th', { scope: 'col', class: c.num ? 'num' : undefined, 'aria-sort': sorted ? (ui.sort.dir === 'asc' ? 'ascending' : 'descending') : 'none' }, btn));
  }
  table.append(h('thead', {}, headRow), tbody);

  const fill = () => {
    const rows = sortTensors(filterTensors(m.tensors, ui.filter, ui.group), ui.sort);
    const shown = ui.showAll ? rows : rows.slice(0, ROW_LIMIT);
    tbody.replaceChildren(...shown.map((t) => tensorRow(t, multiFile)));
    count.textContent = rows.length === m.tensors.length
      ? `${formatInt(rows.length)} tensors`
      : `${formatInt(rows.length)} of ${formatInt(m.tensors.length)} tensors`;
    more.replaceChildren();
    if (shown.length < rows.length) {
      const btn = h('button', { type: 'button', class: 'secondary' }, `Show all ${formatInt(rows.length)} rows`);
      btn.addEventListener('click', () => { saveUi({ showAll: true }); fill(); });
      more.append(btn);
    }
    if (rows.length === 0) tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'No tensor matches the filter.')));
  };
  input.addEventListener('input', () => { saveUi({ filter: input.value }); fill(); });
  groupSelect.addEventListener('change', () => { saveUi({ group: groupSelect.value }); render(); });
  fill();

  section.append(
    h('h2', { id: 'tensors-heading' }, 'Tensors'),
    h('div', { class: 'toolbar' }, input, groupSelect, count),
    h('div', { class: 'table-wrap' }, table),
    more);
  return section;
}

function tensorRow(t: OverviewTensor, withFile: boolean): HTMLTableRowElement {
  const tr = h('tr', {
    class: `tensor-row${ui.highlighted === t.name ? ' highlight' : ''}`, tabindex: 0, 'data-name': t.name,
    title: `${t.name}\n${formatShape(t.shape)} ${t.dtype}, ${formatInt(t.params)} parameters\nbytes ${formatInt(t.byteOffset)}–${formatInt(t.byteOffset + t.byteLength)} of ${t.file}\nClick to select it in the Models view`,
  },
  h('td', {}, t.group),
  h('td', { class: 'name' }, t.name),
  h('td', { class: 'mono' }, formatShape(t.shape)),
  h('td', {}, t.dtype),
  h('td', { class: 'num' }, formatInt(t.params)),
  h('td', { class: 'num' }, formatBytes(t.byteLength)),
  withFile ? h('td', { class: 'mono file' }, t.file) : null,
  h('td', { class: 'num mono' }, formatInt(t.byteOffset)));
  const pick = () => {
    markHighlighted(t.name);
    void send({ type: 'revealTensor', name: t.name });
  };
  tr.addEventListener('click', pick);
  tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); pick(); } });
  return tr;
}

function markHighlighted(name: string): HTMLElement | undefined {
  saveUi({ highlighted: name });
  let found: HTMLElement | undefined;
  for (const row of document.querySelectorAll<HTMLElement>('tr.tensor-row')) {
    const on = row.dataset.name === name;
    row.classList.toggle('highlight', on);
    if (on) found = row;
  }
  return found;
}

/** Scrolls to a tensor row, clearing a filter that hides it. */
function highlight(name: string, clearFilter = true): void {
  if (state.kind !== 'loaded') {
    saveUi({ highlighted: name });
    return;
  }
  let row = markHighlighted(name);
  if (!row && clearFilter && state.model.tensors.some((t) => t.name === name)) {
    saveUi({ filter: '', group: '', showAll: true });
    render();
    row = markHighlighted(name);
  }
  row?.scrollIntoView({ block: 'center' });
  row?.focus({ preventScroll: true });
}

function renderMetadata(entries: OverviewMetadataEntry[]): HTMLElement {
  const section = h('section', { 'aria-labelledby': 'metadata-heading' }, h('h2', { id: 'metadata-heading' }, `Metadata (${entries.length})`));
  if (entries.length === 0) {
    section.append(h('p', { class: 'muted' }, 'The file has no metadata.'));
    return section;
  }
  const body = h('tbody', {});
  for (const e of entries) {
    let value: HTMLElement;
    if (e.long) {
      const details = h('details', { open: ui.openMeta.includes(e.key) },
        h('summary', {}, e.arrayLength !== undefined ? `${formatInt(e.arrayLength)} items: ${e.preview}` : e.preview),
        h('pre', {}, e.text));
      details.addEventListener('toggle', () => {
        const open = new Set(ui.openMeta);
        if (details.open) open.add(e.key); else open.delete(e.key);
        saveUi({ openMeta: [...open] });
      });
      value = details;
    } else value = h('span', { class: 'value' }, e.text);
    body.append(h('tr', {}, h('th', { scope: 'row', class: 'key' }, e.key), h('td', {}, value)));
  }
  section.append(h('table', { class: 'data metadata', id: 'metadata-table' }, body));
  return section;
}

// The handshake: the host answers `ready` with the current state (inReplyTo = this id).
render();
void send({ type: 'ready' });
