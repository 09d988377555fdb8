/**
 * Messages between the worker pool (caller's thread) and its workers, and the events a scan reports.
 * Everything here is JSON-serialisable: it crosses worker_threads and, from the extension host, the
 * webview protocol.
 */
import type { SpectrumOptions, TensorSpectrum } from '../analysis/analyze';

export type BackendPreference = 'auto' | 'native' | 'portable';

/** Worker-level settings, sent with every task (a worker keeps one backend per distinct setting). */
export interface WorkerBackendSettings {
  backend: BackendPreference;
  /** Explicit LAPACK/BLAS library for the native backend (from the settings). */
  libraryPath?: string;
  /** BLAS / onnxruntime threads per worker (the scan gives each worker cores / workers, at least 1). */
  threads?: number;
}

/** pool -> worker: analyse one tensor of a checkpoint the worker opens itself by path. */
export interface SpectrumTaskRequest {
  type: 'spectrum';
  taskId: number;
  /** Absolute path of the checkpoint (as the user opened it; the worker calls open() on it). */
  path: string;
  tensor: string;
  options: SpectrumOptions;
  settings: WorkerBackendSettings;
}

export type WorkerRequest = SpectrumTaskRequest;

/** worker -> pool. */
export type WorkerReply =
  | { type: 'result'; taskId: number; result: TensorSpectrum }
  | { type: 'error'; taskId: number; error: { name: string; message: string } };

/** One step of a scan, for progress bars and logs. `done` counts finished tensors (any status). */
export interface ScanProgress {
  done: number;
  total: number;
  /** The tensor this event is about. */
  name: string;
  /**
   * 'started': dispatched to a worker; 'computed': a worker finished it; 'cached': served from the
   * result cache; 'failed': its error is in the scan's failures (the scan goes on).
   */
  status: 'started' | 'computed' | 'cached' | 'failed';
  error?: string;
}

export interface TensorFailure {
  name: string;
  message: string;
}

export interface SpectrumScanResult {
  path: string;
  mode: SpectrumOptions['mode'];
  /** Backends that produced the results ('native' / 'portable'), in order of first use. */
  backends: string[];
  /** Results in checkpoint order (failed tensors are absent; see failures). */
  tensors: TensorSpectrum[];
  failures: TensorFailure[];
  /** Matrices skipped because they are not matrices (1-D) — listed for completeness. */
  skipped: string[];
  computed: number;
  cached: number;
  seconds: number;
}
