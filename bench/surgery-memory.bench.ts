/**
 * Peak memory of the streaming apply engine: compress a generated multi-GB safetensors checkpoint and
 * compare the child process's peak RSS with its largest tensor. Target: peak RSS < 3x the largest
 * tensor (the engine holds one tensor, its decomposition's working set and the output buffers).
 *
 *   npx tsx bench/surgery-memory.bench.ts                                  # 8 x [4096, 16384] F32 = 2 GiB, mpo chi 32, dense output
 *   npx tsx bench/surgery-memory.bench.ts --method svd --rank 64 --factorized
 *   npx tsx bench/surgery-memory.bench.ts --tensors 2 --rows 1024 --cols 4096   # a quick small run
 *
 * What it does:
 * - writes the checkpoint into os.tmpdir() with the project's safetensors writer, one tensor at a
 *   time: W = G_1 diag(j^-1) G_2 (rank 64, Gaussian G's, seeded) + 1e-3 Gaussian noise, so the
 *   spectra decay like real weights and the randomized routes of the decompositions are accepted;
 * - a child process (node + tsx) applies the recipe {compress: [{method, chi|rank, tensors: "*"}]}
 *   and prints process.resourceUsage().maxRSS; a second child that loads the same modules and only
 *   opens the checkpoint is the baseline;
 * - reports wall time, peak RSS, peak RSS / largest tensor, PASS when < 3; removes the files
 *   (also on Ctrl-C) unless --keep.
 * Not part of `npm test` (minutes of work, 2 GiB of disk per run).
 *
 * Measured 2026-11-23 on the shared 2-core VM (native OpenBLAS backend, Node 20), input 8 x [4096, 16384]
 * F32 = 2048 MiB, largest tensor 256 MiB; "baseline" = a child that loads the modules, the linalg
 * backend and opens the file (280 MiB, most of it OpenBLAS / onnxruntime start-up):
 *
 * | recipe            | output     | wall time | peak RSS | peak / largest | target |      |
 * | ----------------- | ---------- | --------- | -------- | -------------- | ------ | ---- |
 * | mpo chi 32        | dense      | 48.7 s    | 741 MiB  | 2.89x          | < 3x   | PASS |
 * | mpo chi 32        | factorized | 23.3 s    | 702 MiB  | 2.74x          | < 3x   | PASS |
 * | svd rank 64       | dense      | 34.5 s    | 607 MiB  | 2.37x          | < 3x   | PASS |
 *
 * Before the engine reused the input's buffer for the dense reconstruction (a new 256 MiB array per
 * tensor, plus analysis/mpo.ts reconstructMpo's two full-size intermediates): mpo dense 821 MiB (3.21x,
 * FAIL), svd dense 773 MiB (3.02x). What remains for the MPO is the input W and decomposeMpo's
 * permuted copy P (2 x 256 MiB) plus the process baseline; an in-place permutation in analysis/mpo.ts
 * would be the next saving.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const MiB = 1024 * 1024;

async function child(): Promise<void> {
  const [file, out, mode] = process.argv.slice(process.argv.indexOf('--child') + 1);
  const t0 = Date.now();
  const { open } = await import('../src/core/checkpoint');
  const { applyRecipe } = await import('../src/core/surgery/apply');
  const { getLinalgBackend } = await import('../src/core/linalg');
  const backend = await getLinalgBackend();
  let result: unknown = null;
  if (mode === 'baseline') {
    const c = await open(file);
    await c.close();
  } else {
    const method = arg('method', 'mpo') as 'mpo' | 'svd';
    const r = await applyRecipe({
      version: 1, input: file, output: { path: out, factorized: flag('factorized') },
      compress: [method === 'mpo' ? { method, chi: Number(arg('chi', '32')), tensors: '*' } : { method, rank: Number(arg('rank', '64')), tensors: '*' }],
    }, { backend, onProgress: (p) => { if (p.phase === 'write') process.stderr.write(`  [${((Date.now() - t0) / 1000).toFixed(1)} s] ${p.message}, rss ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB\n`); } });
    result = { totals: r.totals, errors: r.tensors.map((t) => t.relativeError) };
  }
  await backend.dispose();
  process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, seconds: (Date.now() - t0) / 1000, result }) + '\n');
}

async function main(): Promise<void> {
  const { writeSafetensors } = await import('../src/core/checkpoint/safetensorsWriter');
  const { getLinalgBackend, GaussianRng } = await import('../src/core/linalg');
  const count = Number(arg('tensors', '8')), rows = Number(arg('rows', '4096')), cols = Number(arg('cols', '16384'));
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'surgery-mem-'));
  const file = path.join(dir, 'big.safetensors');
  const out = path.join(dir, 'big_out.safetensors');
  const cleanup = async () => { if (!flag('keep')) await fsp.rm(dir, { recursive: true, force: true }); };
  process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    const backend = await getLinalgBackend();
    const rank = 64;
    const t0 = Date.now();
    await writeSafetensors(file, Array.from({ length: count }, (_, k) => ({
      name: `layers.${k}.weight`, shape: [rows, cols], dtype: 'F32',
      data: async () => {
        const rng = new GaussianRng(1000 + k);
        const g1 = rng.fill(new Float32Array(rows * rank));
        const g2 = rng.fill(new Float32Array(rank * cols));
        for (let j = 0; j < rank; j++) for (let c = 0; c < cols; c++) g2[j * cols + c] /= (j + 1) * Math.sqrt(cols);
        const w = (await backend.gemm({ rows, cols: rank, data: g1 }, { rows: rank, cols, data: g2 })).data;
        for (let i = 0; i < w.length; i++) w[i] += 1e-3 * (rng.uniform() - 0.5) * 3.46;
        return w;
      },
    })), { inputs: [] });
    await backend.dispose();
    const bytes = (await fsp.stat(file)).size;
    const largest = rows * cols * 4;
    console.error(`wrote ${file}: ${(bytes / MiB).toFixed(0)} MiB, ${count} tensors of [${rows}, ${cols}] F32 (${(largest / MiB).toFixed(0)} MiB each) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const run = (mode: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', file, out, mode, ...process.argv.slice(2)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * MiB });
      if (r.status !== 0) throw new Error(`child ${mode} failed with ${r.status}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { maxRssKiB: number; seconds: number; result: { totals: { totalParams: number; originalParams: number; ratio: number }; errors: number[] } | null };
    };
    const base = run('baseline');
    const res = run('apply');
    const peak = res.maxRssKiB * 1024;
    const method = arg('method', 'mpo');
    const what = method === 'mpo' ? `mpo chi ${arg('chi', '32')}` : `svd rank ${arg('rank', '64')}`;
    const ratio = peak / largest;
    console.log(`| input | largest tensor | recipe | output | wall time | peak RSS (child) | baseline (open only) | peak / largest | target | |`);
    console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
    console.log(`| ${count} x [${rows}, ${cols}] F32, ${(bytes / MiB).toFixed(0)} MiB | ${(largest / MiB).toFixed(0)} MiB | ${what} | ${flag('factorized') ? 'factorized' : 'dense'} | ${res.seconds.toFixed(1)} s | ${(peak / MiB).toFixed(0)} MiB | ${(base.maxRssKiB / 1024).toFixed(0)} MiB | ${ratio.toFixed(2)}x | < 3x | ${ratio < 3 ? 'PASS' : 'FAIL'} |`);
    const errs = res.result!.errors;
    console.log(`\nparameters ${res.result!.totals.totalParams.toLocaleString('en-US')} of ${res.result!.totals.originalParams.toLocaleString('en-US')} (ratio ${res.result!.totals.ratio.toFixed(4)}), relative errors ${Math.min(...errs).toExponential(2)} .. ${Math.max(...errs).toExponential(2)}`);
  } finally {
    await cleanup();
  }
}

if (process.argv.includes('--child')) void child();
else void main();
