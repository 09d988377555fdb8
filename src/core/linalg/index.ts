/**
 * Entry point of the linear-algebra layer: picks a LinalgBackend and re-exports the small pure
 * helpers other modules use (matrix wrappers, norms, seeded Gaussian numbers, checks).
 *
 * Backend choice: 'auto' = native (system LAPACK through koffi) when a library is found, else
 * portable (onnxruntime-node + TypeScript); 'native' throws a clear error naming every library
 * searched when none loads; 'portable' always works where onnxruntime-node does.
 */
import type { LinalgBackend } from './types';
import { createNativeBackend, probeNative } from './native';
import { createPortableBackend } from './portable';

export type { LinalgBackend, Matrix, Matrix64, SvdResult, SymEigResult, LinalgOptions, SingularValueOptions, RandomizedSvdOptions } from './types';
export {
  toMatrix, frobenius, GaussianRng, gaussianMatrix, matmul, transpose, to32, to64,
  orthonormalityError, reconstructionError, householderQR, smallSvd,
} from './dense';
export { symmetricEigen, tridiagonalize, tridiagonalQL } from './symmetricEigen';
export { randomizedSvdWith, lanczosSvdWith, type SketchOps, type LanczosOptions } from './sketch';
export { nativeCandidates } from './native';

export interface BackendOptions {
  /** A LAPACK shared library to use for 'native'/'auto' instead of the platform search. */
  libraryPath?: string;
  /** Thread count for OpenBLAS (native) or onnxruntime intra-op (portable); default: all cores. */
  threads?: number;
}

/** Whether the native backend can load here, and which library (or why not). Never throws. */
export async function nativeAvailable(opts: { libraryPath?: string } = {}): Promise<{ available: boolean; detail: string }> {
  try {
    const probe = probeNative(opts.libraryPath);
    return { available: probe.lapack !== undefined, detail: probe.detail };
  } catch (e) {
    return { available: false, detail: `koffi could not be used: ${(e as Error).message}` };
  }
}

export async function getLinalgBackend(preference: 'auto' | 'native' | 'portable' = 'auto', opts: BackendOptions = {}): Promise<LinalgBackend> {
  if (preference === 'portable') return createPortableBackend({ threads: opts.threads });
  if (preference === 'native') return createNativeBackend({ libraryPath: opts.libraryPath, threads: opts.threads });
  const probe = await nativeAvailable({ libraryPath: opts.libraryPath });
  if (probe.available) return createNativeBackend({ libraryPath: opts.libraryPath, threads: opts.threads });
  return createPortableBackend({ threads: opts.threads });
}
