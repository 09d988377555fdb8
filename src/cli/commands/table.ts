import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '../../core/checkpoint/errors';
import { compressionTable } from '../../core/evaluate/compressionTable';
import { listOpt, numberOpt, parse, table, UsageError, type CliCommand } from '../args';
import { MODEL_OPTIONS, modelOptions, reportTokenizerError } from './eval';

/** Characters of the held-out text scored by default (the whole held-out part with --full). */
export const DEFAULT_TABLE_CHARS = 20_000;

export const compressionTableCommand: CliCommand = {
  name: 'table',
  summary: 'Compression table: MPO-compress the block matrices at several chi (in memory) and report params, ratio, error, perplexity, top-1 agreement',
  usage: 'tensor-scalpel table <model> --method mpo --chi 4,8,16,32 [--sites N] [--text FILE [--held-out F] [--chars N | --full]] [--vocab FILE] [--heads N] [--threads N] [--json]',
  async run(argv, io) {
    return reportTokenizerError(io, async () => {
      const { values, positionals } = parse(argv, {
        method: { type: 'string' },
        chi: { type: 'string' },
        sites: { type: 'string' },
        text: { type: 'string' },
        'held-out': { type: 'string' },
        chars: { type: 'string' },
        full: { type: 'boolean' },
        json: { type: 'boolean' },
        ...MODEL_OPTIONS,
      }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`expected one model file\nusage: ${this.usage}`);
      const method = values.method ?? 'mpo';
      if (method !== 'mpo') throw new UsageError(`--method: only mpo is supported by the table (got "${method}")`);
      const chis = listOpt(values.chi ?? '4,8,16,32', 'chi')!;
      const sites = numberOpt(values.sites, 'sites', { integer: true, min: 2 });
      const heldOut = numberOpt(values['held-out'], 'held-out', { min: 0, max: 1 }) ?? 0.1;
      const chars = numberOpt(values.chars, 'chars', { integer: true, min: 2 });
      if (chars !== undefined && values.full) throw new UsageError('--chars and --full exclude each other');
      // A given text is scored on its held-out tail (default the last 10%, PicoGPT's validation split),
      // the first DEFAULT_TABLE_CHARS characters of it unless --full / --chars say otherwise.
      let text: string | undefined, textName: string | undefined;
      if (values.text !== undefined) {
        let all: string;
        try {
          all = await fsp.readFile(values.text, 'utf8');
        } catch (e) {
          throw new CheckpointError(path.resolve(values.text), `cannot read the text: ${(e as Error).message}`);
        }
        const tail = all.slice(Math.floor((1 - heldOut) * all.length));
        const limit = values.full ? tail.length : chars ?? DEFAULT_TABLE_CHARS;
        text = tail.slice(0, limit);
        textName = `${path.basename(values.text)}, last ${(heldOut * 100).toFixed(0)}%${text.length < tail.length ? `, first ${text.length.toLocaleString('en-US')} characters` : ''}`;
      }
      const opts = modelOptions(values, io.signal);
      const r = await compressionTable(positionals[0], { chis, sites, text, textName, model: opts, signal: io.signal, onProgress: (m) => io.progress(m) });
      if (values.json) {
        io.out(JSON.stringify(r, null, 2));
        return 0;
      }
      io.out(`${r.model}: MPO (${r.sites} sites) of ${r.matrices.length} block matrices (${r.denseMatrixParams.toLocaleString('en-US')} of ${r.denseModelParams.toLocaleString('en-US')} parameters)`);
      io.out(`text: ${r.text.source} (${r.text.tokens.toLocaleString('en-US')} tokens); dense perplexity ${r.dense.perplexity.toFixed(3)}, accuracy ${(100 * r.dense.accuracy).toFixed(1)}%\n`);
      const rows = [['chi', 'matrix params', 'x fewer', 'model params', 'x fewer', 'rel. error', 'perplexity', 'accuracy', '% of dense acc.', 'top-1 agree', 'KL (nats)']];
      for (const x of r.rows) {
        rows.push([
          String(x.chi), x.matrixParams.toLocaleString('en-US'), `${x.matrixRatio.toFixed(1)}x`, x.modelParams.toLocaleString('en-US'), `${x.modelRatio.toFixed(2)}x`,
          x.relativeError.toFixed(4), x.perplexity.toFixed(3), `${(100 * x.accuracy).toFixed(1)}%`, `${(100 * x.accuracyOfDense).toFixed(1)}%`,
          `${(100 * x.top1Agreement).toFixed(1)}%`, x.klDivergence.toFixed(4),
        ]);
      }
      io.out(table(rows, ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
      return 0;
    });
  },
};
