/**
 * Evaluation speed of factorized checkpoints in OUR built graphs (factorizedGraph.ts): PicoGPT dense
 * vs low-rank vs MPO, each with ~4x fewer parameters in the block matrices (surgery's global budget,
 * ratio 0.25, written factorized to a temporary folder and removed at the end).
 *
 *   npx tsx bench/eval-factorized.bench.ts                 # 3 rounds, 4,000 held-out characters
 *   npx tsx bench/eval-factorized.bench.ts --rounds 5 --chars 20000
 *
 * Per model: tokens/s of scoreText (windows of 128, stride 128, 1 intra-op thread; median over the
 * rounds, models interleaved per round so machine load hits all alike), the graph's linear-layer
 * MACs per token (graphStats) and the perplexity on the text.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp, readFileSync } from 'node:fs';
import { applyRecipe } from '../src/core/surgery/apply';
import { getLinalgBackend } from '../src/core/linalg';
import { loadModel, requireTokenizer, scoreText, type LanguageModel } from '../src/core/evaluate';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const ROUNDS = Number(arg('rounds', '3'));
const CHARS = Number(arg('chars', '4000'));
const SHARED = path.resolve(__dirname, '../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');
const median = (xs: number[]) => { const s = xs.slice().sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function main(): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-fact-bench-'));
  try {
    const be = await getLinalgBackend('auto');
    const lowrank = path.join(dir, 'pico_lowrank.safetensors'), mpo = path.join(dir, 'pico_mpo.safetensors');
    await applyRecipe({ version: 1, input: PICO, output: { path: lowrank, factorized: true }, budget: { method: 'svd', ratio: 0.25 } }, { backend: be, sidecar: false });
    await applyRecipe({ version: 1, input: PICO, output: { path: mpo, factorized: true }, budget: { method: 'mpo', ratio: 0.25 } }, { backend: be, sidecar: false });
    const models: Array<[string, LanguageModel]> = [['dense', await loadModel(PICO)], ['lowrank', await loadModel(lowrank)], ['mpo', await loadModel(mpo)], ['mpo (densified)', await loadModel(mpo, { densify: true })]];
    const text = readFileSync(path.join(SHARED, 'text/tinyshakespeare.txt'), 'utf8');
    const val = text.slice(Math.floor(0.9 * text.length)).slice(0, CHARS);
    const ids = requireTokenizer(models[0][1]).encode(val);
    const speed = new Map<string, number[]>(models.map(([n]) => [n, []]));
    const ppl = new Map<string, number>();
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < models.length; k++) {
        const [name, m] = models[(k + r) % models.length];
        const s = await scoreText(m, ids);
        speed.get(name)!.push(s.tokensPerSecond);
        ppl.set(name, s.perplexity);
      }
    }
    const dense = median(speed.get('dense')!);
    console.log(`PicoGPT, ${ids.length} tokens of held-out text, ${ROUNDS} rounds, 1 thread\n`);
    console.log('| model | linear params | linear MACs/token | factorized products | perplexity | tokens/s (median) | vs dense |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, m] of models) {
      const st = m.graphStats!;
      const t = median(speed.get(name)!);
      console.log(`| ${name} | ${st.linearParams.toLocaleString('en-US')} | ${st.linearMacsPerToken.toLocaleString('en-US')} | ${st.factorizedLinears} | ${ppl.get(name)!.toFixed(3)} | ${t.toFixed(0)} | ${(t / dense).toFixed(2)}x |`);
    }
    for (const [, m] of models) await m.close();
    await be.dispose();
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
}

void main();
