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
    const ex = inst.exports as unknown as { gemv: (...a: number[]) => void; sub: (...a: number[]) => void };
    return {
      f64: new Float64Array(memory.buffer),
      gemv: (t, ld, v, y, r0, r1, c0, c1) => ex.gemv(t * 8, ld, v * 8, y * 8, r0, r1, c0, c1),
      sub: (d, a, b, n) => ex.sub(d * 8, a * 8, b * 8, n),
    };
  } catch {
    return undefined; // e.g. out of memory for the linear memory: use the TypeScript path
  }
}
