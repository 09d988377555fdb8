import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';

export const SHARED = path.resolve(__dirname, '../../../../shared');
export const PICO = path.join(SHARED, 'fixtures/pico/pico.safetensors');
export const PICO_ONNX = path.join(SHARED, 'fixtures/pico/pico.onnx');
export const STORIES_GGUF = path.join(SHARED, 'fixtures/real/stories260K.gguf');
export const STORIES_ST = path.join(SHARED, 'fixtures/stories260k/stories260K.safetensors');

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'surgery-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fsp.rm(dir, { recursive: true, force: true }) };
}

/** ||x||_2 in float64. */
export function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** A seeded vector of standard normals (simple LCG + Box-Muller; only needs to be deterministic). */
export function seededVector(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const next = () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return (x + 0.5) / 4294967296; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}
