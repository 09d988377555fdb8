/**
 * Strided views over a flat storage, as PyTorch and numpy describe them: element (i_0, ..., i_{n-1})
 * of a view with `size` and `stride` (both in elements) lives at storage element
 * `offset + sum_k i_k * stride_k`.
 */

/** Row-major (C order) strides for a shape: stride_k = prod_{j>k} size_j. */
export function contiguousStrides(size: readonly number[]): number[] {
  const s = new Array<number>(size.length);
  let acc = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= size[k];
  }
  return s;
}

/** Column-major (Fortran order) strides: stride_k = prod_{j<k} size_j. */
export function fortranStrides(size: readonly number[]): number[] {
  const s = new Array<number>(size.length);
  let acc = 1;
  for (let k = 0; k < size.length; k++) {
    s[k] = acc;
    acc *= size[k];
  }
  return s;
}

/** True when the view's elements are the row-major run [0, numel) (size-1 dims may have any stride). */
export function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    if (size[k] === 1) continue;
    if (size[k] === 0) return true;
    if (stride[k] !== expected) return false;
    expected *= size[k];
  }
  return true;
}

/** The largest element index a view touches relative to its offset: sum_k (size_k - 1) * stride_k (-1 if empty). */
export function maxRelativeIndex(size: readonly number[], stride: readonly number[]): number {
  let m = 0;
  for (let k = 0; k < size.length; k++) {
    if (size[k] === 0) return -1;
    m += (size[k] - 1) * stride[k];
  }
  return m;
}

/**
 * Copies a strided view out of `src` into row-major order. `src` holds storage elements starting at
 * the view's offset (so index 0 of `src` is element `offset`); `elementSize` is in bytes.
 * out[flat(i)] = src[sum_k i_k * stride_k] for every multi-index i, with flat() the row-major index.
 */
export function gatherStrided(src: Uint8Array, elementSize: number, size: readonly number[], stride: readonly number[]): Uint8Array {
  const n = size.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(n * elementSize);
  if (n === 0) return out;
  const rank = size.length;
  if (rank === 0) {
    out.set(src.subarray(0, elementSize));
    return out;
  }
  const inner = size[rank - 1];
  const innerStride = stride[rank - 1];
  const idx = new Array<number>(rank - 1).fill(0);
  let base = 0; // sum over the outer dims of i_k * stride_k
  let o = 0;
  const rows = n / inner;
  for (let r = 0; r < rows; r++) {
    if (innerStride === 1) {
      const b = base * elementSize;
      out.set(src.subarray(b, b + inner * elementSize), o);
      o += inner * elementSize;
    } else {
      for (let j = 0; j < inner; j++) {
        const b = (base + j * innerStride) * elementSize;
        for (let e = 0; e < elementSize; e++) out[o++] = src[b + e];
      }
    }
    // Odometer increment over the outer dimensions.
    for (let k = rank - 2; k >= 0; k--) {
      idx[k]++;
      base += stride[k];
      if (idx[k] < size[k]) break;
      base -= idx[k] * stride[k];
      idx[k] = 0;
    }
  }
  return out;
}
