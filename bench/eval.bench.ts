/**
 * Evaluation speed and the full-split PicoGPT perplexity.
 *
 *   npx tsx bench/eval.bench.ts              # 3 generation runs per model, median reported
 *   npx tsx bench/eval.bench.ts --runs 5 --threads 2
 *
 * For PicoGPT dense, built by us from pico.safetensors and run as exported (pico.onnx); and for
 * stories260K (our graph from the GGUF, and its exported .onnx):
 * - graph build + session creation time (ours) / session creation (ONNX as is);
 * - scoring throughput: tokens through the model per second over the evaluation windows (PicoGPT:
 *   the whole validation split, the last 10% of tinyshakespeare, 111,539 targets in windows of 128,
 *   also giving the full-split perplexity to compare with exp(final_val_loss) = exp(1.740));
 * - generation: greedy, 128 new tokens after a short prompt, one full-prefix run per token (no KV
 *   cache): ms per token and tokens/s, median of --runs.
 * The factorized (MPO / low-rank) variant is to be added when surgery writes one.
 * Not part of `npm test`.
 */
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { generate, loadModel, requireTokenizer, scoreText } from '../src/core/evaluate';

const SHARED = path.resolve(__dirname, '../../shared');
const PICO = path.join(SHARED, 'fixtures/pico');
const STORIES = path.join(SHARED, 'fixtures/stories260k');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const threads = arg('threads', 1);
  const corpus = readFileSync(path.join(SHARED, 'text/tinyshakespeare.txt'), 'utf8');
  const val = corpus.slice(Math.floor(0.9 * corpus.length));
  const picoLoss = JSON.parse(readFileSync(path.join(PICO, 'meta.json'), 'utf8')).final_val_loss as number;
  const story = 'Once upon a time, there was a little girl named Lily. She liked to play with her ball in the garden. '.repeat(12);

  const rows: string[][] = [];
  const cases: Array<{ label: string; file: string; text: string; prompt: string }> = [
    { label: 'PicoGPT, our graph from pico.safetensors', file: path.join(PICO, 'pico.safetensors'), text: val, prompt: 'ROMEO:\n' },
    { label: 'PicoGPT, pico.onnx as exported', file: path.join(PICO, 'pico.onnx'), text: val, prompt: 'ROMEO:\n' },
    { label: 'stories260K, our graph from the GGUF', file: path.join(SHARED, 'fixtures/real/stories260K.gguf'), text: story, prompt: 'Once upon a time' },
    { label: 'stories260K, stories260K.onnx as exported', file: path.join(STORIES, 'stories260K.onnx'), text: story, prompt: 'Once upon a time' },
  ];
  for (const c of cases) {
    const t0 = performance.now();
    const m = await loadModel(c.file, { threads });
    const loadMs = performance.now() - t0;
    try {
      const tok = requireTokenizer(m);
      const ids = tok.encode(c.text, { bos: tok.kind === 'sentencepiece' });
      const window = Math.min(m.contextLength, 256);
      const s = await scoreText(m, ids, { window });
      const promptIds = tok.encode(c.prompt, { bos: tok.kind === 'sentencepiece' });
      const gen: number[] = [];
      for (let r = 0; r < runs; r++) {
        const g = await generate(m, promptIds, { maxTokens: 128, stopAtEos: false });
        gen.push(g.msPerToken);
      }
      const ms = median(gen);
      const ppl = c.text === val ? `${s.perplexity.toFixed(4)} (NLL ${s.meanNll.toFixed(4)}; target exp(${picoLoss.toFixed(3)}) = ${Math.exp(picoLoss).toFixed(4)}, ${((s.perplexity / Math.exp(picoLoss) - 1) * 100).toFixed(2)}%)` : s.perplexity.toFixed(3);
      rows.push([c.label, loadMs.toFixed(0), `${s.tokens.toLocaleString('en-US')} / W ${s.window}`, s.tokensPerSecond.toFixed(0), ms.toFixed(2), (1000 / ms).toFixed(0), ppl]);
      process.stderr.write(`done: ${c.label}\n`);
    } finally {
      await m.close();
    }
  }
  console.log(`\nNode ${process.version}, onnxruntime-node intra-op threads ${threads}, generation median of ${runs}\n`);
  console.log('| model | load + build, ms | scored targets / window | scoring tokens/s | generation ms/token (128 new) | generation tokens/s | perplexity |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
