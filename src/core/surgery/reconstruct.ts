/**
 * Dense reconstruction of an MPO straight into matrix order, in row chunks, so that writing a dense
 * output never holds more than the output matrix plus one chunk (analysis/mpo.ts `reconstructMpo`
 * builds the whole site-ordered tensor P and then a permuted copy: two full-size arrays).
 *
 * With cores G_1 [1, o_1, i_1, chi_1] and G_2..G_N, contract the tail once:
 *   T [chi_1, R_1] = G_2 G_3 ... G_N   (R_1 = d_2 ... d_N, d_k = o_k i_k; small: chi_1 <= d_1)
 * then every slice of P for a site-1 index (o_1, i_1) is the row  P[(o_1, i_1), :] = G_1[(o_1, i_1), :] T,
 * computed for a block of such rows with one product, and scattered to
 *   W[o_1 O' + r', i_1 I' + c'] = P[(o_1, i_1), rowOffset'(r') + colOffset'(c')]
 * where O' = o_2 ... o_N, I' = i_2 ... i_N and the offset tables are those of the tail sites
 * (mpoTensor.ts `siteOffsets`); rows / columns beyond the original shape (zero padding) are dropped.
 */
import type { LinalgBackend } from '../linalg/types';
import { throwIfAborted } from '../checkpoint/errors';
import { siteOffsets } from '../analysis/mpoTensor';
import type { MpoCore } from '../analysis/mpo';

/** Elements of P computed per product (about 16 MiB of float32). */
const CHUNK_ELEMENTS = 1 << 22;

export async function reconstructMpoChunked(
  mpo: { cores: MpoCore[]; rows: number; cols: number; outFactors: number[]; inFactors: number[] },
  backend: LinalgBackend,
  signal?: AbortSignal,
  /** Write into this array (rows * cols, e.g. the decomposed input's own buffer, no longer needed) instead of a new one. */
  out?: Float32Array,
): Promise<Float32Array> {
  const { cores, rows, cols, outFactors, inFactors } = mpo;
  const n = cores.length;
  if (out && out.length !== rows * cols) throw new RangeError(`output array has ${out.length} elements, the matrix ${rows} x ${cols}`);
  const w = out ?? new Float32Array(rows * cols);
  const o1 = outFactors[0], i1 = inFactors[0];
  const d1 = o1 * i1;
  const chi1 = cores[0].shape[3];
  if (n === 1) {
    // One site: the core is the (padded) matrix itself, [1, o_1, i_1, 1].
    const g = cores[0].data;
    for (let r = 0; r < rows; r++) w.set(g.subarray(r * i1, r * i1 + cols), r * cols);
    return w;
  }
  // T = G_2 ... G_N as [chi_1, R_1].
  let T = cores[1].data;
  let width = cores[1].shape[1] * cores[1].shape[2] * cores[1].shape[3];
  for (let k = 2; k < n; k++) {
    throwIfAborted(signal);
    const [chiL, o, i, chiR] = cores[k].shape;
    // [chi_1 * (width / chiL), chiL] @ [chiL, o i chiR]
    const prod = await backend.gemm({ rows: (chi1 * width) / chiL, cols: chiL, data: T }, { rows: chiL, cols: o * i * chiR, data: cores[k].data }, { signal });
    T = prod.data;
    width = (width / chiL) * o * i * chiR;
  }
  const R1 = width; // the last core's chi_N = 1
  const tail = siteOffsets(outFactors.slice(1), inFactors.slice(1));
  const Orest = tail.rowOffset.length, Irest = tail.colOffset.length;
  const G1 = cores[0].data; // [d_1, chi_1] row-major
  const block = Math.max(1, Math.floor(CHUNK_ELEMENTS / R1));
  for (let start = 0; start < d1; start += block) {
    throwIfAborted(signal);
    const b = Math.min(block, d1 - start);
    const slab = (await backend.gemm({ rows: b, cols: chi1, data: G1.subarray(start * chi1, (start + b) * chi1) }, { rows: chi1, cols: R1, data: T }, { signal })).data;
    for (let q = 0; q < b; q++) {
      const s1 = start + q;
      const a = Math.floor(s1 / i1), c1 = s1 % i1; // site-1 digits: o_1 = a, i_1 = c1
      const rowBase = a * Orest, colBase = c1 * Irest;
      const base = q * R1;
      for (let rp = 0; rp < Orest; rp++) {
        const r = rowBase + rp;
        if (r >= rows) break;
        const ro = base + tail.rowOffset[rp];
        const wo = r * cols + colBase;
        const cmax = Math.min(Irest, cols - colBase);
        for (let cp = 0; cp < cmax; cp++) w[wo + cp] = slab[ro + tail.colOffset[cp]];
      }
    }
  }
  return w;
}

/**
 * W = A B (A [m, k], B [k, n]) computed in row blocks of about 16 MiB and written into `out` (e.g.
 * the decomposed input's own buffer), so a dense low-rank output needs no second full-size array.
 */
export async function lowRankProductInto(
  a: { rows: number; cols: number; data: Float32Array },
  b: { rows: number; cols: number; data: Float32Array },
  backend: LinalgBackend,
  out: Float32Array,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const m = a.rows, k = a.cols, n = b.cols;
  if (b.rows !== k) throw new RangeError(`A is ${m} x ${k} but B is ${b.rows} x ${n}`);
  if (out.length !== m * n) throw new RangeError(`output array has ${out.length} elements, the product ${m} x ${n}`);
  const block = Math.max(1, Math.floor(CHUNK_ELEMENTS / Math.max(1, n)));
  for (let r0 = 0; r0 < m; r0 += block) {
    throwIfAborted(signal);
    const h = Math.min(block, m - r0);
    if (k === 0) { out.fill(0, r0 * n, (r0 + h) * n); continue; }
    const c = await backend.gemm({ rows: h, cols: k, data: a.data.subarray(r0 * k, (r0 + h) * k) }, b, { signal });
    out.set(c.data, r0 * n);
  }
  return out;
}
