/**
 * Activation capture: the residual stream of a graph-built model (graphCommon.ts, captureResiduals)
 * at every block's input and at the final norm's input, for a set of prompts.
 *
 * Capture points, for a model with L blocks: index l = 0 .. L-1 is x_l, the [seq, d] tensor ENTERING
 * block l (x_0 = the token embedding, plus the position embedding for GPT-2); index L is the input of
 * the final norm (the last block's output), from which logits = head(norm(x_L)).
 *
 * Pooling over positions, per prompt:
 *   'last': x_l at the last token of the prompt (Arditi et al. 2024 take the post-instruction
 *           positions; for plain prompts the last token is where the next-token decision is made);
 *   'mean': (1 / T) sum_t x_l[t] over all T positions of the prompt.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, throwIfAborted } from '../checkpoint/errors';
import { residualOutputName } from './graphCommon';
import { requireTokenizer, type LanguageModel } from './model';
import { TokenizerError } from './tokenizerChar';

export type Pooling = 'last' | 'mean';

export interface ResidualCapture {
  /** L + 1 capture points (L blocks' inputs, then the final norm input). */
  points: number;
  dModel: number;
  prompts: number;
  pooling: Pooling;
  /** Human labels of the points: "block 0 input", ..., "final norm input". */
  labels: string[];
  /** Per capture point, the pooled activations [prompts, d] row-major (float32). */
  activations: Float32Array[];
  /** Token counts of the prompts as fed (after truncation to the context). */
  tokens: number[];
}

/**
 * Reads a prompt file: one prompt per line; blank lines are skipped; a literal "\n" in a line stands
 * for a newline (so multi-line prompts fit on one line).
 */
export async function readPromptFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw new CheckpointError(path.resolve(file), `cannot read the prompt file: ${(e as Error).message}`);
  }
  const prompts = text.split(/\r?\n/).filter((l) => l.trim() !== '').map((l) => l.replace(/\\n/g, '\n'));
  if (prompts.length === 0) throw new CheckpointError(path.resolve(file), 'the prompt file holds no prompts (expected one per line)');
  return prompts;
}

/** Encodes a prompt as the model sees it (SentencePiece models get BOS first), keeping the last contextLength tokens. */
export function promptIds(model: LanguageModel, prompt: string): number[] {
  const tok = requireTokenizer(model);
  const ids = tok.encode(prompt, { bos: tok.kind === 'sentencepiece' && tok.bos !== undefined });
  if (ids.length === 0) throw new TokenizerError(`the prompt ${JSON.stringify(prompt)} encodes to no tokens`);
  return ids.length > model.contextLength ? ids.slice(ids.length - model.contextLength) : ids;
}

/** Names of the graph outputs for the capture points of a model with `nLayer` blocks. */
export function residualOutputs(nLayer: number): string[] {
  return [...Array.from({ length: nLayer }, (_, l) => residualOutputName(l)), residualOutputName('final')];
}

/**
 * Runs every prompt through `model` (loaded with `captureResiduals: true`) and pools each capture
 * point's [seq, d] activations to one row per prompt (see the file comment).
 */
export async function captureResiduals(
  model: LanguageModel, prompts: ReadonlyArray<string | readonly number[]>,
  opts: { pooling?: Pooling; signal?: AbortSignal } = {},
): Promise<ResidualCapture> {
  const arch = model.architecture;
  if (!arch || !model.run) throw new CheckpointError(model.path, 'activation capture needs a graph built from the checkpoint (GPT-2 / Llama); an ONNX file runs as it is');
  const pooling = opts.pooling ?? 'last';
  const names = residualOutputs(arch.nLayer);
  const d = arch.dModel;
  const acts = names.map(() => new Float32Array(prompts.length * d));
  const tokens: number[] = [];
  for (let p = 0; p < prompts.length; p++) {
    throwIfAborted(opts.signal);
    const pr = prompts[p];
    const ids = typeof pr === 'string' ? promptIds(model, pr) : pr.slice(-model.contextLength);
    tokens.push(ids.length);
    const out = await model.run(ids, names);
    const T = ids.length;
    names.forEach((nm, k) => {
      const x = out[nm];
      if (x.length !== T * d) throw new Error(`${model.path}: ${nm} has ${x.length} values, expected [${T}, ${d}]`);
      const row = acts[k].subarray(p * d, (p + 1) * d);
      if (pooling === 'last') {
        row.set(x.subarray((T - 1) * d, T * d));
      } else {
        const sum = new Float64Array(d);
        for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) sum[j] += x[t * d + j];
        for (let j = 0; j < d; j++) row[j] = sum[j] / T;
      }
    });
  }
  const labels = names.map((_, l) => (l < arch.nLayer ? `block ${l} input` : 'final norm input'));
  return { points: names.length, dModel: d, prompts: prompts.length, pooling, labels, activations: acts, tokens };
}
