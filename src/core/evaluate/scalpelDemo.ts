/**
 * The "tensor scalpel" demonstration, end to end on a real model:
 *   1. inject a rank-1 virus into one matrix:      W' = W + s u v^T   (u, v seeded unit vectors)
 *   2. see that behaviour changed:                  greedy generation of W' vs W; top-1 agreement
 *   3. see the virus in the spectrum:               s_1(W') ~ s (far above s_2(W') and above the
 *                                                   Marchenko-Pastur bulk edge sigma (sqrt m + sqrt n))
 *   4. cut it out:                                  W'' = W' - s_1 u_1 v_1^T   (the top singular triplet of W')
 *   5. see behaviour restored:                      top-1 agreement of W'' with W on a text
 * All in memory through loadModel's `overrides` (the edited matrix replaces the stored one in the
 * built graph). By Weyl's inequality |s_i(W') - s_i(W)| <= s, and for s >> s_1(W) the top triplet of
 * W' is (approximately) (s + u^T W v, u, v), so removing it leaves W up to a rank-1 error of order
 * s_1(W)^2 / s — the cleaner the larger the virus.
 */
import { open } from '../checkpoint/open';
import { CheckpointError } from '../checkpoint/errors';
import { spectrumMetrics } from '../analysis/spectrum';
import { getLinalgBackend } from '../linalg';
import type { LinalgBackend } from '../linalg/types';
import { injectionVectors, injectRankOne, removeTopDirections } from '../surgery/ablate';
import { generate } from './generate';
import { compareModels } from './metrics';
import { loadModel, requireTokenizer, type LoadModelOptions } from './model';
import { sampleTextFor } from './sampleText';

export interface ScalpelDemoOptions {
  /** The matrix to infect (default: blk.2.ffn_down.weight for GGUF Llama, h.2.mlp.c_proj.weight for GPT-2 names). */
  tensor?: string;
  /** s as a multiple of s_1(W) (default 3); ignored when `strength` is given. */
  relativeStrength?: number;
  /** s itself. */
  strength?: number;
  /** Seed of u, v (default 0). */
  seed?: number;
  /**
   * Make u and v orthogonal to W's top-k left / right singular vectors (default 0: plain seeded
   * Gaussian directions). Removing W' 's top triplet also removes roughly W v v^T + u u^T W (first-order
   * perturbation of the singular vectors), i.e. relative damage ~ sqrt(||W v||^2 + ||u^T W||^2) / ||W||_F,
   * about sqrt(1/m + 1/n) for random u, v; a virus hidden in the directions W uses least is removed
   * with much less collateral damage.
   */
  avoidTop?: number;
  /** Text for top-1 agreement (default: the bundled sample for the tokenizer). */
  text?: string;
  /** Greedy tokens to generate from the prompt (default 40). */
  generateTokens?: number;
  /** Generation prompt (default: BOS alone for SentencePiece models, else the text's first line). */
  prompt?: string;
  backend?: LinalgBackend;
  model?: LoadModelOptions;
}

export interface SpectrumSummary {
  top: number[];
  s1: number;
  s2: number;
  /** s_1 / s_2. */
  gap: number;
  mpEdge: number;
  outliersAboveEdge: number;
}

export interface ScalpelDemoReport {
  model: string;
  tensor: string;
  shape: [number, number];
  strength: number;
  seed: number;
  avoidTop: number;
  spectra: { original: SpectrumSummary; virus: SpectrumSummary; repaired: SpectrumSummary };
  /** Every singular value of W, W' and W'' (descending), for charts. */
  fullSpectra: { original: number[]; virus: number[]; repaired: number[] };
  /** ||W'' - W||_F / ||W||_F. */
  repairRelativeError: number;
  /** s_1 of W' that was removed. */
  removedSingularValue: number;
  text: { source: string; tokens: number };
  /** Top-1 agreement with the original (fraction of positions with the same argmax) and KL(p_W || p_edit). */
  agreement: { virus: number; repaired: number };
  kl: { virus: number; repaired: number };
  perplexity: { original: number; virus: number; repaired: number };
  generation: { prompt: string; original: string; virus: string; repaired: string; virusChanged: boolean; repairedEqualsOriginal: boolean };
}

function summary(s: Float64Array, rows: number, cols: number): SpectrumSummary {
  const m = spectrumMetrics(s, { rows, cols });
  return { top: Array.from(s.subarray(0, 5)), s1: s[0], s2: s[1], gap: s[0] / s[1], mpEdge: m.mpEdge, outliersAboveEdge: m.outliers };
}

function defaultTensor(names: string[]): string {
  for (const n of ['blk.2.ffn_down.weight', 'h.2.mlp.c_proj.weight', 'model.layers.2.mlp.down_proj.weight', 'layers.2.mlp.down_proj.weight']) if (names.includes(n)) return n;
  throw new Error('no default tensor for this naming scheme: pass opts.tensor');
}

/** Runs the demonstration (file comment) and returns a JSON-serialisable report. */
export async function runScalpelDemo(modelPath: string, opts: ScalpelDemoOptions = {}): Promise<ScalpelDemoReport> {
  const backend = opts.backend ?? await getLinalgBackend('auto');
  const ckpt = await open(modelPath);
  let W: Float32Array, rows: number, cols: number, tensor: string;
  try {
    tensor = opts.tensor ?? defaultTensor(ckpt.tensors.map((t) => t.name));
    const t = ckpt.get(tensor);
    if (!t) throw new CheckpointError(ckpt.path, 'no such tensor to inject into', { tensor });
    if (t.shape.length !== 2) throw new CheckpointError(ckpt.path, `expected a matrix, found shape [${t.shape.join(', ')}]`, { tensor });
    [rows, cols] = t.shape;
    W = await t.read();
  } finally { await ckpt.close(); }

  const sOrig = await backend.singularValues({ rows, cols, data: W });
  const seed = opts.seed ?? 0;
  const strength = opts.strength ?? (opts.relativeStrength ?? 3) * sOrig[0];
  let { u, v } = injectionVectors(rows, cols, { seed }, tensor);
  const avoid = Math.min(opts.avoidTop ?? 0, Math.min(rows, cols) - 1);
  if (avoid > 0) {
    const svd = await backend.svd({ rows, cols, data: W });
    const kU = svd.U.cols;
    // Gram-Schmidt against the first `avoid` singular vectors, then renormalise.
    const pu = Float64Array.from(u), pv = Float64Array.from(v);
    for (let t = 0; t < avoid; t++) {
      let a = 0, b = 0;
      for (let i = 0; i < rows; i++) a += pu[i] * svd.U.data[i * kU + t];
      for (let j = 0; j < cols; j++) b += pv[j] * svd.Vt.data[t * cols + j];
      for (let i = 0; i < rows; i++) pu[i] -= a * svd.U.data[i * kU + t];
      for (let j = 0; j < cols; j++) pv[j] -= b * svd.Vt.data[t * cols + j];
    }
    ({ u, v } = injectionVectors(rows, cols, { u: pu, v: pv }, tensor));
  }
  const virus = W.slice();
  injectRankOne(virus, rows, cols, strength, u, v);
  const sVirus = await backend.singularValues({ rows, cols, data: virus });
  const repaired = virus.slice();
  const removed = await removeTopDirections(repaired, rows, cols, 1, backend);
  const sRep = await backend.singularValues({ rows, cols, data: repaired });
  let num = 0, den = 0;
  for (let i = 0; i < W.length; i++) { num += (repaired[i] - W[i]) ** 2; den += W[i] ** 2; }

  const original = await loadModel(modelPath, opts.model);
  const infected = await loadModel(modelPath, { ...opts.model, overrides: new Map([[tensor, virus]]) });
  const fixed = await loadModel(modelPath, { ...opts.model, overrides: new Map([[tensor, repaired]]) });
  try {
    const tok = requireTokenizer(original);
    const sample = sampleTextFor(tok.kind);
    const text = opts.text ?? sample.text;
    const bos = tok.kind === 'sentencepiece' && tok.bos !== undefined;
    const ids = tok.encode(text, { bos });
    const cv = await compareModels(original, infected, ids);
    const cr = await compareModels(original, fixed, ids);
    const prompt = opts.prompt ?? (bos ? '' : text.split('\n')[0]);
    const pIds = tok.encode(prompt, { bos });
    const n = opts.generateTokens ?? 40;
    const gen = async (m: typeof original) => tok.decode([...pIds, ...(await generate(m, pIds, { maxTokens: n, eos: tok.eos })).ids]);
    const gO = await gen(original), gV = await gen(infected), gR = await gen(fixed);
    return {
      model: original.path, tensor, shape: [rows, cols], strength, seed, avoidTop: avoid,
      spectra: { original: summary(sOrig, rows, cols), virus: summary(sVirus, rows, cols), repaired: summary(sRep, rows, cols) },
      fullSpectra: { original: Array.from(sOrig), virus: Array.from(sVirus), repaired: Array.from(sRep) },
      repairRelativeError: Math.sqrt(num / den),
      removedSingularValue: removed.singularValues[0],
      text: { source: opts.text !== undefined ? 'given text' : sample.name, tokens: ids.length },
      agreement: { virus: cv.top1Agreement, repaired: cr.top1Agreement },
      kl: { virus: cv.klDivergence, repaired: cr.klDivergence },
      perplexity: { original: cv.reference.perplexity, virus: cv.candidate.perplexity, repaired: cr.candidate.perplexity },
      generation: { prompt, original: gO, virus: gV, repaired: gR, virusChanged: gV !== gO, repairedEqualsOriginal: gR === gO },
    };
  } finally {
    await original.close(); await infected.close(); await fixed.close();
  }
}
