/**
 * Seeded random matrices for controls and benchmarks (a random Gaussian matrix is the "no structure"
 * baseline against which trained layers' bond entropies are compared).
 */

/** mulberry32: a 32-bit state PRNG with period 2^32, uniform in [0, 1). Deterministic per seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * n samples of N(0, sigma^2) by the Box-Muller transform: z = sqrt(-2 ln u1) cos(2 pi u2) (and the
 * matching sin for the second sample), u1 in (0, 1].
 */
export function gaussianArray(n: number, seed: number, sigma = 1): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rand();
    const u2 = rand();
    const r = sigma * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
