/**
 * Dense vs factorized ONNX models in onnxruntime-node: does a factorized pico.onnx run faster?
 *
 *   npx tsx bench/factorized.bench.ts                   # 20 interleaved rounds, 1 intra-op thread
 *   npx tsx bench/factorized.bench.ts --rounds 40 --threads 2 --ratio 4
 *
 * Models (written with writeOnnx into a temporary folder, removed at the end):
 *   dense    ../shared/fixtures/pico/pico.onnx as it is;
 *   lowrank  every onnx::MatMul_* weight W [m, n] replaced by a rank-k truncated SVD, k = floor(m n / (ratio (m + n))),
 *            so those weights hold ~1/ratio of their parameters (x @ W -> (x @ a) @ b);
 *   mpo      every onnx::MatMul_* weight as a 2-site MPO (mpo.ts's automatic site plan) with the largest
 *            uniform chi whose parameters fit m n / ratio (x @ W -> Reshape/Transpose/MatMul chain).
 * Timing: one process, the three sessions created up front, a few warm-up runs, then R rounds; in
 * every round each model runs once per shape, in rotating order (interleaved, so load drifts hit all
 * models alike). Reported: median ms per forward pass (and the min), speed-up = dense median /
 * factorized median, and the mean next-character loss of each model on the validation text (the
 * last 10% of tinyshakespeare.txt, the same batch for all) so the speed is shown next to what it costs.
 * Target (issue "Surgery"): >= 1.5x faster at 4x fewer parameters in the MatMul weights.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { writeOnnx, mpoContractionMacs, type OnnxReplacement } from '../src/core/checkpoint/onnxWriter';
import { openOnnx } from '../src/core/checkpoint/onnx';
import { getLinalgBackend } from '../src/core/linalg';
import { lowRankFactors } from '../src/core/analysis/lowrank';
import { decomposeMpo, planSites, mpoParamCount, bondDimensionsForChi } from '../src/core/analysis/mpo';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const ROUNDS = Number(arg('rounds', '20'));
const THREADS = Number(arg('threads', '1'));
const RATIO = Number(arg('ratio', '4'));
const SHARED = path.resolve(__dirname, '../../shared');
const PICO = path.join(SHARED, 'fixtures/pico/pico.onnx');
const SHAPES: Array<[number, number]> = [[1, 128], [8, 128]];

const median = (xs: number[]) => { const s = xs.slice().sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** The validation batch: `batch` windows of `seq` characters from the last 10% of the corpus, and their next characters. */
function validationBatch(batch: number, seq: number): { ids: BigInt64Array; targets: Int32Array } {
  const meta = JSON.parse(readFileSync(path.join(SHARED, 'fixtures/pico/meta.json'), 'utf8')) as { vocab: string[] };
  const index = new Map(meta.vocab.map((c, i) => [c, i]));
  const text = readFileSync(path.join(SHARED, 'text/tinyshakespeare.txt'), 'utf8');
  const val = text.slice(Math.floor(text.length * 0.9));
  const ids = new BigInt64Array(batch * seq), targets = new Int32Array(batch * seq);
  const stride = Math.floor((val.length - seq - 1) / batch);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      ids[b * seq + t] = BigInt(index.get(val[b * stride + t]) ?? 0);
      targets[b * seq + t] = index.get(val[b * stride + t + 1]) ?? 0;
    }
  }
  return { ids, targets };
}

/** Mean cross-entropy -log softmax(logits)[target] in nats. */
function meanLoss(logits: Float32Array, targets: Int32Array, vocab: number): number {
  let sum = 0;
  for (let r = 0; r < targets.length; r++) {
    const o = r * vocab;
    let mx = -Infinity;
    for (let v = 0; v < vocab; v++) mx = Math.max(mx, logits[o + v]);
    let z = 0;
    for (let v = 0; v < vocab; v++) z += Math.exp(logits[o + v] - mx);
    sum += Math.log(z) + mx - logits[o + targets[r]];
  }
  return sum / targets.length;
}

async function main(): Promise<void> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-factorized-bench-'));
  const cleanup = () => fsp.rm(dir, { recursive: true, force: true });
  process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    const backend = await getLinalgBackend('auto');
    const ckpt = await openOnnx(PICO);
    const lowrank = new Map<string, OnnxReplacement>();
    const mpo = new Map<string, OnnxReplacement>();
    const mpoFlops = new Map<string, OnnxReplacement>();
    const params = { dense: 0, lowrank: 0, mpo: 0, mpo_flops: 0 };
    const macs = { dense: 0, lowrank: 0, mpo: 0, mpo_flops: 0 };
    const bestMacs = (o: number[], i: number[], chi: number) => {
      const b = bondDimensionsForChi(o, i, chi);
      return Math.min(mpoContractionMacs(o, i, b, 'rows', 'left-to-right'), mpoContractionMacs(o, i, b, 'rows', 'right-to-left'));
    };
    const t0 = performance.now();
    for (const t of ckpt.tensors) {
      if (!t.name.startsWith('onnx::MatMul_')) continue;
      const [m, n] = t.shape;
      const w = await t.read();
      params.dense += m * n;
      macs.dense += m * n;
      const budget = (m * n) / RATIO;
      const k = Math.max(1, Math.floor(budget / (m + n)));
      const f = await lowRankFactors({ rows: m, cols: n, data: w }, k, backend);
      lowrank.set(t.name, { kind: 'lowrank', a: f.A.data, b: f.B.data });
      params.lowrank += k * (m + n);
      macs.lowrank += k * (m + n);
      // pico's MatMul weights are W [in, out] and y = x @ W contracts the rows: side 'rows'.
      const plan = planSites(m, n, 2);
      const { outFactors: o, inFactors: i } = plan;
      let chiP = 1, chiF = 1;
      while (chiP < 4096 && mpoParamCount(o, i, bondDimensionsForChi(o, i, chiP + 1)) <= budget) chiP++;
      while (chiF < 4096 && bestMacs(o, i, chiF + 1) <= (m * n) / RATIO && bondDimensionsForChi(o, i, chiF + 1)[0] > bondDimensionsForChi(o, i, chiF)[0]) chiF++;
      for (const [chi, map, key] of [[chiP, mpo, 'mpo'], [chiF, mpoFlops, 'mpo_flops']] as const) {
        const d = await decomposeMpo(w, m, n, { backend, outFactors: o, inFactors: i, siteOptions: { allowPadding: true }, truncation: { chi }, spectra: 'sweep' });
        map.set(t.name, { kind: 'mpo', cores: d.cores.map((c) => c.data), coreShapes: d.cores.map((c) => c.shape), outFactors: d.outFactors, inFactors: d.inFactors });
        params[key] += d.params;
        macs[key] += bestMacs(o, i, chi);
      }
    }
    await ckpt.close();
    const files = { dense: PICO, lowrank: path.join(dir, 'pico_lowrank.onnx'), mpo: path.join(dir, 'pico_mpo.onnx'), mpo_flops: path.join(dir, 'pico_mpo_flops.onnx') };
    await writeOnnx(PICO, files.lowrank, { replacements: lowrank });
    await writeOnnx(PICO, files.mpo, { replacements: mpo });
    await writeOnnx(PICO, files.mpo_flops, { replacements: mpoFlops });
    console.error(`factorized + written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const names = Object.keys(files) as Array<keyof typeof files>;
    const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
    const sessions = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await ort.InferenceSession.create(files[n], opts)] as const))) as Record<keyof typeof files, ort.InferenceSession>;
    const feeds = SHAPES.map(([b, s]) => ({ input_ids: new ort.Tensor('int64', validationBatch(b, s).ids, [b, s]) }));
    const times: Record<string, number[]> = {};
    for (let w = 0; w < 3; w++) for (const n of names) for (const f of feeds) await sessions[n].run(f);
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < names.length; j++) {
        const n = names[(r + j) % names.length];
        for (const [si, f] of feeds.entries()) {
          const s = performance.now();
          await sessions[n].run(f);
          (times[`${n}@${si}`] ??= []).push(performance.now() - s);
        }
      }
    }
    const { ids, targets } = validationBatch(8, 128);
    const loss: Record<string, number> = {};
    for (const n of names) {
      const out = await sessions[n].run({ input_ids: new ort.Tensor('int64', ids, [8, 128]) });
      loss[n] = meanLoss(out.logits.data as Float32Array, targets, 65);
    }
    for (const n of names) await sessions[n].release();

    console.log(`\npico.onnx in onnxruntime-node ${ort.env.versions.common}, ${THREADS} intra-op thread(s), ${ROUNDS} interleaved rounds, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}\n`);
    console.log('| model | MatMul-weight params | MatMul MACs per token | val loss (8 x 128) | batch x seq | ms/forward median (min) | speed-up vs dense |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const n of names) {
      for (const [si, [b, s]] of SHAPES.entries()) {
        const t = times[`${n}@${si}`];
        const dm = median(times[`dense@${si}`]);
        const speed = n === 'dense' ? '1.00x' : `${(dm / median(t)).toFixed(2)}x`;
        console.log(`| ${n} | ${params[n].toLocaleString('en-US')} (${(params.dense / params[n]).toFixed(2)}x fewer) | ${macs[n].toLocaleString('en-US')} (${(macs.dense / macs[n]).toFixed(2)}x fewer) | ${loss[n].toFixed(4)} | ${b} x ${s} | ${median(t).toFixed(2)} (${Math.min(...t).toFixed(2)}) | ${speed} |`);
      }
    }
  } finally {
    await cleanup();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
