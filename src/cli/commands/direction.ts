import * as path from 'node:path';
import { loadModel } from '../../core/evaluate';
import { captureResiduals, readPromptFile, type Pooling } from '../../core/evaluate/activations';
import { directionsBetween, writeDirection } from '../../core/evaluate/directions';
import { numberOpt, parse, table, UsageError, type CliCommand } from '../args';
import { MODEL_OPTIONS, modelOptions, reportTokenizerError } from './eval';

/** The JSON `tensor-scalpel direction --json` prints. */
export interface DirectionJson {
  model: string;
  a: { file: string; prompts: number };
  b: { file: string; prompts: number };
  pooling: Pooling;
  /** Capture points: layer l < L is block l's input, l = L the final norm input. */
  layers: Array<{ layer: number; label: string; norm: number; separation: number }>;
  chosenLayer: number;
  /** 'largest separation' or 'option'. */
  chosenBy: string;
  out: string;
  /** What the .npy holds: the unit direction r / ||r|| or r itself. */
  saved: 'unit' | 'raw';
  dim: number;
}

export const directionCommand: CliCommand = {
  name: 'direction',
  summary: 'Difference-in-means direction between two prompt sets in the residual stream (per layer), saved as .npy for ablation',
  usage: 'tensor-scalpel direction <model> --a FILE --b FILE --out dir.npy [--layer L] [--pool last|mean] [--raw] [--vocab FILE] [--heads N] [--rope-order interleaved|half] [--threads N] [--json]',
  async run(argv, io) {
    return reportTokenizerError(io, async () => {
      const { values, positionals } = parse(argv, {
        a: { type: 'string' },
        b: { type: 'string' },
        out: { type: 'string' },
        layer: { type: 'string' },
        pool: { type: 'string' },
        raw: { type: 'boolean' },
        json: { type: 'boolean' },
        ...MODEL_OPTIONS,
      }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`expected one model file\nusage: ${this.usage}`);
      if (!values.a || !values.b) throw new UsageError(`--a and --b (prompt files, one prompt per line) are required\nusage: ${this.usage}`);
      if (!values.out) throw new UsageError(`--out (the .npy to write) is required\nusage: ${this.usage}`);
      const pooling = (values.pool ?? 'last') as Pooling;
      if (pooling !== 'last' && pooling !== 'mean') throw new UsageError(`--pool expects last or mean, got "${values.pool}"`);
      const layerOpt = numberOpt(values.layer, 'layer', { integer: true, min: 0 });
      const promptsA = await readPromptFile(values.a);
      const promptsB = await readPromptFile(values.b);
      io.progress(`loading ${positionals[0]}`);
      const model = await loadModel(positionals[0], { ...modelOptions(values, io.signal), captureResiduals: true });
      try {
        io.progress(`capturing ${promptsA.length} + ${promptsB.length} prompts`);
        const ca = await captureResiduals(model, promptsA, { pooling, signal: io.signal });
        const cb = await captureResiduals(model, promptsB, { pooling, signal: io.signal });
        const set = directionsBetween(ca, cb);
        if (layerOpt !== undefined && layerOpt >= set.layers.length) {
          throw new UsageError(`--layer ${layerOpt}: the model has capture points 0..${set.layers.length - 1} (${set.layers.length - 1} = the final norm input)`);
        }
        const chosen = layerOpt ?? set.bestLayer;
        const saved = values.raw ? 'raw' : 'unit';
        await writeDirection(values.out, set.directions[chosen], saved);
        const report: DirectionJson = {
          model: model.path,
          a: { file: path.resolve(values.a), prompts: promptsA.length },
          b: { file: path.resolve(values.b), prompts: promptsB.length },
          pooling,
          layers: set.layers.map((l) => ({ layer: l.layer, label: l.label, norm: l.norm, separation: l.separation })),
          chosenLayer: chosen,
          chosenBy: layerOpt !== undefined ? 'option' : 'largest separation',
          out: path.resolve(values.out),
          saved,
          dim: set.dModel,
        };
        if (values.json) {
          io.out(JSON.stringify(report, null, 2));
        } else {
          const rows = [['layer', 'point', '||r||', 'separation', '']];
          for (const l of report.layers) rows.push([String(l.layer), l.label, l.norm.toFixed(4), l.separation.toFixed(3), l.layer === chosen ? '<- saved' : '']);
          io.out(table(rows, ['r', 'l', 'r', 'r', 'l']));
          io.out(`\nr = mean(A) - mean(B) at the ${pooling} token; separation = (mean_A p - mean_B p) / pooled std of p, p = x . r/||r||`);
          io.out(`wrote the ${saved} direction of layer ${chosen} (${report.dim} values) to ${report.out}`);
        }
      } finally {
        await model.close();
      }
      return 0;
    });
  },
};
