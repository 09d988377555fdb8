/**
 * The Evaluate panel: run the model (against an original) on a text — perplexity, accuracy, KL, top-1
 * agreement, speed, and both greedy generations with the first diverging token marked — and compute
 * difference-in-means directions per layer from two prompt files (save as .npy, offer to the
 * ablation picker). All computing is the host's; this page keeps the settings and the last results
 * in getState/setState.
 */
import type { DirectionsResult, EvalFileField, EvalGeneration, EvalResult, EvalRunRequest, EvalSetup, EvaluateToHost, HostToEvaluate } from '../../src/protocol/evaluate';
import baseCss from '../shared/base.css';
import css from './style.css';
import { h, installStyle } from '../shared/dom';
import { createMessenger } from '../shared/messaging';
import { directionRows, firstDivergence, formatFraction, formatKl, formatMs, formatPerplexity, formatRate, visiblePiece } from './logic';

interface UiState {
  against: string | null;
  text: string | null;
  vocab: string | null;
  maxTokens: number;
  sampleTokens: number;
  prompt: string;
  promptA: string | null;
  promptB: string | null;
  pooling: 'last' | 'mean';
  ropeOrder: RopeChoice;
  chosenLayer?: number;
  result?: EvalResult;
  directions?: DirectionsResult;
  error?: { phase: 'evaluate' | 'directions'; message: string; needsVocab?: boolean; cancelled?: boolean };
  dirStatus?: { ok: boolean; message: string; id?: string };
}

type RopeChoice = NonNullable<EvalRunRequest['ropeOrder']>;
const ROPE_CHOICES: Array<[RopeChoice, string]> = [
  ['auto', 'as the file says'],
  ['interleaved', 'interleaved pairs (Meta, llama2.c, GGUF)'],
  ['half', 'rotate half (Hugging Face)'],
];

const api = acquireVsCodeApi<UiState>();
installStyle(baseCss + '\n' + css);
const defaults: UiState = { against: null, text: null, vocab: null, maxTokens: 512, sampleTokens: 48, prompt: '', promptA: null, promptB: null, pooling: 'last', ropeOrder: 'auto' };
let ui: UiState = { ...defaults, ...(api.getState() ?? {}) };
let setup: EvalSetup | undefined;
let busy: { phase: 'evaluate' | 'directions'; message: string; fraction?: number } | undefined;
const app = document.getElementById('app')!;
const save = () => api.setState(ui);

const msg = createMessenger<EvaluateToHost, HostToEvaluate, UiState>(api, (m) => {
  switch (m.type) {
    case 'evalSetup':
      setup = m.setup;
      break;
    case 'evalProgress':
      busy = { phase: m.phase, message: m.message, fraction: m.fraction };
      // Only the progress line changes: keep focus and inputs as they are.
      if (updateProgress()) return;
      break;
    case 'evalResult':
      busy = undefined;
      ui.result = m.result;
      if (ui.error?.phase === 'evaluate') ui.error = undefined;
      break;
    case 'directionsResult':
      busy = undefined;
      ui.directions = m.result;
      ui.chosenLayer = m.result.bestLayer;
      ui.dirStatus = undefined;
      if (ui.error?.phase === 'directions') ui.error = undefined;
      break;
    case 'evalError':
      busy = undefined;
      ui.error = { phase: m.phase, message: m.message, needsVocab: m.needsVocab, cancelled: m.cancelled };
      break;
    case 'fileChosen':
      ui[m.field] = m.path;
      if (m.field === 'vocab' && ui.error?.needsVocab) ui.error = undefined;
      break;
    case 'directionDone':
      ui.dirStatus = { ok: m.ok, message: m.message, id: m.id };
      break;
  }
  save();
  render();
});

const base = (p: string | null | undefined) => (p ? p.split(/[\\/]/).pop() ?? p : '');

function pickButton(field: EvalFileField, label: string, aria: string): HTMLButtonElement {
  const b = h('button', { class: 'secondary', id: `pick-${field}`, 'aria-label': aria }, label);
  b.addEventListener('click', () => void msg.send({ type: 'pickFile', field }));
  return b;
}

function clearButton(field: EvalFileField, aria: string): HTMLButtonElement | null {
  if (!ui[field]) return null;
  const b = h('button', { class: 'secondary', id: `clear-${field}`, 'aria-label': aria }, 'Clear');
  b.addEventListener('click', () => { ui[field] = null; save(); render(); });
  return b;
}

function fileRow(label: string, field: EvalFileField, value: string, title: string | undefined, pick: string, aria: string): HTMLElement {
  return h('div', { class: 'field' }, h('span', { class: 'field-label', id: `label-${field}` }, label),
    h('span', { class: 'mono file', id: `value-${field}`, title: title ?? '', 'aria-labelledby': `label-${field}` }, value),
    pickButton(field, pick, aria), clearButton(field, `Clear: ${label}`));
}

function numberInput(id: string, label: string, value: number, min: number, max: number, set: (v: number) => void): HTMLElement {
  const input = h('input', { type: 'number', id, min, max, step: 1, value, 'aria-label': label }) as HTMLInputElement;
  input.addEventListener('change', () => {
    const v = Math.floor(Number(input.value));
    const ok = Number.isFinite(v) && v >= min && v <= max;
    input.classList.toggle('invalid', !ok);
    if (ok) { set(v); save(); }
  });
  return h('label', {}, label, input);
}

/** RoPE order for Llama-family weights: a llama2.c .pt carries no hint and needs 'interleaved'. */
function ropeSelect(): HTMLElement {
  const sel = h('select', { id: 'rope-order', 'aria-label': 'RoPE order (Llama-family models)' }) as HTMLSelectElement;
  for (const [value, label] of ROPE_CHOICES) sel.append(h('option', { value }, label));
  sel.value = ui.ropeOrder;
  sel.addEventListener('change', () => { ui.ropeOrder = sel.value as RopeChoice; save(); });
  return h('label', { title: 'Llama-family only. Rotary position embeddings pair dimensions either as adjacent pairs (Meta, llama2.c, llama.cpp) or as halves (Hugging Face). Files without a hint default to halves.' }, 'RoPE order', sel);
}

function progressView(): HTMLElement | null {
  if (!busy) return null;
  const bar = h('progress', { id: 'eval-progress-bar', max: 1, 'aria-label': 'Progress' }) as HTMLProgressElement;
  if (busy.fraction !== undefined) bar.value = busy.fraction;
  const cancel = h('button', { class: 'secondary', id: 'cancel', 'aria-label': 'Cancel the running computation' }, 'Cancel');
  cancel.addEventListener('click', () => void msg.send({ type: 'cancel' }));
  return h('div', { class: 'toolbar', id: 'eval-progress', 'data-phase': busy.phase }, bar, h('span', { class: 'status', id: 'eval-progress-text', role: 'status', 'aria-live': 'polite' }, busy.message), cancel);
}

/** Updates the progress line in place; false when there is none yet (the caller re-renders). */
function updateProgress(): boolean {
  const box = document.getElementById('eval-progress');
  if (!box || !busy || box.dataset.phase !== busy.phase) return false;
  const bar = document.getElementById('eval-progress-bar') as HTMLProgressElement | null;
  if (bar && busy.fraction !== undefined) bar.value = busy.fraction;
  const t = document.getElementById('eval-progress-text');
  if (t) t.textContent = busy.message;
  return true;
}

function errorView(phase: 'evaluate' | 'directions'): HTMLElement | null {
  const e = ui.error;
  if (!e || e.phase !== phase) return null;
  if (e.cancelled) return h('p', { class: 'status', id: `${phase}-cancelled`, role: 'status' }, 'Cancelled.');
  const box = h('div', { class: 'notice error', role: 'alert', id: `${phase}-error` }, h('p', { class: 'error-text' }, e.message));
  if (e.needsVocab) {
    box.append(h('p', {}, 'The model has no tokenizer: choose a vocabulary file (meta.json, vocab.json or a GGUF file with the same vocabulary).'),
      pickButton('vocab', 'Choose Vocabulary…', 'Choose a vocabulary file for the model'));
  }
  return box;
}

function readout(id: string, label: string, text: string, value: number | null | undefined, help: string): HTMLElement[] {
  return [h('dt', { title: help }, label), h('dd', { id, 'data-value': value === null || value === undefined ? '' : String(value), title: help }, text)];
}

function generationView(title: string, id: string, g: EvalGeneration, promptText: string, diverge: number): HTMLElement {
  const text = h('div', { class: 'generation mono', id, role: 'region', 'aria-label': `Generation of ${title}` });
  text.append(promptText === '' ? h('span', { class: 'prompt bos', title: 'the BOS token (empty prompt)' }, '⟨BOS⟩ ') : h('span', { class: 'prompt' }, visiblePiece(promptText)));
  g.pieces.forEach((p, i) => {
    const cls = i === diverge ? 'token diverge' : i > diverge && diverge >= 0 ? 'token after' : 'token';
    const span = h('span', { class: cls, 'data-index': i, 'data-id': g.ids[i], title: `token ${i}: id ${g.ids[i]}${p === '' ? ' (part of a multi-byte character)' : ''}` }, p.replace(/\n/g, '⏎\n'));
    if (i === diverge) span.setAttribute('aria-label', `first diverging token: ${p}`);
    text.append(span);
  });
  if (diverge >= g.pieces.length) text.append(h('span', { class: 'token diverge end', title: 'stopped here' }, g.stop === 'eos' ? ' ⟨eos⟩' : ' ⟨end⟩'));
  return h('div', { class: 'gen-column' }, h('h3', {}, title, h('span', { class: 'muted' }, ` · ${g.ids.length} tokens${g.stop === 'eos' ? ', stopped at EOS' : ''}, ${formatMs(g.msPerToken)} ms/token`)), text);
}

function resultsView(r: EvalResult): HTMLElement {
  const sec = h('section', { 'aria-labelledby': 'results-heading', id: 'results' }, h('h2', { id: 'results-heading' }, 'Results'));
  sec.append(h('p', { class: 'muted' }, `${r.tokens} targets of ${r.textSource} (${r.textTokens} tokens), window ${r.window}; ${r.seconds.toFixed(1)} s in all.`));
  if (r.rope) sec.append(h('p', { class: 'muted', id: 'rope-used' }, `RoPE: ${r.rope.order === 'half' ? 'rotate half' : 'interleaved pairs'} (${r.rope.source}).`));
  const dl = h('dl', { class: 'readouts', id: 'metrics' });
  dl.append(...readout('m-perplexity', 'Perplexity', formatPerplexity(r.perplexity), r.perplexity, 'exp(mean negative log-likelihood of the next token)'));
  dl.append(...readout('m-accuracy', 'Next-token accuracy', formatFraction(r.accuracy), r.accuracy, 'fraction of targets that are the argmax of the model'));
  if (r.against) {
    dl.append(...readout('m-kl', 'KL(original ‖ model)', `${formatKl(r.klDivergence)} nats`, r.klDivergence, 'mean over positions of KL(p_original || p_model), in nats'));
    dl.append(...readout('m-agreement', 'Top-1 agreement', formatFraction(r.top1Agreement), r.top1Agreement, 'fraction of positions where both models have the same argmax'));
  }
  dl.append(...readout('m-tps', 'Tokens/s (scoring)', formatRate(r.tokensPerSecond), r.tokensPerSecond, 'tokens through the model per second while scoring'));
  dl.append(...readout('m-ms', 'ms/token (generation)', formatMs(r.msPerToken), r.msPerToken, 'one full-prefix run per generated token'));
  if (r.againstMetrics) {
    dl.append(...readout('o-perplexity', 'Original: perplexity', formatPerplexity(r.againstMetrics.perplexity), r.againstMetrics.perplexity, 'the original on the same text'));
    dl.append(...readout('o-accuracy', 'Original: accuracy', formatFraction(r.againstMetrics.accuracy), r.againstMetrics.accuracy, 'the original on the same text'));
  }
  sec.append(dl);
  const g = r.generation;
  if (g) {
    const a = r.againstGeneration;
    const diverge = a ? firstDivergence(g.ids, a.ids) : -1;
    const prompt = r.prompt === '' ? 'the BOS token alone' : JSON.stringify(r.prompt);
    sec.append(h('h2', { id: 'gen-heading' }, 'Greedy generations'));
    sec.append(h('p', { class: 'muted', id: 'divergence', 'data-index': a ? diverge : '' },
      `From ${prompt}. `, a ? (diverge < 0 ? 'The two generations are identical.' : `They first differ at generated token ${diverge} (highlighted).`) : ''));
    const grid = h('div', { class: 'gen-grid' });
    grid.append(generationView(`${base(r.model)} (model)`, 'gen-model', g, r.promptText, a ? diverge : -1));
    if (a && r.against) grid.append(generationView(`${base(r.against)} (original)`, 'gen-against', a, r.promptText, diverge));
    sec.append(grid);
  }
  return sec;
}

function directionsView(): HTMLElement {
  const sec = h('section', { 'aria-labelledby': 'dir-heading', id: 'directions' }, h('h2', { id: 'dir-heading' }, 'Directions'));
  sec.append(h('p', { class: 'muted' }, 'Difference in means of the residual stream between two prompt sets, at every block input and the final norm input: r = mean(A) − mean(B); separation = Cohen\'s d of the projections on r/‖r‖.'));
  const a = ui.promptA ?? setup?.defaultPromptA ?? null, b = ui.promptB ?? setup?.defaultPromptB ?? null;
  sec.append(fileRow('Prompt set A', 'promptA', base(a) || '–', a ?? undefined, 'Choose…', 'Choose prompt file A'));
  sec.append(fileRow('Prompt set B', 'promptB', base(b) || '–', b ?? undefined, 'Choose…', 'Choose prompt file B'));
  const pool = h('select', { id: 'pooling', 'aria-label': 'Pooling over positions' },
    h('option', { value: 'last' }, 'last token'), h('option', { value: 'mean' }, 'mean over tokens')) as HTMLSelectElement;
  pool.value = ui.pooling;
  pool.addEventListener('change', () => { ui.pooling = pool.value as 'last' | 'mean'; save(); });
  const compute = h('button', { id: 'compute-directions', 'aria-label': 'Compute directions per layer' }, 'Compute');
  compute.toggleAttribute('disabled', !!busy || !a || !b);
  compute.addEventListener('click', () => {
    if (!a || !b) return;
    ui.error = undefined;
    busy = { phase: 'directions', message: 'starting…', fraction: 0 };
    save(); render();
    void msg.send({ type: 'computeDirections', promptA: a, promptB: b, pooling: ui.pooling, vocab: ui.vocab, ropeOrder: ui.ropeOrder });
  });
  sec.append(h('div', { class: 'toolbar' }, h('label', {}, 'Pooling', pool), compute));
  if (busy?.phase === 'directions') sec.append(progressView()!);
  const err = errorView('directions');
  if (err) sec.append(err);
  const d = ui.directions;
  if (!d) return sec;
  sec.append(h('p', { class: 'muted' }, `${d.countA} prompts of ${base(d.promptA)} vs ${d.countB} of ${base(d.promptB)}, ${d.pooling} token, d_model = ${d.dModel}. Choose a layer (largest separation pre-selected).`));
  const rows = directionRows(d.layers, d.bestLayer, ui.chosenLayer);
  const body = h('tbody', {});
  for (const r of rows) {
    const radio = h('input', { type: 'radio', name: 'dir-layer', value: r.layer, 'aria-label': `Choose layer ${r.layer}, ${r.label}` }) as HTMLInputElement;
    radio.checked = r.chosen;
    radio.addEventListener('change', () => { ui.chosenLayer = r.layer; ui.dirStatus = undefined; save(); render(); document.querySelector<HTMLInputElement>(`input[name=dir-layer][value="${r.layer}"]`)?.focus(); });
    const bar = (cls: string) => h('span', { class: `hbar ${cls}`, 'aria-hidden': 'true' }, h('span', { class: 'hbar-fill' }));
    const nb = bar('norm'), sb = bar('sep');
    // Inline style attributes are blocked by the CSP (style-src without 'unsafe-inline'); CSSOM writes are not.
    (nb.firstChild as HTMLElement).style.width = `${(r.normBar * 100).toFixed(1)}%`;
    (sb.firstChild as HTMLElement).style.width = `${(r.separationBar * 100).toFixed(1)}%`;
    body.append(h('tr', { class: `dir-row${r.chosen ? ' selected' : ''}`, 'data-layer': r.layer },
      h('td', {}, radio), h('td', { class: 'num' }, String(r.layer)), h('td', {}, r.label, r.best ? h('span', { class: 'badge' }, ' best') : null),
      h('td', { class: 'num' }, r.norm), h('td', {}, nb), h('td', { class: 'num' }, r.separation), h('td', {}, sb)));
  }
  sec.append(h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'dir-table', 'aria-label': 'Directions per layer' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Use'), h('th', { class: 'num' }, 'Layer'), h('th', {}, 'Capture point'), h('th', { class: 'num' }, '‖r‖'), h('th', {}, ''), h('th', { class: 'num' }, 'Separation'), h('th', {}, ''))), body)));
  const chosen = rows.find((r) => r.chosen)?.layer ?? d.bestLayer;
  const saveBtn = h('button', { class: 'secondary', id: 'save-direction', 'aria-label': `Save the direction of layer ${chosen} as .npy` }, `Save Layer ${chosen} as .npy…`);
  saveBtn.addEventListener('click', () => void msg.send({ type: 'saveDirection', key: d.key, layer: chosen }));
  const offer = h('button', { id: 'offer-direction', 'aria-label': `Offer the direction of layer ${chosen} to the ablation picker` }, 'Offer to Ablation Picker');
  offer.addEventListener('click', () => void msg.send({ type: 'offerDirection', key: d.key, layer: chosen }));
  sec.append(h('div', { class: 'toolbar' }, saveBtn, offer));
  if (ui.dirStatus) sec.append(h('p', { class: ui.dirStatus.ok ? 'status' : 'notice error', id: 'dir-status', role: ui.dirStatus.ok ? 'status' : 'alert', 'data-id': ui.dirStatus.id ?? '' }, ui.dirStatus.message));
  return sec;
}

function render(): void {
  app.replaceChildren();
  app.removeAttribute('aria-busy');
  if (!setup) {
    app.append(h('h1', {}, 'Evaluate'), h('p', { class: 'status' }, 'Connecting…'));
    return;
  }
  app.append(h('header', {}, h('h1', { id: 'evaluate-title' }, `Evaluate: ${setup.fileName}`), h('p', { class: 'muted mono', title: setup.path }, setup.path)));

  const run = h('section', { 'aria-labelledby': 'setup-heading' }, h('h2', { id: 'setup-heading' }, 'Run the model'));
  run.append(fileRow('Compare against', 'against', ui.against ? base(ui.against) : 'none', ui.against ?? undefined, 'Compare against…', 'Choose an original to compare against'));
  run.append(fileRow('Text', 'text', ui.text ? base(ui.text) : 'the bundled sample text', ui.text ?? undefined, 'Choose Text…', 'Choose a text file to score'));
  run.append(fileRow('Vocabulary', 'vocab', ui.vocab ? base(ui.vocab) : "the model's own", ui.vocab ?? undefined, 'Choose…', 'Choose a vocabulary file'));
  const prompt = h('input', { type: 'text', id: 'prompt', value: ui.prompt, placeholder: '(empty: start from BOS)', 'aria-label': 'Generation prompt; empty starts from the BOS token', size: 40 }) as HTMLInputElement;
  prompt.addEventListener('input', () => { ui.prompt = prompt.value; save(); });
  run.append(h('div', { class: 'toolbar' },
    numberInput('max-tokens', 'Tokens to score', ui.maxTokens, 1, 100000, (v) => { ui.maxTokens = v; }),
    numberInput('sample-tokens', 'Tokens to generate', ui.sampleTokens, 0, 1024, (v) => { ui.sampleTokens = v; }),
    h('label', {}, 'Prompt', prompt),
    ropeSelect()));
  const go = h('button', { id: 'run', 'aria-label': 'Run the evaluation' }, 'Run');
  go.toggleAttribute('disabled', !!busy);
  go.addEventListener('click', () => {
    ui.error = undefined;
    busy = { phase: 'evaluate', message: 'starting…', fraction: 0 };
    save(); render();
    void msg.send({ type: 'run', request: { against: ui.against, text: ui.text, vocab: ui.vocab, maxTokens: ui.maxTokens, sampleTokens: ui.sampleTokens, prompt: ui.prompt, ropeOrder: ui.ropeOrder } });
  });
  run.append(h('div', { class: 'toolbar' }, go));
  if (busy?.phase === 'evaluate') run.append(progressView()!);
  const err = errorView('evaluate');
  if (err) run.append(err);
  app.append(run);
  if (ui.result) app.append(resultsView(ui.result));
  app.append(directionsView());
}

render();
void api.postMessage({ type: 'ready', messageId: 0 } as EvaluateToHost);
