/**
 * One call that does what `tensor-scalpel eval` and the UI's "Evaluate" show: tokenise a text (the
 * user's, or the bundled sample), score the model (perplexity, next-token accuracy, throughput),
 * compare it with an original when given (KL, top-1 agreement), and put greedy generations of both
 * side by side.
 */
import { CheckpointError } from '../checkpoint/errors';
import { generate } from './generate';
import { compareModels, scoreText, type TextMetrics, type WindowOptions } from './metrics';
import { requireTokenizer, type LanguageModel } from './model';
import { sampleTextFor } from './sampleText';

export interface EvaluateOptions extends WindowOptions {
  /** The text to score; default the bundled sample for the tokenizer's kind. */
  text?: string;
  /** How to name the text in the report (a file name). */
  textName?: string;
  /** Score at most this many targets (the first N + 1 tokens of the text). */
  maxTokens?: number;
  /** Length of each greedy sample (default 48 tokens; 0 = no samples). */
  sampleTokens?: number;
}

export interface EvaluationSample {
  prompt: string;
  model: string;
  against?: string;
}

export interface EvaluationReport {
  model: string;
  against: string | null;
  text: { source: string; characters: number; tokens: number };
  /** Targets scored. */
  tokens: number;
  window: number;
  stride: number;
  perplexity: number;
  meanNll: number;
  accuracy: number;
  /** mean KL(p_against || p_model) in nats; null without --against. */
  klDivergence: number | null;
  top1Agreement: number | null;
  /** Tokens through the model per second while scoring (all window inputs). */
  tokensPerSecond: number;
  /** Generation latency: one full-prefix run per new token, averaged over the samples. */
  msPerToken: number | null;
  /** The original's own scores on the same text. */
  againstMetrics: { perplexity: number; accuracy: number; tokensPerSecond: number } | null;
  samples: EvaluationSample[];
}

/** Greedy-sample prompts: BOS alone where there is one, and the opening words of the text. */
function samplePrompts(text: string, hasBos: boolean): string[] {
  const prompts: string[] = hasBos ? [''] : [];
  const head = text.slice(0, 40);
  const cut = head.lastIndexOf(' ');
  prompts.push(cut > 8 ? head.slice(0, cut) : head);
  return prompts;
}

export async function evaluateModel(model: LanguageModel, against: LanguageModel | undefined, opts: EvaluateOptions = {}): Promise<EvaluationReport> {
  // The original's tokenizer defines the text's tokens when comparing (the edit kept its vocabulary).
  if (against && against.vocabSize !== model.vocabSize) {
    throw new CheckpointError(model.path, `its vocabulary has ${model.vocabSize} tokens, the original's (${against.path}) ${against.vocabSize}: KL and top-1 agreement need the same vocabulary`);
  }
  const tok = requireTokenizer(against ?? model);
  const bundled = sampleTextFor(tok.kind);
  const text = opts.text ?? bundled.text;
  const source = opts.text !== undefined ? opts.textName ?? 'text' : bundled.name;
  const allIds = tok.encode(text, { bos: tok.kind === 'sentencepiece' && tok.bos !== undefined });
  const ids = opts.maxTokens !== undefined ? allIds.slice(0, opts.maxTokens + 1) : allIds;
  let m: TextMetrics;
  let ref: TextMetrics | undefined;
  let kl: number | null = null, agree: number | null = null;
  if (against) {
    const c = await compareModels(against, model, ids, opts);
    m = c.candidate; ref = c.reference; kl = c.klDivergence; agree = c.top1Agreement;
  } else {
    m = await scoreText(model, ids, opts);
  }
  const samples: EvaluationSample[] = [];
  let genSeconds = 0, genTokens = 0;
  const n = opts.sampleTokens ?? 48;
  if (n > 0) {
    for (const prompt of samplePrompts(text, tok.bos !== undefined && tok.kind === 'sentencepiece')) {
      const promptIds = tok.encode(prompt, { bos: tok.kind === 'sentencepiece' && tok.bos !== undefined });
      if (promptIds.length === 0) continue;
      const g = await generate(model, promptIds, { maxTokens: n, eos: tok.eos, signal: opts.signal });
      genSeconds += g.seconds; genTokens += g.ids.length;
      const sample: EvaluationSample = { prompt, model: tok.decode([...promptIds, ...g.ids]) };
      if (against) {
        const a = await generate(against, promptIds, { maxTokens: n, eos: tok.eos, signal: opts.signal });
        sample.against = tok.decode([...promptIds, ...a.ids]);
      }
      samples.push(sample);
    }
  }
  return {
    model: model.path,
    against: against?.path ?? null,
    text: { source, characters: text.length, tokens: allIds.length },
    tokens: m.tokens, window: m.window, stride: m.stride,
    perplexity: m.perplexity, meanNll: m.meanNll, accuracy: m.accuracy,
    klDivergence: kl, top1Agreement: agree,
    tokensPerSecond: m.tokensPerSecond,
    msPerToken: genTokens > 0 ? (genSeconds * 1000) / genTokens : null,
    againstMetrics: ref ? { perplexity: ref.perplexity, accuracy: ref.accuracy, tokensPerSecond: ref.tokensPerSecond } : null,
    samples,
  };
}
