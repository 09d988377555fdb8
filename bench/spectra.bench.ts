/**
 * Singular value spectra: our native (LAPACK via koffi) and portable (onnxruntime + TypeScript)
 * backends against scipy, plus randomized top-64 SVD against numpy running the same algorithm.
 *
 *   npx tsx bench/spectra.bench.ts            # GPT-2-small and Llama-8B shapes (long: ~15-30 min)
 *   npx tsx bench/spectra.bench.ts --quick    # GPT-2-small shapes only
 *   npx tsx bench/spectra.bench.ts --runs 5   # more timed runs of our backends
 *   npx tsx bench/spectra.bench.ts --shapes 4096x4096,1024x4096 --no-randomized
 *   npx tsx bench/spectra.bench.ts --quick --threads 1   # our backends single-threaded
 *
 * Every matrix is seeded Gaussian float32, generated here and handed to python through a temporary
 * .npy file (removed afterwards). The peer is `scipy.linalg.svd(W, compute_uv=False,
 * lapack_driver='gesdd')` on the float32 array (Debian python3-scipy on the system OpenBLAS), timed
 * inside python as the median of 3 (process start and np.load excluded). Ours: `singularValues(W)`
 * with the default method 'auto' (float64 Gram + symmetric eigensolver), after an untimed warm-up call per
 * backend (JIT, sessions, thread pools: once per process), median of --runs (default 3;
 * the portable backend on the Llama shapes runs once because one run takes tens of seconds).
 * Accuracy column: max_i |s_i - s_i(scipy)| / s_max (scipy's float32 gesdd is itself ~1e-6 off).
 *
 * Randomized SVD: k = 64, oversampling p = 10, q = 2 power iterations, each product followed by a
 * QR (numpy: np.linalg.qr; ours: the backend's orthonormalisation), then the SVD of B = Q^T A.
 *
 * Targets: native >= 3x faster than scipy on every shape; portable <= 1.5x scipy's time on the
 * GPT-2 shapes and <= 3x on the 4096 shapes; randomized <= 1.5x numpy's time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLinalgBackend, GaussianRng, type LinalgBackend, type Matrix } from '../src/core/linalg/index';

const QUICK = process.argv.includes('--quick');
const NO_RANDOMIZED = QUICK || process.argv.includes('--no-randomized');
const shapesArg = process.argv.indexOf('--shapes');
/** --shapes 4096x4096,1024x4096 : only these shapes ('none': only the randomized comparison). */
const SHAPES: Array<[number, number]> | undefined = shapesArg >= 0
  ? process.argv[shapesArg + 1]!.split(',').map((x) => x.split('x').map(Number) as [number, number]).filter(([r, c]) => r > 0 && c > 0)
  : undefined;
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 3;
const PYTHON = '/usr/bin/python3';
const threadsArg = process.argv.indexOf('--threads');
/** --threads N: OpenBLAS / onnxruntime threads of our backends (default: all cores). */
const THREADS = threadsArg >= 0 ? Number(process.argv[threadsArg + 1]) : undefined;

const GPT2: Array<[number, number]> = [[768, 768], [768, 2304], [768, 3072], [3072, 768]];
const LLAMA: Array<[number, number]> = [[4096, 4096], [1024, 4096], [4096, 14336], [14336, 4096]];

/** .npy v1.0: magic, header length (u16 LE), a Python dict literal padded to 64 bytes, raw data. */
function writeNpyF32(path: string, m: Matrix): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)]));
}

const PY_SVD = String.raw`
import sys, json, time, numpy as np, scipy.linalg
W = np.load(sys.argv[1]); mode = sys.argv[2]; out = sys.argv[3]
times = []
if mode == 'svd':
    for _ in range(3):
        t0 = time.perf_counter(); s = scipy.linalg.svd(W, compute_uv=False, lapack_driver='gesdd'); times.append(time.perf_counter() - t0)
    np.save(out, s.astype(np.float64))
else:
    k, p, q = 64, 10, 2
    rng = np.random.default_rng(0)
    for _ in range(3):
        t0 = time.perf_counter()
        Om = rng.standard_normal((W.shape[1], k + p)).astype(np.float32)
        Q, _ = np.linalg.qr(W @ Om)
        for _ in range(q):
            Z, _ = np.linalg.qr(W.T @ Q)
            Q, _ = np.linalg.qr(W @ Z)
        B = Q.T @ W
        Ub, s, Vt = np.linalg.svd(B, full_matrices=False)
        U = Q @ Ub[:, :k]; s = s[:k]; Vt = Vt[:k]
        times.append(time.perf_counter() - t0)
    np.save(out, s.astype(np.float64))
print(json.dumps({'median': sorted(times)[1], 'min': min(times), 'times': times, 'scipy': scipy.__version__, 'numpy': np.__version__}))
`;

function python(npy: string, mode: 'svd' | 'randomized', out: string): { median: number; min: number; values: Float64Array; versions: string } {
  const r = spawnSync(PYTHON, ['-c', PY_SVD, npy, mode, out], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { median: number; min: number; scipy: string; numpy: string };
  const buf = readFileSync(out);
  const hlen = buf.readUInt16LE(8);
  const data = buf.subarray(10 + hlen);
  const values = new Float64Array(data.length / 8);
  for (let i = 0; i < values.length; i++) values[i] = data.readDoubleLE(i * 8);
  return { median: res.median, min: res.min, values, versions: `scipy ${res.scipy}, numpy ${res.numpy}` };
}

async function timeIt<T>(runs: number, f: () => Promise<T>): Promise<{ median: number; min: number; result: T }> {
  const times: number[] = [];
  let result: T | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    result = await f();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, min: times[0]!, result: result! };
}

function maxRel(a: Float64Array, b: Float64Array): number {
  let w = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) w = Math.max(w, Math.abs(a[i]! - b[i]!));
  return w / b[0]!;
}

const fmt1 = (s: number): string => (s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`);
/** "median (min)" — on a shared machine the minimum is the better estimate of the unloaded time. */
const fmt = (t: { median: number; min: number }): string => `${fmt1(t.median)} (${fmt1(t.min)})`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spectra-bench-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  const native = await getLinalgBackend('native', { threads: THREADS }).catch((e: Error) => { console.error(`native unavailable: ${e.message}`); return undefined; });
  const portable = await getLinalgBackend('portable', { threads: THREADS });
  // One untimed call per backend first: JIT compilation of the TypeScript/WASM eigensolver, onnxruntime
  // session creation and OpenBLAS's thread start-up are once per process, like python's imports,
  // which the peer's timing leaves out too.
  const warm: Matrix = { rows: 512, cols: 1024, data: new GaussianRng(7).fill(new Float32Array(512 * 1024)) };
  for (const b of [native, portable]) if (b) { await b.singularValues(warm); await b.singularValues(warm); }
  const rows: string[] = [];
  let versions = '';
  const t0 = Date.now();
  try {
    const shapes = SHAPES ?? (QUICK ? GPT2 : [...GPT2, ...LLAMA]);
    for (const [m, n] of shapes) {
      const big = m * n > 4e6;
      const a: Matrix = { rows: m, cols: n, data: new GaussianRng(m * 100003 + n).fill(new Float32Array(m * n)) };
      const npy = join(dir, 'w.npy');
      writeNpyF32(npy, a);
      const py = python(npy, 'svd', join(dir, 's.npy'));
      versions = py.versions;
      const nat = native ? await timeIt(RUNS, () => native.singularValues(a)) : undefined;
      const por = await timeIt(big ? 1 : RUNS, () => portable.singularValues(a));
      const natRatio = nat ? py.median / nat.median : NaN;
      const porRatio = por.median / py.median;
      const porTarget = big ? 3 : 1.5;
      const minRatioNat = nat ? py.min / nat.min : NaN;
      const minRatioPor = por.min / py.min;
      rows.push(`| ${m} x ${n} | ${fmt(py)} | ${nat ? fmt(nat) : '-'} | ${nat ? `${natRatio.toFixed(2)}x (${minRatioNat.toFixed(2)}x)` : '-'} | ${nat ? (natRatio >= 3 ? 'PASS' : 'MISS') : '-'} | ${fmt(por)}${big ? ' [1 run]' : ''} | ${porRatio.toFixed(2)}x (${minRatioPor.toFixed(2)}x) | <= ${porTarget}x: ${porRatio <= porTarget ? 'PASS' : 'MISS'} | ${nat ? maxRel(nat.result, py.values).toExponential(1) : '-'} / ${maxRel(por.result, py.values).toExponential(1)} |`);
      console.error(rows[rows.length - 1]);
    }
    let randRows: string[] = [];
    if (!NO_RANDOMIZED) {
      const k = 64;
      const a: Matrix = { rows: 4096, cols: 4096, data: new GaussianRng(4096 * 100003 + 4096).fill(new Float32Array(4096 * 4096)) };
      const npy = join(dir, 'w.npy');
      writeNpyF32(npy, a);
      const py = python(npy, 'randomized', join(dir, 's.npy'));
      const exact = native ? await native.singularValues(a) : await portable.singularValues(a);
      for (const b of [native, portable].filter((x): x is LinalgBackend => x !== undefined)) {
        const r = await timeIt(RUNS, () => b.randomizedSvd(a, k, { oversample: 10, powerIterations: 2, seed: 1 }));
        const ratio = r.median / py.median;
        randRows.push(`| ${b.name} | ${fmt(py)} | ${fmt(r)} | ${ratio.toFixed(2)}x (${(r.min / py.min).toFixed(2)}x) | <= 1.5x: ${ratio <= 1.5 ? 'PASS' : 'MISS'} | ${maxRel(r.result.S, exact).toExponential(1)} / ${maxRel(py.values, exact).toExponential(1)} |`);
        console.error(randRows[randRows.length - 1]);
      }
    }
    const lines = [
      `Measured ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average at end ${loadavg().map((x) => x.toFixed(1)).join(' ')}, ${versions}, Node ${process.version}; total ${((Date.now() - t0) / 1000).toFixed(0)} s.`,
      `native: ${native?.description ?? 'unavailable'}; portable: ${portable.description}.`,
      '',
      'Times are "median (min)"; ratios "on medians (on minima)"; PASS/MISS is judged on the medians.',
      '',
      '| shape | scipy gesdd, 3 runs | native | native speed-up vs scipy | target >= 3x | portable | portable time / scipy | target | max err vs scipy / s_max (native / portable) |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
    ];
    if (randRows.length) {
      lines.push('', 'Randomized SVD, 4096 x 4096, k = 64, p = 10, q = 2:', '',
        '| backend | numpy (same algorithm, 3 runs) | ours | time / numpy | target | max err of top-64 vs exact / s_max (ours / numpy) |',
        '| --- | --- | --- | --- | --- | --- |', ...randRows);
    }
    console.log(lines.join('\n'));
  } finally {
    await native?.dispose();
    await portable.dispose();
    cleanup();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
