/**
 * Language-model metrics over a token sequence t_0 .. t_{N-1}, scored target by target (t_j is
 * predicted from t_0 .. t_{j-1}, within the window that holds it):
 *
 *   NLL_j        = -log p(t_j | context) = logsumexp(l) - l[t_j]       (natural log, float64)
 *   perplexity   = exp(mean_j NLL_j)
 *   accuracy     = mean_j [argmax l = t_j]                              (next-token accuracy)
 *   KL(p || q)   = mean_j sum_i p_i (log p_i - log q_i)   p = the original's softmax, q = the edited one's
 *   top-1 agreement = mean_j [argmax l_orig = argmax l_edit]
 *
 * Windows (the model sees at most W = its context length tokens at a time): window k feeds tokens
 * [kS, kS + W) and its logits at position i predict token i + 1, so a window predicts targets
 * kS + 1 .. kS + W. The first window scores all of them; later windows score only targets no earlier
 * window scored (the last S). Every target t_1 .. t_{N-1} is scored exactly once. With S = W
 * (the default) the windows do not overlap and a target sees 0 .. W - 1 tokens of context, uniformly:
 * exactly how a GPT's training/validation loss is measured on blocks of W tokens (nanoGPT's
 * estimate_loss), so the perplexity compares with a reported validation loss. S < W gives later
 * targets more context (a lower, "sliding window" perplexity) at W/S times the compute.
 */
import { throwIfAborted } from '../checkpoint/errors';
import type { LanguageModel } from './model';

export interface WindowOptions {
  /** Window length W (default: the model's context length, at most 1024). */
  window?: number;
  /** Stride S (default W: non-overlapping windows). */
  stride?: number;
  signal?: AbortSignal;
  /** Called after each window with the number of targets scored so far and the total. */
  onProgress?: (scored: number, total: number) => void;
}

/** One window: input tokens [start, end), scoring targets scoreFrom .. end (inclusive). */
export interface ScoringWindow { start: number; end: number; scoreFrom: number }

/** The windows covering targets 1 .. n-1 of n tokens (see the module comment). */
export function scoringWindows(n: number, window: number, stride: number): ScoringWindow[] {
  if (!(window >= 1) || !(stride >= 1) || stride > window) throw new RangeError(`window ${window} and stride ${stride}: need 1 <= stride <= window`);
  const out: ScoringWindow[] = [];
  let scored = 0; // targets 1 .. scored are done
  for (let start = 0; scored < n - 1; start += stride) {
    const end = Math.min(start + window, n - 1);
    const scoreFrom = Math.max(scored + 1, start + 1);
    if (scoreFrom <= end) out.push({ start, end, scoreFrom });
    scored = end;
  }
  return out;
}

/** log-softmax normaliser of one row: logsumexp(l) = m + log sum exp(l_i - m), m = max l. */
function logSumExp(l: Float32Array, off: number, vocab: number): { lse: number; argmax: number } {
  let m = -Infinity, argmax = 0;
  for (let j = 0; j < vocab; j++) if (l[off + j] > m) { m = l[off + j]; argmax = j; }
  let s = 0;
  for (let j = 0; j < vocab; j++) s += Math.exp(l[off + j] - m);
  return { lse: m + Math.log(s), argmax };
}

export interface TextMetrics {
  /** Targets scored (N - 1 for N tokens). */
  tokens: number;
  window: number;
  stride: number;
  meanNll: number;
  perplexity: number;
  accuracy: number;
  /** Tokens fed through the model per second of model time (all window inputs counted). */
  tokensPerSecond: number;
  seconds: number;
}

export interface ComparisonMetrics {
  /** The original (`reference`) model's own metrics on the text. */
  reference: TextMetrics;
  /** The edited / compressed model's. */
  candidate: TextMetrics;
  /** mean KL(p_reference || p_candidate), nats. */
  klDivergence: number;
  top1Agreement: number;
}

function defaultWindow(model: LanguageModel, opts: WindowOptions): { window: number; stride: number } {
  const window = Math.min(opts.window ?? Math.min(model.contextLength, 1024), model.contextLength);
  return { window, stride: Math.min(opts.stride ?? window, window) };
}

class Accumulator {
  nll = 0; correct = 0; count = 0; seconds = 0; fed = 0;
  metrics(window: number, stride: number): TextMetrics {
    const meanNll = this.nll / this.count;
    return { tokens: this.count, window, stride, meanNll, perplexity: Math.exp(meanNll), accuracy: this.correct / this.count, tokensPerSecond: this.seconds > 0 ? this.fed / this.seconds : 0, seconds: this.seconds };
  }
}

async function timedLogits(model: LanguageModel, ids: readonly number[], acc: Accumulator): Promise<Float32Array> {
  const t0 = performance.now();
  const l = await model.logits(ids);
  acc.seconds += (performance.now() - t0) / 1000;
  acc.fed += ids.length;
  return l;
}

/** Perplexity and next-token accuracy of `model` on `ids` (see the module comment for the windows). */
export async function scoreText(model: LanguageModel, ids: readonly number[], opts: WindowOptions = {}): Promise<TextMetrics> {
  if (ids.length < 2) throw new RangeError('scoring needs at least two tokens of text');
  const { window, stride } = defaultWindow(model, opts);
  const acc = new Accumulator();
  const V = model.vocabSize;
  for (const w of scoringWindows(ids.length, window, stride)) {
    throwIfAborted(opts.signal);
    const l = await timedLogits(model, ids.slice(w.start, w.end), acc);
    for (let j = w.scoreFrom; j <= w.end; j++) {
      const row = j - 1 - w.start;
      const { lse, argmax } = logSumExp(l, row * V, V);
      acc.nll += lse - l[row * V + ids[j]];
      if (argmax === ids[j]) acc.correct++;
      acc.count++;
    }
    opts.onProgress?.(acc.count, ids.length - 1);
  }
  return acc.metrics(window, stride);
}

/**
 * Scores both models on the same windows and compares their next-token distributions position by
 * position: KL(p_reference || p_candidate) and top-1 agreement (module comment). The two must share
 * a vocabulary; the window is limited by the shorter context.
 */
export async function compareModels(reference: LanguageModel, candidate: LanguageModel, ids: readonly number[], opts: WindowOptions = {}): Promise<ComparisonMetrics> {
  if (ids.length < 2) throw new RangeError('comparing needs at least two tokens of text');
  if (reference.vocabSize !== candidate.vocabSize) throw new RangeError(`the models' vocabularies differ (${reference.vocabSize} vs ${candidate.vocabSize} tokens): KL and agreement need the same vocabulary`);
  const shorter = reference.contextLength <= candidate.contextLength ? reference : candidate;
  const { window, stride } = defaultWindow(shorter, opts);
  const V = reference.vocabSize;
  const ra = new Accumulator(), ca = new Accumulator();
  let kl = 0, agree = 0;
  for (const w of scoringWindows(ids.length, window, stride)) {
    throwIfAborted(opts.signal);
    const input = ids.slice(w.start, w.end);
    const lp = await timedLogits(reference, input, ra);
    const lq = await timedLogits(candidate, input, ca);
    for (let j = w.scoreFrom; j <= w.end; j++) {
      const off = (j - 1 - w.start) * V;
      const p = logSumExp(lp, off, V), q = logSumExp(lq, off, V);
      ra.nll += p.lse - lp[off + ids[j]]; ca.nll += q.lse - lq[off + ids[j]];
      if (p.argmax === ids[j]) ra.correct++;
      if (q.argmax === ids[j]) ca.correct++;
      if (p.argmax === q.argmax) agree++;
      // KL = sum_i p_i (log p_i - log q_i), log p_i = l_i - lse_p.
      let k = 0;
      for (let i = 0; i < V; i++) {
        const logP = lp[off + i] - p.lse;
        const logQ = lq[off + i] - q.lse;
        const pi = Math.exp(logP);
        if (pi > 0) k += pi * (logP - logQ); // 0 log 0 = 0

      }
      kl += k;
      ra.count++; ca.count++;
    }
    opts.onProgress?.(ra.count, ids.length - 1);
  }
  return { reference: ra.metrics(window, stride), candidate: ca.metrics(window, stride), klDivergence: kl / ra.count, top1Agreement: agree / ra.count };
}
