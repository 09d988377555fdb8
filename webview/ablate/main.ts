/**
 * The ablation picker: candidate directions (top singular directions of a tensor, vectors from files,
 * directions computed elsewhere in the extension), the residual-stream writers they are projected out
 * of (pre-selected from the architecture; editable), a preview of the fraction of each writer's norm
 * removed (||r r^T W||_F / ||W||_F, computed by the host), and "Write Edited Model…".
 */
import type { AblateToHost, AblationCandidate, AblationModel, HostToAblate } from '../../src/protocol/messages';
import css from '../shared/base.css';
import { h, installStyle } from '../shared/dom';
import { createMessenger } from '../shared/messaging';
import { fmt } from '../shared/metrics';

interface UiState {
  tensor?: string;
  count: number;
  chosen: string[];
  /** Writers the user switched from their pre-selection. */
  toggled: string[];
}
const api = acquireVsCodeApi<UiState>();
installStyle(css);
let ui: UiState = { count: 4, chosen: [], toggled: [], ...(api.getState() ?? {}) };
let model: AblationModel | undefined;
let candidates: AblationCandidate[] = [];
let preview: Extract<HostToAblate, { type: 'preview' }> | undefined;
let loadError: string | undefined;
let writeStatus: Extract<HostToAblate, { type: 'writeStatus' }> | undefined;
let busy = '';
const app = document.getElementById('app')!;

const msg = createMessenger<AblateToHost, HostToAblate, UiState>(api, (m) => {
  switch (m.type) {
    case 'ablateModel':
      model = m.model;
      if (m.focus && model.matrices.some((t) => t.name === m.focus)) ui.tensor = m.focus;
      render();
      break;
    case 'candidates':
      candidates = m.candidates;
      ui.chosen = ui.chosen.filter((id) => candidates.some((c) => c.id === id));
      render();
      break;
    case 'preview':
      preview = m;
      busy = '';
      render();
      break;
    case 'ablateError':
      loadError = m.message;
      render();
      break;
    case 'writeStatus':
      writeStatus = m;
      render();
      break;
  }
});

const save = () => api.setState(ui);
const writerOn = (w: AblationModel['writers'][number]) => w.preselected !== ui.toggled.includes(w.name);

function render(): void {
  app.replaceChildren();
  if (loadError) {
    app.append(h('h1', {}, 'Ablation'), h('p', { class: 'notice error', role: 'alert', id: 'ablate-error' }, loadError));
    return;
  }
  if (!model) {
    app.append(h('h1', {}, 'Ablation'), h('p', { class: 'status' }, 'Finding the residual-stream writers…'));
    return;
  }
  const m = model;
  app.append(h('header', {}, h('h1', { id: 'ablate-title' }, `Ablate directions: ${m.fileName}`),
    h('p', { class: 'muted' }, `Architecture ${m.family}; residual width d_model = ${m.dModel ?? 'unknown'}. Every selected direction r is projected out of every selected writer: W ← W − r rᵀW.`)));

  // Candidates.
  const cand = h('section', { 'aria-labelledby': 'cand-heading' }, h('h2', { id: 'cand-heading' }, 'Candidate directions'));
  const tensorSel = h('select', { id: 'svd-tensor', 'aria-label': 'Tensor to take singular directions from' },
    ...m.matrices.map((t) => h('option', { value: t.name }, `${t.name} [${t.shape.join('×')}]`))) as HTMLSelectElement;
  if (ui.tensor) tensorSel.value = ui.tensor;
  tensorSel.addEventListener('change', () => { ui.tensor = tensorSel.value; save(); });
  const count = h('input', { type: 'number', id: 'svd-count', min: 1, max: 16, value: ui.count, 'aria-label': 'How many top directions' }) as HTMLInputElement;
  count.addEventListener('input', () => { ui.count = Math.max(1, Math.min(16, Number(count.value) || 1)); save(); });
  const addSvd = h('button', { type: 'button', id: 'add-singular' }, 'Add top singular directions');
  addSvd.addEventListener('click', async () => {
    ui.tensor = tensorSel.value; save();
    busy = 'computing the SVD…'; render();
    await msg.send({ type: 'singularDirections', tensor: tensorSel.value, count: ui.count });
    busy = ''; render();
  });
  const addFile = h('button', { type: 'button', class: 'secondary', id: 'add-file' }, 'Add from file…');
  addFile.addEventListener('click', () => void msg.send({ type: 'pickFiles' }));
  cand.append(h('div', { class: 'toolbar' }, h('label', {}, 'Tensor', tensorSel), h('label', {}, 'top', count), addSvd, addFile));
  if (candidates.length === 0) cand.append(h('p', { class: 'status', id: 'no-candidates' }, 'No candidates yet: add top singular directions of a tensor, or vectors from .npy/.npz/.safetensors/.pt files. Directions computed by evaluations appear here too.'));
  else {
    const body = h('tbody');
    for (const c of candidates) {
      const box = h('input', { type: 'checkbox', 'aria-label': `Use ${c.label}` }) as HTMLInputElement;
      box.checked = ui.chosen.includes(c.id);
      box.addEventListener('change', () => { ui.chosen = box.checked ? [...ui.chosen, c.id] : ui.chosen.filter((x) => x !== c.id); save(); render(); });
      const rm = h('button', { type: 'button', class: 'icon-button', 'aria-label': `Remove ${c.label}` }, '×');
      rm.addEventListener('click', () => void msg.send({ type: 'removeCandidate', id: c.id }));
      const bad = m.dModel !== undefined && c.length > 0 && c.length !== m.dModel;
      body.append(h('tr', { class: 'candidate-row', 'data-id': c.id }, h('td', {}, box), h('td', { class: 'mono' }, c.label), h('td', {}, c.source),
        h('td', { class: bad ? 'error' : 'muted' }, bad ? `length ${c.length} ≠ d_model ${m.dModel}` : c.detail), h('td', {}, c.source === 'computed' ? '' : rm)));
    }
    cand.append(h('table', { class: 'data', id: 'candidate-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Use'), h('th', {}, 'Direction'), h('th', {}, 'Source'), h('th', {}, 'Detail'), h('th', {}, ''))), body));
  }
  if (busy) cand.append(h('p', { class: 'status', role: 'status' }, busy));

  // Writers + preview.
  const wr = h('section', { 'aria-labelledby': 'writers-heading' }, h('h2', { id: 'writers-heading' }, `Residual-stream writers (${m.writers.filter(writerOn).length} of ${m.writers.length} selected)`));
  if (m.writers.length === 0) wr.append(h('p', { class: 'status', id: 'no-writers' }, `No residual writers were recognised in this architecture. ${m.notes.join(' ')}`));
  const chosen = candidates.filter((c) => ui.chosen.includes(c.id));
  const wbody = h('tbody');
  for (const w of m.writers) {
    const box = h('input', { type: 'checkbox', 'aria-label': `Project out of ${w.name}` }) as HTMLInputElement;
    box.checked = writerOn(w);
    box.addEventListener('change', () => { ui.toggled = ui.toggled.includes(w.name) ? ui.toggled.filter((n) => n !== w.name) : [...ui.toggled, w.name]; save(); render(); });
    const row = preview?.rows.find((r) => r.writer === w.name);
    wbody.append(h('tr', { class: 'writer-row', 'data-name': w.name }, h('td', {}, box), h('td', { class: 'mono' }, w.name), h('td', {}, w.kind), h('td', {}, `[${w.shape.join('×')}] axis ${w.residualAxis}`),
      ...chosen.map((c) => h('td', { class: 'num' }, row && row.removed[c.id] !== undefined ? (Number.isNaN(row.removed[c.id]) ? 'length ≠' : `${fmt(row.removed[c.id] * 100, 3)}%`) : ''))));
  }
  if (m.writers.length) {
    wr.append(h('div', { class: 'scroll' }, h('table', { class: 'data', id: 'writer-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'On'), h('th', {}, 'Writer'), h('th', {}, 'Kind'), h('th', {}, 'Shape'), ...chosen.map((c) => h('th', { class: 'num', title: '||r rᵀ W||_F / ||W||_F' }, `removed: ${c.label}`)))), wbody)));
  }
  const prev = h('button', { type: 'button', class: 'secondary', id: 'preview' }, 'Preview norm removed');
  (prev as HTMLButtonElement).disabled = chosen.length === 0;
  prev.addEventListener('click', () => {
    busy = 'computing the preview…'; render();
    void msg.send({ type: 'preview', candidates: ui.chosen, writers: m.writers.filter(writerOn).map((w) => w.name) });
  });
  if (preview?.error) wr.append(h('p', { class: 'error', role: 'alert' }, preview.error));

  const write = h('button', { type: 'button', id: 'write' }, 'Write Edited Model…');
  (write as HTMLButtonElement).disabled = chosen.length === 0 || writeStatus?.state === 'running';
  write.addEventListener('click', () => void msg.send({ type: 'write', candidates: ui.chosen, writers: m.writers.filter(writerOn).map((w) => w.name) }));
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'cancel-write', hidden: writeStatus?.state !== 'running' }, 'Cancel');
  cancel.addEventListener('click', () => void msg.send({ type: 'cancelWrite' }));
  const openBtn = h('button', { type: 'button', id: 'open-result', hidden: !(writeStatus?.state === 'done' && writeStatus.output) }, 'Open');
  openBtn.addEventListener('click', () => { if (writeStatus?.output) void msg.send({ type: 'openResult', path: writeStatus.output }); });
  wr.append(h('div', { class: 'toolbar' }, prev, write, cancel, openBtn),
    h('p', { id: 'write-status', role: 'status', class: writeStatus?.state === 'error' ? 'error' : '' }, writeStatus?.message ?? ''));
  app.append(cand, wr);
}

render();
api.postMessage({ type: 'ready', messageId: 0 });
