import { generateText, loadModel } from '../../core/evaluate';
import { numberOpt, parse, UsageError, type CliCommand } from '../args';
import { MODEL_OPTIONS, modelOptions, reportTokenizerError } from './eval';

export const generateCommand: CliCommand = {
  name: 'generate',
  summary: 'Generate text with a model in onnxruntime (greedy, or temperature / top-k sampling with a seed)',
  usage: 'tensor-scalpel generate <model> [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--seed S] [--vocab FILE] [--rope-order interleaved|half] [--heads N] [--context N] [--threads N] [--json]',
  async run(argv, io) {
    return reportTokenizerError(io, async () => {
      const { values, positionals } = parse(argv, {
        prompt: { type: 'string' },
        tokens: { type: 'string' },
        temperature: { type: 'string' },
        'top-k': { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        ...MODEL_OPTIONS,
      }, this.usage);
      if (positionals.length !== 1) throw new UsageError(`expected one model file\nusage: ${this.usage}`);
      const maxTokens = numberOpt(values.tokens, 'tokens', { integer: true, min: 1, max: 100_000 }) ?? 64;
      const temperature = numberOpt(values.temperature, 'temperature', { min: 0 }) ?? 0;
      const topK = numberOpt(values['top-k'], 'top-k', { integer: true, min: 0 }) ?? 0;
      const seed = numberOpt(values.seed, 'seed', { integer: true, min: 0, max: 2 ** 32 - 1 }) ?? 0;
      const model = await loadModel(positionals[0], modelOptions(values, io.signal));
      try {
        const g = await generateText(model, values.prompt ?? '', { maxTokens, temperature, topK, seed, signal: io.signal });
        if (values.json) {
          io.out(JSON.stringify({
            model: model.path, prompt: values.prompt ?? '', text: g.text, completion: g.completion,
            promptTokens: g.promptIds, tokens: g.ids, stop: g.stop,
            temperature, topK, seed, msPerToken: g.msPerToken, tokensPerSecond: g.tokensPerSecond,
          }, null, 2));
        } else {
          io.out(g.text);
          io.progress(`${g.ids.length} tokens (${g.stop === 'eos' ? 'stopped at EOS' : 'length limit'}), ${g.msPerToken.toFixed(2)} ms/token, ${g.tokensPerSecond.toFixed(1)} tokens/s`);
        }
      } finally {
        await model.close();
      }
      return 0;
    });
  },
};
