/**
 * Loader for the WebAssembly SIMD kernels (kernels.ll, compiled here by build-kernels.mjs into
 * kernels.generated.ts). Each workspace owns one linear memory sized for the caller's arrays;
 * float64 data lives in it so the kernels read it without copies. Returns undefined where the
 * engine lacks WebAssembly SIMD (callers fall back to plain TypeScript loops).
 */
import { KERNELS_WASM_BASE64 } from './kernels.generated';

export interface WasmWorkspace {
  /** A float64 view of the whole linear memory. */
  f64: Float64Array;
  /** y[r] = sum_{c0<=c<c1} t[r*ld+c] v[c], r in [r0, r1); t, v, y are float64 element offsets. */
  gemv(t: number, ld: number, v: number, y: number, r0: number, r1: number, c0: number, c1: number): void;
  /** d[i] = a[i] - b[i], i < n; element offsets; d may equal or precede a. */
  sub(d: number, a: number, b: number, n: number): void;
  /**
   * y = A v on rows/columns [lo, hi) of a symmetric matrix stored row-major at t (leading
   * dimension ld) of which only the upper triangle (column >= row) is read; y[lo..hi) is overwritten.
   */
  symvu(t: number, ld: number, v: number, y: number, lo: number, hi: number): void;
  /** y[r] -= sum_{p<k} x[p*ld + r] coef[p], r in [r0, r1). */
  axpyt(x: number, ld: number, coef: number, y: number, k: number, r0: number, r1: number): void;
  /** y[r] -= sum_{p<k} (x[2p*ld + r] coef[2p] + x[(2p+1)*ld + r] coef[2p+1]), r in [r0, r1): k row pairs. */
  axpyt2(x: number, ld: number, coef: number, y: number, k: number, r0: number, r1: number): void;
}

/** The part of the WebAssembly JS API we use (the project's lib settings carry no DOM/wasm types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
}
const WebAssembly = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;

function module(): object | null {
  if (compiled !== undefined) return compiled;
  if (!WebAssembly) return (compiled = null);
  try {
    const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

/** Compiles the kernels now (once per process) rather than on the first decomposition. */
export function prepareKernels(): void {
  module();
}

/** A workspace with room for `doubles` float64 values, or undefined (no SIMD, or too large). */
export function wasmWorkspace(doubles: number): WasmWorkspace | undefined {
  if (process.env['TENSOR_SCALPEL_NO_WASM']) return undefined;
  const mod = module();
  if (!mod || !WebAssembly) return undefined;
  const pages = Math.ceil((doubles * 8) / 65536) + 1;
  if (pages > 65536) return undefined; // wasm32: 4 GiB at most
  try {
    const memory = new WebAssembly.Memory({ initial: pages });
    const inst = new WebAssembly.Instance(mod, { env: { __linear_memory: memory } });
    type Fn = (...a: number[]) => void;
    const ex = inst.exports as unknown as { gemv: Fn; sub: Fn; symvu: Fn; axpyt: Fn; axpyt2: Fn };
    return {
      f64: new Float64Array(memory.buffer),
      gemv: (t, ld, v, y, r0, r1, c0, c1) => ex.gemv(t * 8, ld, v * 8, y * 8, r0, r1, c0, c1),
      sub: (d, a, b, n) => ex.sub(d * 8, a * 8, b * 8, n),
      symvu: (t, ld, v, y, lo, hi) => ex.symvu(t * 8, ld, v * 8, y * 8, lo, hi),
      axpyt: (x, ld, coef, y, k, r0, r1) => ex.axpyt(x * 8, ld, coef * 8, y * 8, k, r0, r1),
      axpyt2: (x, ld, coef, y, k, r0, r1) => ex.axpyt2(x * 8, ld, coef * 8, y * 8, k, r0, r1),
    };
  } catch {
    return undefined; // e.g. out of memory for the linear memory: use the TypeScript path
  }
}

/**
 * Workspaces of at most this many float64 values (32 MiB) are kept after use and handed out again:
 * a decomposition of a matrix up to ~2000 x 2000 then reuses one linear memory and one instance, so
 * the JIT sees the same kernel functions on every call (a fresh instance per call made V8 deoptimise
 * the caller on each new call target) and no memory is allocated and zeroed per call. Larger ones
 * are released to the garbage collector as soon as they are returned, and the kept one is dropped
 * after CACHE_IDLE_MS without use.
 */
const CACHE_MAX_DOUBLES = 1 << 22;
const CACHE_IDLE_MS = 30_000;
let cached: { ws: WasmWorkspace; doubles: number; busy: boolean } | undefined;
let idleTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * A workspace with room for `doubles` float64 values (contents unspecified), or undefined; pass it
 * back to releaseWasmWorkspace() when done. Concurrent callers get separate workspaces.
 */
export function acquireWasmWorkspace(doubles: number): WasmWorkspace | undefined {
  if (idleTimer) { clearTimeout(idleTimer); idleTimer = undefined; }
  if (cached && !cached.busy && cached.doubles >= doubles) {
    cached.busy = true;
    return cached.ws;
  }
  if (doubles > CACHE_MAX_DOUBLES || cached?.busy) return wasmWorkspace(doubles);
  // Room for the largest cacheable request, grown in steps of 2x to avoid re-creating it often.
  const size = Math.min(CACHE_MAX_DOUBLES, Math.max(doubles, 2 * (cached?.doubles ?? 0), 1 << 16));
  const ws = wasmWorkspace(size);
  if (!ws) return wasmWorkspace(doubles);
  cached = { ws, doubles: size, busy: true };
  return ws;
}

export function releaseWasmWorkspace(ws: WasmWorkspace): void {
  if (cached?.ws !== ws) return;
  cached.busy = false;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = undefined;
    if (cached && !cached.busy) cached = undefined;
  }, CACHE_IDLE_MS);
  idleTimer.unref?.(); // never keeps the process alive
}
