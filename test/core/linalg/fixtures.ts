/**
 * Test-local helpers: a tiny safetensors parse (8-byte little-endian header length, JSON header,
 * raw little-endian F32 data) so the linear-algebra tests do not depend on the checkpoint reader,
 * plus matrices with a prescribed spectrum.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GaussianRng, householderQR, type Matrix } from '../../../src/core/linalg/index';

export const SHARED = join(__dirname, '..', '..', '..', '..', 'shared');

export interface ReferenceTensor { name: string; shape: number[]; singularValues: number[] }

export function loadReference(model: 'pico' | 'stories260k'): ReferenceTensor[] {
  return (JSON.parse(readFileSync(join(SHARED, 'reference', `${model}.spectra.json`), 'utf8')) as { tensors: ReferenceTensor[] }).tensors;
}

export function readSafetensorsF32(path: string): Map<string, Matrix> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLen;
  const out = new Map<string, Matrix>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || info.dtype !== 'F32' || info.shape.length !== 2) continue;
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    const data = new Float32Array(bytes.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(i * 4);
    out.set(name, { rows: info.shape[0]!, cols: info.shape[1]!, data });
  }
  return out;
}

/** A = U diag(s) V^T with Haar-like random orthogonal U (m x k), V (n x k), k = s.length. */
export function withSpectrum(m: number, n: number, s: number[], seed: number): Matrix {
  const k = s.length;
  const rng = new GaussianRng(seed);
  const u = householderQR({ rows: m, cols: k, data: rng.fill(new Float64Array(m * k)) }).q;
  const v = householderQR({ rows: n, cols: k, data: rng.fill(new Float64Array(n * k)) }).q;
  const data = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += u.data[i * k + p]! * s[p]! * v.data[j * k + p]!;
      data[i * n + j] = acc;
    }
  }
  return { rows: m, cols: n, data };
}

/** max_i |a_i - b_i| / scale. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, scale: number): number {
  let worst = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
}
