/**
 * The compression table: compress a model's attention and MLP matrices as MPOs (analysis/mpo.ts,
 * TT-SVD truncated at bond dimension chi) in memory, for several chi, and measure each compressed
 * model against the dense one on a text.
 *
 * Per chi:
 *   params (compressed matrices)  sum_W sum_k chi_{k-1} o_k i_k chi_k      (mpoParamCount)
 *   params (whole model)          all stored parameters - the matrices' rows x cols + the above
 *   ratio                         dense / compressed, for the matrices and for the whole model
 *   relative error                sqrt(sum_W ||W - W_mpo||_F^2 / sum_W ||W||_F^2) over the compressed matrices
 *                                 (and the largest per-matrix error)
 *   perplexity, accuracy          of the compressed model on the text (metrics.ts windows)
 *   top-1 agreement, KL           against the dense model on the same windows
 *   accuracy / dense accuracy     (the PicoGPT paper, arXiv 2603.28534, quotes "97.7% of dense
 *                                 accuracy at chi = 16" — after training from scratch in MPO form;
 *                                 here the trained dense weights are truncated without any retraining)
 * The compressed model runs with the reconstructed dense matrices (overrides); the factorized graph
 * (factorizedGraph.ts) computes the same logits, only the cost differs.
 */
import { open } from '../checkpoint/open';
import { CheckpointError, throwIfAborted } from '../checkpoint/errors';
import { decomposeMpo, reconstructMpo } from '../analysis/mpo';
import { relativeFrobeniusError, sumSquares } from '../analysis/mpoTensor';
import { getLinalgBackend } from '../linalg';
import type { LinalgBackend } from '../linalg/types';
import { detectArchitecture, readSidecarConfig, type TransformerArchitecture } from './architecture';
import { compareModels } from './metrics';
import { loadModel, requireTokenizer, type LoadModelOptions } from './model';
import { sampleTextFor } from './sampleText';

export interface CompressionTableOptions {
  chis: number[];
  /** MPO sites per matrix (default 2). */
  sites?: number;
  /** The text to score; default the bundled sample for the model's tokenizer. */
  text?: string;
  textName?: string;
  backend?: LinalgBackend;
  model?: LoadModelOptions;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
}

export interface CompressionRow {
  chi: number;
  matrixParams: number;
  matrixRatio: number;
  modelParams: number;
  modelRatio: number;
  relativeError: number;
  maxRelativeError: number;
  perplexity: number;
  accuracy: number;
  /** accuracy / the dense model's accuracy. */
  accuracyOfDense: number;
  top1Agreement: number;
  klDivergence: number;
}

export interface CompressionTable {
  model: string;
  method: 'mpo';
  sites: number;
  matrices: string[];
  denseMatrixParams: number;
  denseModelParams: number;
  text: { source: string; characters: number; tokens: number };
  dense: { perplexity: number; accuracy: number };
  rows: CompressionRow[];
}

/** The attention and MLP matrices of every block (not embeddings, norms or the head). */
export function blockMatrices(arch: TransformerArchitecture): string[] {
  if (arch.family === 'gpt2') return arch.names.layers.flatMap((L) => [L.qkv[0], L.attnOut[0], L.fc[0], L.proj[0]]);
  return arch.names.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]);
}

export async function compressionTable(modelPath: string, opts: CompressionTableOptions): Promise<CompressionTable> {
  const backend = opts.backend ?? await getLinalgBackend('auto');
  const sites = opts.sites ?? 2;
  const ckpt = await open(modelPath);
  const weights = new Map<string, { data: Float32Array; rows: number; cols: number }>();
  let denseModelParams = 0;
  let matrices: string[];
  try {
    const arch = detectArchitecture(ckpt, await readSidecarConfig(ckpt.path, opts.model?.configPath), opts.model ?? {});
    matrices = blockMatrices(arch);
    for (const t of ckpt.tensors) denseModelParams += t.params;
    for (const name of matrices) {
      const t = ckpt.get(name);
      if (!t || t.shape.length !== 2) throw new CheckpointError(ckpt.path, 'expected a 2-D block matrix', { tensor: name });
      weights.set(name, { data: await t.read({ signal: opts.signal }), rows: t.shape[0], cols: t.shape[1] });
    }
  } finally { await ckpt.close(); }
  const denseMatrixParams = [...weights.values()].reduce((s, w) => s + w.rows * w.cols, 0);

  const dense = await loadModel(modelPath, opts.model);
  try {
    const tok = requireTokenizer(dense);
    const bundled = sampleTextFor(tok.kind);
    const text = opts.text ?? bundled.text;
    const ids = tok.encode(text, { bos: tok.kind === 'sentencepiece' && tok.bos !== undefined });
    const rows: CompressionRow[] = [];
    let denseMetrics: { perplexity: number; accuracy: number } | undefined;
    for (const chi of opts.chis) {
      throwIfAborted(opts.signal);
      opts.onProgress?.(`chi ${chi}: compressing ${matrices.length} matrices`);
      const overrides = new Map<string, Float32Array>();
      let params = 0, errSq = 0, normSq = 0, maxErr = 0;
      for (const [name, w] of weights) {
        const mpo = await decomposeMpo(w.data, w.rows, w.cols, { backend, truncation: { chi }, sites, spectra: 'sweep', signal: opts.signal });
        const back = await reconstructMpo(mpo, backend, opts.signal);
        const e = relativeFrobeniusError(w.data, back);
        const n2 = sumSquares(w.data);
        errSq += e * e * n2; normSq += n2;
        maxErr = Math.max(maxErr, e);
        params += mpo.params;
        overrides.set(name, back);
      }
      opts.onProgress?.(`chi ${chi}: scoring ${ids.length - 1} tokens`);
      const model = await loadModel(modelPath, { ...opts.model, overrides });
      try {
        const c = await compareModels(dense, model, ids, { signal: opts.signal });
        denseMetrics ??= { perplexity: c.reference.perplexity, accuracy: c.reference.accuracy };
        const modelParams = denseModelParams - denseMatrixParams + params;
        rows.push({
          chi, matrixParams: params, matrixRatio: denseMatrixParams / params, modelParams, modelRatio: denseModelParams / modelParams,
          relativeError: Math.sqrt(errSq / normSq), maxRelativeError: maxErr,
          perplexity: c.candidate.perplexity, accuracy: c.candidate.accuracy, accuracyOfDense: c.candidate.accuracy / c.reference.accuracy,
          top1Agreement: c.top1Agreement, klDivergence: c.klDivergence,
        });
      } finally { await model.close(); }
    }
    return {
      model: dense.path, method: 'mpo', sites, matrices, denseMatrixParams, denseModelParams,
      text: { source: opts.text !== undefined ? opts.textName ?? 'text' : bundled.name, characters: text.length, tokens: ids.length },
      dense: denseMetrics ?? { perplexity: NaN, accuracy: NaN },
      rows,
    };
  } finally { await dense.close(); }
}
