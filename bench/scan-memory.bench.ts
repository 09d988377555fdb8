/**
 * Peak memory of a whole-checkpoint spectrum scan (issue "spectral engine": "Scanning all tensors of a
 * checkpoint ... peak memory stays near the largest tensor, not the model").
 *
 *   npx tsx bench/scan-memory.bench.ts                      # ~1.5 GiB: 6 x [4096, 16384] F32, 2 workers, mode 'estimate'
 *   npx tsx bench/scan-memory.bench.ts --gb 3               # 12 tensors of the same shape: the peak should not move
 *   npx tsx bench/scan-memory.bench.ts --gb 0.1 --rows 1024 --cols 4096   # a quick small run
 *   options: --workers 2 --mode estimate|auto|exact --keep
 *
 * What it does:
 * - writes a real safetensors file into os.tmpdir(), streaming: the header (buildSafetensorsHeader),
 *   then every tensor in 8 MiB chunks of uniform(-1, 1) values from a seeded xorshift32 (so the parent
 *   never holds a whole tensor, and writing 1.5 GiB costs seconds), plus two [64, 64] "probe" tensors;
 * - child processes (node --import tsx this file --child ...) each print process.resourceUsage().maxRSS:
 *   - 'open':  loads the scan modules and opens the checkpoint, scans nothing (the baseline the issue's
 *              "peak minus baseline" is measured against);
 *   - 'pool':  the same, plus a scan restricted to the two probe tensors, so both workers have started,
 *              loaded their modules and the linalg backend (the fixed cost of a pool, for reference);
 *   - 'scan':  scanSpectra over every matrix with a pool of `workers` worker_threads.
 *   Worker threads live in the child's process, so the child's maxRSS covers the main thread and all
 *   workers together.
 * - reports model size, largest tensor, the three peaks, (peak - baseline) / largest tensor against the
 *   target (<= workers x 3 x largest tensor: each worker holds one decoded tensor plus its working set,
 *   and the whole thing must stay below the model size), and a sanity check of the estimates: for an
 *   m x n matrix of iid uniform(-1, 1) entries (variance 1/3) the top singular value is close to the
 *   Marchenko-Pastur edge sqrt(1/3) (sqrt(m) + sqrt(n)) (Bai-Yin), and ||W||_F^2 ~ m n / 3.
 * - removes the file at the end, also on error, Ctrl-C or SIGTERM (unless --keep).
 * Mode: 'auto' picks 'estimate' for these shapes anyway (min(m, n) = 4096 > the exact threshold of
 * 2048), and an exact SVD of six 4096 x 16384 matrices on 2 shared cores would take many minutes; the
 * default is 'estimate' explicitly. Not part of `npm test`.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { buildSafetensorsHeader } from '../src/core/checkpoint/safetensorsWriter';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

/** The two small tensors the 'pool' baseline scans (one per worker). */
const PROBES = ['probe.0.weight', 'probe.1.weight'];
const PROBE_SHAPE = [64, 64];

/**
 * Fills `out` with uniform(-1, 1) values from a xorshift32 state (Marsaglia 2003: x ^= x << 13;
 * x ^= x >>> 17; x ^= x << 5), returning the next state. Not a statistical-quality generator, but
 * enough for iid-looking entries and ~10x faster than a Gaussian, which matters at 400 M values.
 */
function fillUniform(out: Float32Array, state: number): number {
  let x = state >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x * (2 / 4294967296) - 1;
  }
  return x;
}

interface Layout { name: string; shape: number[] }

/** Writes the checkpoint chunk by chunk; memory use is one chunk regardless of the model size. */
async function writeCheckpoint(file: string, tensors: Layout[]): Promise<void> {
  const entries = tensors.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * 4 }));
  const fh = await fsp.open(file, 'wx');
  try {
    await fh.write(buildSafetensorsHeader(entries, { source: 'bench/scan-memory.bench.ts' }));
    const chunk = new Float32Array(2 * MiB); // 8 MiB
    const bytes = new Uint8Array(chunk.buffer);
    let state = 20261123;
    for (const e of entries) {
      let left = e.byteLength / 4;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        state = fillUniform(n === chunk.length ? chunk : chunk.subarray(0, n), state);
        await fh.write(bytes, 0, n * 4);
        left -= n;
      }
    }
  } finally {
    await fh.close();
  }
}

interface ChildReport {
  maxRssKiB: number;
  seconds: number;
  scan?: { mode: string; backends: string[]; computed: number; failures: number; modes: string[]; sigma1: number[]; frob2: number[]; perTensorSeconds: number[] };
}

async function child(): Promise<void> {
  const [file, what] = process.argv.slice(process.argv.indexOf('--child') + 1) as [string, string];
  const t0 = performance.now();
  const { open } = await import('../src/core/checkpoint');
  const { scanSpectra } = await import('../src/core/jobs');
  let scan: ChildReport['scan'];
  if (what === 'open') {
    const c = await open(file);
    await c.close();
  } else {
    const workers = Number(arg('workers', '2'));
    const mode = arg('mode', 'estimate') as 'estimate' | 'auto' | 'exact';
    const r = await scanSpectra(file, {
      workers, mode, cache: false,
      filter: what === 'pool' ? (t) => PROBES.includes(t.name) : undefined,
      onProgress: (p) => {
        if (what === 'scan' && p.status !== 'started') {
          process.stderr.write(`  [${((performance.now() - t0) / 1000).toFixed(1)} s] ${p.done}/${p.total} ${p.name} ${p.status}, rss ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB\n`);
        }
      },
    });
    const big = r.tensors.filter((t) => !PROBES.includes(t.name));
    scan = {
      mode: String(r.mode), backends: r.backends, computed: r.computed, failures: r.failures.length,
      modes: [...new Set(big.map((t) => t.mode))],
      sigma1: big.map((t) => (t.topSingularValues ?? t.singularValues ?? [NaN])[0]!),
      frob2: big.map((t) => t.frobeniusNorm ** 2),
      perTensorSeconds: big.map((t) => t.seconds),
    };
    if (r.failures.length) process.stderr.write(`failures: ${JSON.stringify(r.failures)}\n`);
  }
  process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, seconds: (performance.now() - t0) / 1000, scan } satisfies ChildReport) + '\n');
}

/** Runs one child to completion; rejects on a non-zero exit. Tracked so a signal can stop it. */
const children = new Set<import('node:child_process').ChildProcess>();
function runChild(file: string, what: 'open' | 'pool' | 'scan'): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', file, what, ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(c);
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.on('error', reject);
    c.on('close', (code, sig) => {
      children.delete(c);
      if (code !== 0) { reject(new Error(`child '${what}' exited with ${code ?? sig}`)); return; }
      resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildReport);
    });
  });
}

async function main(): Promise<void> {
  const rows = Number(arg('rows', '4096')), cols = Number(arg('cols', '16384'));
  const workers = Number(arg('workers', '2'));
  const largest = rows * cols * 4;
  const count = Math.max(1, Math.round(Number(arg('gb', '1.5')) * GiB / largest));
  const layout: Layout[] = [
    ...Array.from({ length: count }, (_, k) => ({ name: `layers.${k}.mlp.weight`, shape: [rows, cols] })),
    ...PROBES.map((name) => ({ name, shape: PROBE_SHAPE })),
  ];
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scan-mem-'));
  const file = path.join(dir, 'model.safetensors');
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) c.kill('SIGTERM');
    if (!flag('keep')) await fsp.rm(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { void cleanup().then(() => process.exit(130)); });
  try {
    let t = performance.now();
    await writeCheckpoint(file, layout);
    const modelBytes = (await fsp.stat(file)).size;
    console.error(`wrote ${file}: ${(modelBytes / MiB).toFixed(0)} MiB, ${count} x [${rows}, ${cols}] F32 (${(largest / MiB).toFixed(0)} MiB each) + 2 x [64, 64], in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
    const base = await runChild(file, 'open');
    const pool = await runChild(file, 'pool');
    t = performance.now();
    const scan = await runChild(file, 'scan');
    const loadAfter = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
    const s = scan.scan!;
    if (s.failures > 0 || s.computed !== count + PROBES.length) throw new Error(`scan computed ${s.computed} of ${count + PROBES.length} tensors, ${s.failures} failed`);

    const peak = scan.maxRssKiB * 1024, baseline = base.maxRssKiB * 1024, poolBase = pool.maxRssKiB * 1024;
    const over = peak - baseline;
    const ratio = over / largest;
    const target = workers * 3;
    const pass = ratio <= target && over < modelBytes;
    const m = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
    console.log(`load average (1/5/15 min) before: ${load}; after: ${loadAfter}; ${os.cpus().length} cores, Node ${process.version}\n`);
    console.log(`| model | largest tensor | workers, mode | scan wall time | baseline (open only) | pool started (2 probes) | peak RSS (scan) | peak - baseline | / largest tensor | / model | target | |`);
    console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`);
    console.log(`| ${count} x [${rows}, ${cols}] F32, ${m(modelBytes)} | ${m(largest)} | ${workers}, ${s.mode} (${s.modes.join(', ')}; ${s.backends.join(', ')}) | ${scan.seconds.toFixed(1)} s | ${m(baseline)} | ${m(poolBase)} | ${m(peak)} | ${m(over)} | ${ratio.toFixed(2)}x | ${(over / modelBytes).toFixed(2)} | <= ${target}x and < model | ${pass ? 'PASS' : 'FAIL'} |`);
    // Sanity: iid uniform(-1, 1), variance 1/3 -> sigma_1 ~ sqrt(1/3)(sqrt(m) + sqrt(n)), ||W||_F^2 ~ m n / 3.
    const edge = Math.sqrt(1 / 3) * (Math.sqrt(rows) + Math.sqrt(cols));
    const frob2 = rows * cols / 3;
    const rng = (xs: number[]) => `${Math.min(...xs).toFixed(2)} .. ${Math.max(...xs).toFixed(2)}`;
    console.log(`\nsanity: sigma_1 estimates ${rng(s.sigma1)} vs Marchenko-Pastur edge ${edge.toFixed(2)}; ||W||_F^2 / (m n / 3) = ${rng(s.frob2.map((f) => f / frob2))}; per-tensor analysis ${rng(s.perTensorSeconds)} s`);
  } finally {
    await cleanup();
  }
}

if (process.argv.includes('--child')) void child().catch((e: unknown) => { console.error(e); process.exit(1); });
else void main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
