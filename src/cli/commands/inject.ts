import * as nodePath from 'node:path';
import type { Recipe } from '../../core/surgery/recipe';
import { numberOpt, parse, UsageError, type CliCommand } from '../args';
import { runRecipe, SURGERY_OPTIONS } from './apply';
import { OUTPUT_OPTIONS, outputFrom } from './compress';

const USAGE = 'tensor-scalpel inject <in> --out <out> --tensor NAME --strength S [--seed N] [--format ...] [--dtype ...] [--json]';

/**
 * `tensor-scalpel inject`: the "censorship virus" of the tensor-scalpel demo, W <- W + s u v^T with
 * seeded random unit vectors u, v — a loud rank-1 direction that `ablate --remove-top 1` finds again.
 */
export const injectCommand: CliCommand = {
  name: 'inject',
  summary: 'Inject a rank-1 perturbation s u v^T (seeded unit vectors) into one matrix',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      ...SURGERY_OPTIONS, ...OUTPUT_OPTIONS, tensor: { type: 'string' }, strength: { type: 'string' }, seed: { type: 'string' },
    }, USAGE);
    if (positionals.length !== 1) throw new UsageError(`expected one input checkpoint\nusage: ${USAGE}`);
    if (!values.tensor) throw new UsageError(`--tensor NAME is required\nusage: ${USAGE}`);
    const strength = numberOpt(values.strength, 'strength');
    if (strength === undefined) throw new UsageError(`--strength S is required\nusage: ${USAGE}`);
    const seed = numberOpt(values.seed, 'seed', { integer: true, min: 0 });
    const recipe: Recipe = {
      version: 1, input: nodePath.resolve(positionals[0]), output: outputFrom(values),
      inject: [{ tensor: values.tensor, strength, ...(seed !== undefined ? { seed } : {}) }],
    };
    return runRecipe(recipe, { json: values.json, backend: values.backend }, io);
  },
};
