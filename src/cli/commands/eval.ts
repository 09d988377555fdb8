import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { evaluateModel, loadModel, TokenizerError, type LanguageModel, type LoadModelOptions, type RopeOrder } from '../../core/evaluate';
import { CheckpointError } from '../../core/checkpoint/errors';
import { numberOpt, parse, table, UsageError, type CliCommand, type CliIO } from '../args';

/** Options shared by `eval` and `generate`: how to load a model for running. */

export const MODEL_OPTIONS = {
  vocab: { type: 'string' },
  'rope-order': { type: 'string' },
  heads: { type: 'string' },
  context: { type: 'string' },
  threads: { type: 'string' },
} as const;

export function modelOptions(values: { vocab?: string; 'rope-order'?: string; heads?: string; context?: string; threads?: string }, signal: AbortSignal): LoadModelOptions {
  const rope = values['rope-order'];
  if (rope !== undefined && rope !== 'interleaved' && rope !== 'half') throw new UsageError(`--rope-order expects interleaved or half, got "${rope}"`);
  return {
    vocabPath: values.vocab,
    ropeOrder: rope as RopeOrder | undefined,
    nHead: numberOpt(values.heads, 'heads', { integer: true, min: 1 }),
    contextLength: numberOpt(values.context, 'context', { integer: true, min: 2 }),
    threads: numberOpt(values.threads, 'threads', { integer: true, min: 1, max: 64 }),
    signal,
  };
}

/** Text a tokenizer cannot encode (a character outside the vocabulary, an empty prompt) is an input error: message, exit 1. */
export async function reportTokenizerError(io: CliIO, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof TokenizerError) { io.err(`error: ${e.message}`); return 1; }
    throw e;
  }
}

const fmt = (x: number | null, digits = 4) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));

export const evalCommand: CliCommand = {
  name: 'eval',
  summary: 'Run a model in onnxruntime: perplexity, next-token accuracy, speed; against an original: KL and top-1 agreement',
  usage: 'tensor-scalpel eval <model> [--against <model>] [--text FILE] [--tokens N] [--window W] [--stride S] [--sample-tokens N] [--vocab FILE] [--rope-order interleaved|half] [--heads N] [--context N] [--threads N] [--json]',
  async run(argv, io) {
    return reportTokenizerError(io, async () => {
      const { values, positionals } = parse(argv, {
        against: { type: 'string' },
        text: { type: 'string' },
        tokens: { type: 'string' },
        window: { type: 'string' },
        stride: { type: 'string' },
        'sample-tokens': { type: 'string' },
        json: { type: 'boolean' },
        ...MODEL_OPTIONS,
      }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`expected one model file\nusage: ${this.usage}`);
      const maxTokens = numberOpt(values.tokens, 'tokens', { integer: true, min: 1 });
      const window = numberOpt(values.window, 'window', { integer: true, min: 1 });
      const stride = numberOpt(values.stride, 'stride', { integer: true, min: 1 });
      if (window !== undefined && stride !== undefined && stride > window) throw new UsageError('--stride must not exceed --window');
      const sampleTokens = numberOpt(values['sample-tokens'], 'sample-tokens', { integer: true, min: 0 });
      let text: string | undefined;
      if (values.text !== undefined) {
        try {
          text = await fsp.readFile(values.text, 'utf8');
        } catch (e) {
          throw new CheckpointError(path.resolve(values.text), `cannot read the text: ${(e as Error).message}`);
        }
      }
      const opts = modelOptions(values, io.signal);
      const models: LanguageModel[] = [];
      try {
        io.progress(`loading ${positionals[0]}`);
        const model = await loadModel(positionals[0], opts);
        models.push(model);
        let against: LanguageModel | undefined;
        if (values.against !== undefined) {
          io.progress(`loading ${values.against}`);
          against = await loadModel(values.against, opts);
          models.push(against);
        }
        let lastPct = -1;
        const r = await evaluateModel(model, against, {
          text, textName: values.text, maxTokens, window, stride, sampleTokens, signal: io.signal,
          onProgress: (done, total) => {
            const pct = Math.floor((100 * done) / total / 10) * 10;
            if (pct !== lastPct) { lastPct = pct; io.progress(`scored ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} tokens`); }
          },
        });
        if (values.json) {
          io.out(JSON.stringify(r, null, 2));
        } else {
          io.out(`${r.model}${r.against ? `\nagainst ${r.against}` : ''}`);
          io.out(`text: ${r.text.source} (${r.text.characters.toLocaleString('en-US')} characters, ${r.text.tokens.toLocaleString('en-US')} tokens); scored ${r.tokens.toLocaleString('en-US')} targets in windows of ${r.window}, stride ${r.stride}\n`);
          const rows = [['metric', 'model', ...(r.againstMetrics ? ['against'] : [])]];
          rows.push(['perplexity', fmt(r.perplexity), ...(r.againstMetrics ? [fmt(r.againstMetrics.perplexity)] : [])]);
          rows.push(['next-token accuracy', fmt(r.accuracy), ...(r.againstMetrics ? [fmt(r.againstMetrics.accuracy)] : [])]);
          rows.push(['tokens/s (scoring)', fmt(r.tokensPerSecond, 0), ...(r.againstMetrics ? [fmt(r.againstMetrics.tokensPerSecond, 0)] : [])]);
          rows.push(['ms/token (generation)', fmt(r.msPerToken, 2), ...(r.againstMetrics ? [''] : [])]);
          if (r.klDivergence !== null) rows.push(['KL(against || model), nats', fmt(r.klDivergence, 6), '']);
          if (r.top1Agreement !== null) rows.push(['top-1 agreement', fmt(r.top1Agreement), '']);
          io.out(table(rows, ['l', 'r', 'r']));
          for (const s of r.samples) {
            io.out(`\nprompt ${JSON.stringify(s.prompt)}:\n  model:   ${JSON.stringify(s.model)}`);
            if (s.against !== undefined) io.out(`  against: ${JSON.stringify(s.against)}`);
          }
        }
      } finally {
        for (const m of models) await m.close();
      }
      return 0;
    });
  },
};
