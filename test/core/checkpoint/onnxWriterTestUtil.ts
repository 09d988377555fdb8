/**
 * Helpers shared by the ONNX writer tests: fixture paths, onnxruntime runs, the python onnx checker
 * (optional), and a plain float64 matrix product for references.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';

export const ROOT = path.resolve(__dirname, '../../..');
export const SHARED = path.resolve(ROOT, '../shared');
export const PICO = path.join(SHARED, 'fixtures/pico/pico.onnx');
export const PICO_EXT = path.join(SHARED, 'fixtures/pico/pico_ext.onnx');
export const STORIES = path.join(SHARED, 'fixtures/stories260k/stories260K.onnx');
export const STORIES_EXT = path.join(SHARED, 'fixtures/stories260k/stories260K_ext.onnx');

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `ts-onnxw-${prefix}-`));
}

/** Token ids 0..vocab-1 cycled with a stride, as int64 [1, T]. */
export function tokenIds(T: number, vocab: number, batch = 1): ort.Tensor {
  const ids = new BigInt64Array(batch * T);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt((i * 7 + 3) % vocab);
  return new ort.Tensor('int64', ids, [batch, T]);
}

/** Runs a model file once; returns the named output's values. */
export async function runModel(model: string, feeds: Record<string, ort.Tensor>, output: string): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    const t = out[output];
    return { data: t.data as Float32Array, dims: t.dims };
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Runs `onnx.checker.check_model(path, full_check=True)` through Debian's python3-onnx. Returns
 * undefined when it passed, 'skip: ...' when python3 or its onnx module is missing, else the error.
 */
export function onnxChecker(model: string): string | undefined {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'skip: /usr/bin/python3 with the onnx module is not available';
  const r = spawnSync('/usr/bin/python3', ['-c', 'import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)', model], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.stdout || `exit ${r.status}`);
}

/** C [m, n] = A [m, k] @ B [k, n] in float64 (references for small sizes). */
export function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      if (x === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j];
    }
  }
  return c;
}

/** Deterministic values in [-1, 1) (a small LCG), for test inputs. */
export function pseudoRandom(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
