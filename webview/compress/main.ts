/**
 * The bond-dimension editor: the compressible 2-D tensors with their precomputed chi tables, a global
 * chi / error / parameter budget, per-row chi overrides and site factorisations, the bond-cut
 * entanglement profile of the selected tensor, live totals, and "Write Compressed Model…".
 * Only table look-ups and sums happen here (budget.ts); the host computes the tables.
 */
import type { CompressModel, CompressTensor, CompressToHost, HostToCompress } from '../../src/protocol/messages';
import css from '../shared/base.css';
import { h, installStyle } from '../shared/dom';
import { createMessenger } from '../shared/messaging';
import { fmt } from '../shared/metrics';
import { bondProfileView } from '../shared/views';
import { allocate, maxChi, modelTotals, totals, validateFactors, type BudgetMode, type ChiTable } from './budget';

interface UiState {
  mode: 'chi' | 'error' | 'params';
  chi: number;
  error: number;
  fraction: number;
  overrides: Array<[string, number]>;
  /** Tensors the user switched (from their default). */
  toggled: string[];
  selected?: string;
  factorized: boolean;
}

const api = acquireVsCodeApi<UiState>();
installStyle(css);
let ui: UiState = { mode: 'chi', chi: 16, error: 0.3, fraction: 0.5, overrides: [], toggled: [], factorized: true, ...(api.getState() ?? {}) };
let model: CompressModel | undefined;
let loadError: string | undefined;
let writeStatus: Extract<HostToCompress, { type: 'writeStatus' }> | undefined;
const app = document.getElementById('app')!;

const msg = createMessenger<CompressToHost, HostToCompress, UiState>(api, (m) => {
  switch (m.type) {
    case 'compressModel':
      model = m.model;
      if (m.focus && m.focus !== ui.selected) { ui.selected = m.focus; scrollToSelected = true; }
      render();
      break;
    case 'compressTensor': {
      if (!model) return;
      const i = model.tensors.findIndex((t) => t.name === m.tensor.name);
      if (i >= 0) model.tensors[i] = m.tensor; else model.tensors.push(m.tensor);
      if (m.progress) model.progress = m.progress;
      render();
      break;
    }
    case 'compressError':
      loadError = m.message;
      render();
      break;
    case 'writeStatus':
      writeStatus = m;
      renderWriteStatus();
      break;
  }
});

function save(): void {
  api.setState(ui);
}

function isOn(t: CompressTensor): boolean {
  return t.defaultOn !== ui.toggled.includes(t.name);
}

function tables(): ChiTable[] {
  return (model?.tensors ?? []).map((t) => ({ name: t.name, dense: t.shape[0] * t.shape[1], params: t.params, errors: t.errors }));
}

function budgetMode(): BudgetMode {
  return ui.mode === 'chi' ? { kind: 'chi', chi: ui.chi } : ui.mode === 'error' ? { kind: 'error', error: ui.error } : { kind: 'params', fraction: ui.fraction };
}

let refresh: () => void = () => undefined;
/** Set when the host focused a tensor ("Compress…" on a tree row): scroll its row into view once. */
let scrollToSelected = false;
let renderWriteStatus: () => void = () => undefined;

function render(): void {
  app.replaceChildren();
  if (loadError) {
    app.append(h('h1', {}, 'Bond dimensions'), h('p', { class: 'notice error', role: 'alert', id: 'compress-error' }, loadError));
    return;
  }
  if (!model) {
    app.append(h('h1', {}, 'Bond dimensions'), h('p', { class: 'status' }, 'Reading the model…'));
    return;
  }
  const m = model;
  const list = m.tensors;
  const tbls = tables();
  const globalMax = Math.max(1, ...tbls.map(maxChi));
  app.append(h('header', {}, h('h1', { id: 'compress-title' }, `Compress ${m.fileName}`),
    h('p', { class: 'muted' }, 'MPO (tensor-train) of every selected matrix with 2 sites by default. Errors are the TT-SVD estimate sqrt(sum of discarded weights) / ||W|| from the exact bond spectra.')));
  if (m.progress) app.append(h('p', { class: 'status', id: 'compress-progress', role: 'status' }, `Computing bond spectra: ${m.progress.done} of ${m.progress.total} tensors…`));
  if (list.length === 0) {
    if (!m.progress) app.append(h('p', { class: 'status', id: 'compress-empty' }, 'This model has no 2-D weight matrices to compress.'));
    return;
  }

  // Budget controls.
  const modeSel = h('select', { id: 'budget-mode', 'aria-label': 'Budget kind' },
    h('option', { value: 'chi' }, 'Global χ'), h('option', { value: 'error' }, 'Error budget'), h('option', { value: 'params' }, 'Parameter budget')) as HTMLSelectElement;
  modeSel.value = ui.mode;
  const chiIn = h('input', { type: 'range', id: 'global-chi', min: 1, max: globalMax, step: 1, value: Math.min(ui.chi, globalMax), 'aria-label': 'Global bond dimension χ' }) as HTMLInputElement;
  const chiOut = h('output', { id: 'global-chi-value', for: 'global-chi' });
  const errIn = h('input', { type: 'number', id: 'error-budget', min: 0, max: 1, step: 0.01, value: ui.error, 'aria-label': 'Error budget: largest relative error per tensor' }) as HTMLInputElement;
  const fracIn = h('input', { type: 'range', id: 'param-budget', min: 1, max: 100, step: 1, value: Math.round(ui.fraction * 100), 'aria-label': 'Parameter budget: percent of the selected tensors’ parameters kept' }) as HTMLInputElement;
  const fracOut = h('output', { id: 'param-budget-value', for: 'param-budget' });
  const chiBox = h('label', {}, 'χ', chiIn, chiOut);
  const errBox = h('label', {}, 'max error', errIn);
  const fracBox = h('label', {}, 'keep', fracIn, fracOut);
  const showControls = () => {
    chiBox.hidden = ui.mode !== 'chi';
    errBox.hidden = ui.mode !== 'error';
    fracBox.hidden = ui.mode !== 'params';
  };
  modeSel.addEventListener('change', () => { ui.mode = modeSel.value as UiState['mode']; showControls(); save(); refresh(); });
  chiIn.addEventListener('input', () => { ui.chi = Number(chiIn.value); save(); refresh(); });
  errIn.addEventListener('input', () => { const v = Number(errIn.value); if (Number.isFinite(v) && v >= 0) { ui.error = v; save(); refresh(); } });
  fracIn.addEventListener('input', () => { ui.fraction = Number(fracIn.value) / 100; save(); refresh(); });
  showControls();
  app.append(h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Budget' }, h('label', {}, 'Budget', modeSel), chiBox, errBox, fracBox));

  // Totals.
  const dl = h('dl', { class: 'readouts', 'aria-live': 'polite', id: 'totals' });
  const dd = (label: string, id: string) => { const d = h('dd', { id }); dl.append(h('div', {}, h('dt', {}, label), d)); return d; };
  const tot = {
    before: dd('Selected params before', 'total-before'), after: dd('Selected params after', 'total-after'), ratio: dd('Compression (selected)', 'total-ratio'),
    model: dd('Model params after', 'model-after'), size: dd('Estimated file size', 'file-size'), maxErr: dd('Largest tensor error', 'max-error'),
  };
  app.append(dl);

  // Table.
  const tbody = h('tbody');
  const rows = new Map<string, { chi: HTMLInputElement; params: HTMLElement; error: HTMLElement; tr: HTMLTableRowElement }>();
  for (const t of list) {
    const on = h('input', { type: 'checkbox', 'aria-label': `Compress ${t.name}` }) as HTMLInputElement;
    on.checked = isOn(t);
    on.addEventListener('change', () => {
      ui.toggled = ui.toggled.includes(t.name) ? ui.toggled.filter((n) => n !== t.name) : [...ui.toggled, t.name];
      save(); refresh();
    });
    const override = new Map(ui.overrides).get(t.name);
    const chi = h('input', { type: 'number', class: 'chi-input', min: 1, max: maxChi({ name: t.name, dense: 0, params: t.params, errors: t.errors }), step: 1, placeholder: 'global', value: override ?? '', 'aria-label': `χ override for ${t.name} (empty: follow the budget)` }) as HTMLInputElement;
    chi.addEventListener('input', () => {
      const v = Number(chi.value);
      const rest = ui.overrides.filter(([n]) => n !== t.name);
      ui.overrides = chi.value.trim() !== '' && Number.isInteger(v) && v >= 1 ? [...rest, [t.name, v]] : rest;
      save(); refresh();
    });
    const outF = h('input', { type: 'text', size: 7, value: t.outFactors.join('×'), 'aria-label': `Out factors of ${t.name}` }) as HTMLInputElement;
    const inF = h('input', { type: 'text', size: 7, value: t.inFactors.join('×'), 'aria-label': `In factors of ${t.name}` }) as HTMLInputElement;
    const apply = h('button', { type: 'button', class: 'secondary', 'aria-label': `Apply the site factorisation of ${t.name}` }, 'Apply');
    const why = h('span', { class: 'error', role: 'alert' });
    const validate = () => {
      const v = validateFactors(t.shape, outF.value, inF.value);
      outF.classList.toggle('invalid', !v.ok); inF.classList.toggle('invalid', !v.ok);
      why.textContent = v.ok ? '' : v.message;
      (apply as HTMLButtonElement).disabled = !v.ok;
      return v;
    };
    outF.addEventListener('input', validate); inF.addEventListener('input', validate);
    apply.addEventListener('click', async () => {
      const v = validate();
      if (!v.ok) return;
      why.textContent = 'computing…';
      const r = await msg.send({ type: 'refactor', name: t.name, outFactors: v.outFactors, inFactors: v.inFactors });
      if (r.type === 'ack' && !r.ok) why.textContent = r.error ?? 'rejected';
    });
    const params = h('td', { class: 'num' });
    const error = h('td', { class: 'num' });
    const nameCell = h('td', { class: 'mono' }, h('button', { type: 'button', class: 'icon-button select-tensor', 'aria-label': `Show the entanglement profile of ${t.name}` }, t.name));
    nameCell.firstElementChild!.addEventListener('click', () => { ui.selected = t.name; save(); render(); });
    const tr = h('tr', { class: `tensor-row${ui.selected === t.name ? ' selected' : ''}`, 'data-name': t.name },
      h('td', {}, on), nameCell, h('td', {}, `${t.shape[0]}×${t.shape[1]}`), h('td', {}, outF, ' / ', inF, ' ', apply, ' ', why), h('td', {}, chi), params, error);
    tbody.append(tr);
    rows.set(t.name, { chi, params, error, tr });
  }
  const table = h('table', { class: 'data', id: 'compress-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'On'), h('th', {}, 'Tensor'), h('th', {}, 'Shape'), h('th', {}, 'Sites (out / in)'), h('th', {}, 'χ'), h('th', { class: 'num' }, 'Params'), h('th', { class: 'num' }, 'Error'))),
    tbody);

  // Entropy profile of the selected tensor.
  const sel = list.find((t) => t.name === ui.selected) ?? list[0];
  const prof = h('section', { 'aria-labelledby': 'profile-heading' }, h('h2', { id: 'profile-heading' }, `Bond entanglement: ${sel.name}`));
  drawProfile(prof, sel);

  app.append(h('div', { class: 'scroll table-scroll' }, table), prof);

  // Write.
  const fz = h('input', { type: 'checkbox', id: 'factorized' }) as HTMLInputElement;
  fz.checked = ui.factorized;
  fz.addEventListener('change', () => { ui.factorized = fz.checked; save(); refresh(); });
  const write = h('button', { type: 'button', id: 'write' }, 'Write Compressed Model…');
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'cancel-write', hidden: true }, 'Cancel');
  const status = h('p', { id: 'write-status', role: 'status', 'aria-live': 'polite' });
  const openBtn = h('button', { type: 'button', id: 'open-result', hidden: true }, 'Open');
  write.addEventListener('click', () => {
    const chis = allocate(tables(), budgetMode(), new Map(ui.overrides), undefined, new Set(list.filter(isOn).map((t) => t.name)));
    const choices = list.map((t, i) => ({ name: t.name, chi: chis[i], outFactors: t.outFactors, inFactors: t.inFactors })).filter((_, i) => isOn(list[i]));
    void msg.send({ type: 'write', choices, factorized: ui.factorized });
  });
  cancel.addEventListener('click', () => void msg.send({ type: 'cancelWrite' }));
  openBtn.addEventListener('click', () => { if (writeStatus?.output) void msg.send({ type: 'openResult', path: writeStatus.output }); });
  app.append(h('div', { class: 'toolbar' }, h('label', { for: 'factorized' }, fz, 'Store factors (smaller file; readers must understand the factor layout). Off: dense reconstructed matrices.'), write, cancel), status, openBtn);
  renderWriteStatus = () => {
    const s = writeStatus;
    status.textContent = s?.message ?? '';
    status.className = s?.state === 'error' ? 'error' : '';
    (write as HTMLButtonElement).disabled = s?.state === 'running';
    cancel.hidden = s?.state !== 'running';
    openBtn.hidden = !(s?.state === 'done' && s.output);
  };
  renderWriteStatus();

  refresh = () => {
    const tb = tables();
    const selected = new Set(list.filter(isOn).map((t) => t.name));
    const chis = allocate(tb, budgetMode(), new Map(ui.overrides), undefined, selected);
    const t = totals(tb, chis, selected);
    const mt = modelTotals(m.totalParams, m.sizeOnDisk, t, ui.factorized);
    chiOut.textContent = String(ui.chi);
    fracOut.textContent = `${Math.round(ui.fraction * 100)}%`;
    tot.before.textContent = t.before.toLocaleString('en-US');
    tot.after.textContent = t.after.toLocaleString('en-US');
    tot.ratio.textContent = `${fmt(t.ratio, 4)}×`;
    tot.model.textContent = `${mt.paramsAfter.toLocaleString('en-US')} of ${m.totalParams.toLocaleString('en-US')}`;
    tot.size.textContent = formatBytes(mt.fileBytes);
    tot.maxErr.textContent = fmt(t.maxError, 4);
    tb.forEach((x, i) => {
      const r = rows.get(x.name)!;
      const on = selected.has(x.name);
      r.params.textContent = on ? `${x.params[chis[i] - 1].toLocaleString('en-US')}` : `${x.dense.toLocaleString('en-US')} (dense)`;
      r.error.textContent = on ? fmt(x.errors[chis[i] - 1], 3) : '0';
      r.chi.placeholder = String(chis[i]);
      r.tr.dataset.chi = String(chis[i]);
    });
  };
  refresh();
  if (scrollToSelected && ui.selected && rows.has(ui.selected)) {
    scrollToSelected = false;
    const r = rows.get(ui.selected)!;
    requestAnimationFrame(() => { r.tr.scrollIntoView({ block: 'nearest' }); r.chi.focus({ preventScroll: true }); });
  }
}

/** The bond profile of the selected tensor: the shared view (the report draws its example tensor with it). */
function drawProfile(parent: HTMLElement, t: CompressTensor): void {
  const view = bondProfileView(document, {
    id: 'entropy-chart',
    title: `Bond-cut entanglement entropy of ${t.name}`,
    description: `Bond-cut entanglement entropy of ${t.name}: ${t.bondEntropies.map((e, i) => `bond ${i + 1} ${fmt(e, 3)} of at most ${fmt(t.maxBondEntropies[i], 3)} nats`).join('; ')}`,
    bonds: t.bondEntropies.map((e, i) => ({ entropy: e, max: t.maxBondEntropies[i] })),
    width: 360, height: 200,
  });
  parent.append(view.svg);
  parent.append(h('p', { class: 'muted' }, `Sites ${t.outFactors.join('×')} / ${t.inFactors.join('×')}. Filled: entropy S; dashed: the maximum ln min(L, R).`));
}

function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${u[i]}`;
}

render();
api.postMessage({ type: 'ready', messageId: 0 });
