import * as nodePath from 'node:path';
import type { OutputFormat, Recipe, RecipeOutput } from '../../core/surgery/recipe';
import { numberOpt, parse, UsageError, type CliCommand } from '../args';
import { runRecipe, SURGERY_OPTIONS } from './apply';

const USAGE = 'tensor-scalpel compress <in> --out <out> --method mpo|svd (--chi N | --rank K | --error E | --ratio R) [--tensors GLOB] [--sites N] [--floor F] [--factorized] [--format safetensors|gguf|onnx] [--dtype F32|F16|BF16|Q8_0] [--backend auto|native|portable] [--json]';

/** Output options shared by the commands that write a checkpoint. */
export function outputFrom(values: { out?: string; format?: string; dtype?: string; factorized?: boolean }): RecipeOutput {
  if (!values.out) throw new UsageError('--out <file> is required');
  const out: RecipeOutput = { path: nodePath.resolve(values.out) };
  if (values.format !== undefined) {
    if (!['safetensors', 'gguf', 'onnx'].includes(values.format)) throw new UsageError(`--format expects safetensors, gguf or onnx, got "${values.format}"`);
    out.format = values.format as OutputFormat;
  }
  if (values.dtype !== undefined) out.dtype = values.dtype.toUpperCase();
  if (values.factorized) out.factorized = true;
  return out;
}

export const OUTPUT_OPTIONS = {
  out: { type: 'string' },
  format: { type: 'string' },
  dtype: { type: 'string' },
} as const;

/**
 * `tensor-scalpel compress`: MPO (tensor-train) or low-rank SVD compression of the selected matrices
 * (default: the 2-D matrices of the transformer blocks) at a fixed chi / rank, an error target, or a
 * global parameter ratio spread over the layers by their spectra (--ratio = fraction kept).
 */
export const compressCommand: CliCommand = {
  name: 'compress',
  summary: 'Compress weight matrices as MPOs (bond dimension chi) or low-rank SVD; fixed, error-targeted or a global budget',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      ...SURGERY_OPTIONS, ...OUTPUT_OPTIONS,
      method: { type: 'string' }, chi: { type: 'string' }, rank: { type: 'string' }, error: { type: 'string' }, ratio: { type: 'string' },
      tensors: { type: 'string' }, sites: { type: 'string' }, floor: { type: 'string' }, factorized: { type: 'boolean' },
    }, USAGE);
    if (positionals.length !== 1) throw new UsageError(`expected one input checkpoint\nusage: ${USAGE}`);
    const method = values.method;
    if (method !== 'mpo' && method !== 'svd') throw new UsageError(`--method expects mpo or svd, got ${method === undefined ? 'nothing' : `"${method}"`}`);
    const chi = numberOpt(values.chi, 'chi', { integer: true, min: 1 });
    const rank = numberOpt(values.rank, 'rank', { integer: true, min: 1 });
    const error = numberOpt(values.error, 'error', { min: 0, max: 1 });
    const ratio = numberOpt(values.ratio, 'ratio', { min: 0, max: 1 });
    const sites = numberOpt(values.sites, 'sites', { integer: true, min: 1, max: 64 });
    const floor = numberOpt(values.floor, 'floor', { min: 0, max: 1 });
    const given = [['chi', chi], ['rank', rank], ['error', error], ['ratio', ratio]].filter(([, v]) => v !== undefined).map(([k]) => `--${k}`);
    if (given.length !== 1) throw new UsageError(`give exactly one of --chi, --rank, --error, --ratio${given.length ? ` (got ${given.join(', ')})` : ''}\nusage: ${USAGE}`);
    if (method === 'svd' && chi !== undefined) throw new UsageError('--chi is for --method mpo; svd takes --rank');
    if (method === 'mpo' && rank !== undefined) throw new UsageError('--rank is for --method svd; mpo takes --chi');
    if (ratio === 0) throw new UsageError('--ratio is the fraction of parameters kept: 0 < R <= 1 (0.25 = 4x fewer)');
    if (floor !== undefined && ratio === undefined) throw new UsageError('--floor goes with --ratio');
    if (sites !== undefined && method !== 'mpo') throw new UsageError('--sites is for --method mpo');
    const tensors = values.tensors;
    const recipe: Recipe = { version: 1, input: nodePath.resolve(positionals[0]), output: outputFrom(values) };
    if (ratio !== undefined) {
      recipe.budget = { method, ratio, ...(floor !== undefined ? { floor } : {}), ...(tensors ? { tensors } : {}), ...(sites !== undefined ? { sites } : {}) };
    } else {
      recipe.compress = [{
        method, ...(tensors ? { tensors } : {}), ...(chi !== undefined ? { chi } : {}), ...(rank !== undefined ? { rank } : {}),
        ...(error !== undefined ? { error } : {}), ...(sites !== undefined ? { sites } : {}),
      }];
    }
    return runRecipe(recipe, { json: values.json, backend: values.backend }, io);
  },
};
