/**
 * Autoregressive generation: each step runs the model on the whole prefix (the last `contextLength`
 * tokens; no KV cache — these models are small) and picks the next token from the last position's
 * logits: greedy (argmax, ties to the lower id) when temperature is 0, else sampled from
 * softmax(logits / T) restricted to the top-k logits, with a seeded generator so runs repeat.
 */
import { throwIfAborted } from '../checkpoint/errors';
import type { LanguageModel } from './model';
import { requireTokenizer } from './model';
import { TokenizerError } from './tokenizerChar';

export interface GenerateOptions {
  /** Tokens to generate at most. */
  maxTokens: number;
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Sample among the k most likely tokens only (0 / undefined = all). */
  topK?: number;
  /** Seed of the sampling generator (default 0). */
  seed?: number;
  /** Stop when the model emits its EOS token (default true; the EOS is not part of `ids`). */
  stopAtEos?: boolean;
  eos?: number;
  signal?: AbortSignal;
  onToken?: (id: number, index: number) => void;
}

export interface Generation {
  /** The generated token ids (prompt excluded). */
  ids: number[];
  stop: 'eos' | 'length';
  /** Wall time of the model runs. */
  seconds: number;
  /** Latency per generated token (one full-prefix run each). */
  msPerToken: number;
  tokensPerSecond: number;
}

/** A seeded uniform [0, 1) generator (mulberry32, see analysis/mpoRandom.ts): same sequence on every platform. */
export { mulberry32 as seededRandom } from '../analysis/mpoRandom';
import { mulberry32 as seededRandom } from '../analysis/mpoRandom';

/** argmax of row `row` of a [rows, vocab] logits array; ties go to the lower id. */
export function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  const off = row * vocab;
  let best = 0;
  let bestV = logits[off];
  for (let j = 1; j < vocab; j++) {
    const v = logits[off + j];
    if (v > bestV) { bestV = v; best = j; }
  }
  return best;
}

/**
 * Samples from p_i ∝ exp((l_i - max) / T) over the top-k logits of one row (k = vocab when 0).
 * Computed in float64; the draw u ~ U[0,1) picks the first i with cumulative p >= u.
 */
export function sampleRow(logits: Float32Array, row: number, vocab: number, temperature: number, topK: number, rand: () => number): number {
  const off = row * vocab;
  let idx = Array.from({ length: vocab }, (_, j) => j);
  if (topK > 0 && topK < vocab) idx = idx.sort((a, b) => logits[off + b] - logits[off + a] || a - b).slice(0, topK);
  let max = -Infinity;
  for (const j of idx) max = Math.max(max, logits[off + j]);
  const w = idx.map((j) => Math.exp((logits[off + j] - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = rand() * total;
  for (let i = 0; i < idx.length; i++) {
    u -= w[i];
    if (u < 0) return idx[i];
  }
  return idx[idx.length - 1];
}

/** Generates up to `maxTokens` tokens after `prompt` (token ids, at least one). */
export async function generate(model: LanguageModel, prompt: readonly number[], opts: GenerateOptions): Promise<Generation> {
  if (prompt.length === 0) throw new RangeError('generate: the prompt has no tokens (and the model no BOS token to start from): give a prompt');
  const temperature = opts.temperature ?? 0;
  const rand = seededRandom(opts.seed ?? 0);
  const eos = opts.eos ?? model.tokenizer?.eos;
  const stopAtEos = opts.stopAtEos ?? true;
  const seq = prompt.slice();
  const ids: number[] = [];
  let stop: 'eos' | 'length' = 'length';
  let seconds = 0;
  for (let step = 0; step < opts.maxTokens; step++) {
    throwIfAborted(opts.signal);
    const window = seq.length > model.contextLength ? seq.slice(seq.length - model.contextLength) : seq;
    const t0 = performance.now();
    const logits = await model.logits(window);
    seconds += (performance.now() - t0) / 1000;
    const last = window.length - 1;
    const next = temperature > 0 ? sampleRow(logits, last, model.vocabSize, temperature, opts.topK ?? 0, rand) : argmaxRow(logits, last, model.vocabSize);
    if (stopAtEos && eos !== undefined && next === eos) { stop = 'eos'; break; }
    seq.push(next);
    ids.push(next);
    opts.onToken?.(next, step);
  }
  const n = Math.max(ids.length, 1);
  return { ids, stop, seconds, msPerToken: (seconds * 1000) / n, tokensPerSecond: seconds > 0 ? ids.length / seconds : 0 };
}

export interface TextGeneration extends Generation {
  promptIds: number[];
  /** The prompt and the continuation decoded together (how the tokenizer renders the whole). */
  text: string;
  /** The continuation alone (the decoded whole minus the decoded prompt). */
  completion: string;
}

/**
 * Encodes `prompt` with the model's tokenizer (SentencePiece models get their BOS first, so an empty
 * prompt starts from BOS alone), generates and decodes.
 */
export async function generateText(model: LanguageModel, prompt: string, opts: GenerateOptions): Promise<TextGeneration> {
  const tok = requireTokenizer(model);
  const promptIds = tok.encode(prompt, { bos: tok.bos !== undefined && tok.kind === 'sentencepiece' });
  if (promptIds.length === 0) throw new TokenizerError('the prompt is empty and the model has no BOS token to start from: give a prompt (e.g. a newline)');
  const g = await generate(model, promptIds, opts);
  const text = tok.decode([...promptIds, ...g.ids]);
  const head = tok.decode(promptIds);
  return { ...g, promptIds, text, completion: text.startsWith(head) ? text.slice(head.length) : tok.decode(g.ids) };
}
