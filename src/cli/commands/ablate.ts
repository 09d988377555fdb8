import * as nodePath from 'node:path';
import { open } from '../../core/checkpoint';
import { residualWriters } from '../../core/surgery/ablate';
import { selectorMatcher, type AblateRule, type Recipe } from '../../core/surgery/recipe';
import { numberOpt, parse, UsageError, type CliCommand } from '../args';
import { runRecipe, SURGERY_OPTIONS } from './apply';
import { OUTPUT_OPTIONS, outputFrom } from './compress';

const USAGE = 'tensor-scalpel ablate <in> --out <out> (--direction FILE [--key K] [--writers a,b,...] | --remove-top K) [--tensors GLOB] [--format ...] [--dtype ...] [--backend ...] [--json]\n       tensor-scalpel ablate <in> --list-writers [--json]   (the detected residual-stream writers, to confirm before ablating)';

/**
 * `tensor-scalpel ablate`: directional ablation (Arditi et al. 2024: every residual-stream writer W
 * loses its component along r) or removal of the top-k singular directions of the selected matrices.
 * With --direction, --tensors narrows the detected writers; --writers lists them explicitly.
 */
export const ablateCommand: CliCommand = {
  name: 'ablate',
  summary: 'Ablate a direction from every residual-stream writer, or remove the top-k singular directions',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      ...SURGERY_OPTIONS, ...OUTPUT_OPTIONS,
      'list-writers': { type: 'boolean' }, direction: { type: 'string' }, key: { type: 'string' }, writers: { type: 'string' }, 'remove-top': { type: 'string' }, tensors: { type: 'string' },
    }, USAGE);
    if (positionals.length !== 1) throw new UsageError(`expected one input checkpoint\nusage: ${USAGE}`);
    if (values['list-writers']) {
      const ckpt = await open(nodePath.resolve(positionals[0]));
      try {
        const r = residualWriters(ckpt);
        if (values.json) io.out(JSON.stringify(r, null, 2));
        else {
          io.out(`${r.family} (${r.naming} names), d_model ${r.dModel ?? 'unknown'}${r.layout ? `, ${r.layout} layout` : ''}: ${r.writers.length} residual-stream writers`);
          for (const w of r.writers) io.out(`  ${w.name}  [${w.shape.join(', ')}]  ${w.kind}, residual on axis ${w.residualAxis} (${w.residualAxis === 0 ? 'W <- W - r r^T W' : 'W <- W - W r r^T'})`);
          for (const n of r.notes) io.out(`  note: ${n}`);
        }
      } finally {
        await ckpt.close();
      }
      return 0;
    }
    const k = numberOpt(values['remove-top'], 'remove-top', { integer: true, min: 1 });
    if ((values.direction === undefined) === (k === undefined)) throw new UsageError(`give exactly one of --direction FILE, --remove-top K\nusage: ${USAGE}`);
    const input = nodePath.resolve(positionals[0]);
    let rule: AblateRule;
    if (k !== undefined) {
      if (values.key || values.writers) throw new UsageError('--key and --writers go with --direction');
      rule = { removeTop: k, ...(values.tensors ? { tensors: values.tensors } : {}) };
    } else {
      let writers = values.writers?.split(',').map((s) => s.trim()).filter(Boolean);
      if (values.tensors) {
        if (writers) throw new UsageError('give --writers or --tensors, not both');
        const ckpt = await open(input);
        try {
          const match = selectorMatcher(values.tensors);
          writers = residualWriters(ckpt).writers.map((w) => w.name).filter(match);
        } finally {
          await ckpt.close();
        }
        if (writers.length === 0) throw new UsageError(`--tensors ${values.tensors} matches none of the detected residual writers`);
      }
      rule = { direction: nodePath.resolve(values.direction!), ...(values.key ? { key: values.key } : {}), ...(writers ? { writers } : {}) };
    }
    const recipe: Recipe = { version: 1, input, output: outputFrom(values), ablate: [rule] };
    return runRecipe(recipe, { json: values.json, backend: values.backend }, io);
  },
};
