/**
 * Messages between the worker pool (caller's thread) and its workers, and the events a scan reports.
 * Everything here is JSON-serialisable: it crosses worker_threads and, from the extension host, the
 * webview protocol.
 */
import type { SpectrumOptions, TensorSpectrum } from '../analysis/analyze';
import type { CompressTableResult, SiteFactors } from '../analysis/chiTable';
import type { ApplyProgress, ApplyResult } from '../surgery/apply';
import type { Recipe } from '../surgery/recipe';

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

/** pool -> worker: the bond-dimension editor's table of one 2-D tensor (analysis/chiTable.ts). */
export interface CompressTableTaskRequest {
  type: 'compress-table';
  taskId: number;
  path: string;
  tensor: string;
  /** Explicit site factors; default the 2-site plan. */
  factors?: SiteFactors;
  settings: WorkerBackendSettings;
}

/** The applyRecipe options that cross the thread boundary (the backend is the worker's own). */
export interface ApplyRecipeTaskOptions {
  /** Override recipe.input / recipe.output.path. */
  input?: string;
  output?: string;
  /** Write `<out>.recipe.json` (default true). */
  sidecar?: boolean;
}

/**
 * pool -> worker: write an edited / compressed model (surgery/apply.ts applyRecipe). The worker posts
 * 'progress' replies while it runs and stops cooperatively on a 'cancel' message.
 */
export interface ApplyRecipeTaskRequest {
  type: 'apply-recipe';
  taskId: number;
  recipe: Recipe;
  options: ApplyRecipeTaskOptions;
  settings: WorkerBackendSettings;
}

export type WorkerTaskRequest = SpectrumTaskRequest | CompressTableTaskRequest | ApplyRecipeTaskRequest;

/** pool -> worker: abort the running task (its AbortSignal fires inside the worker). */
export interface CancelTaskRequest {
  type: 'cancel';
  taskId: number;
}

export type WorkerRequest = WorkerTaskRequest | CancelTaskRequest;

/** What each task type resolves to. */
export interface TaskResults {
  'spectrum': TensorSpectrum;
  'compress-table': CompressTableResult;
  'apply-recipe': ApplyResult;
}

export type TaskType = WorkerTaskRequest['type'];

/** A task as the caller hands it to WorkerPool.run (the pool assigns the id). */
export type TaskInput<T extends TaskType = TaskType> = T extends TaskType ? Omit<Extract<WorkerTaskRequest, { type: T }>, 'taskId'> : never;

/**
 * A step of a long task, streamed from the worker to WorkerPool.run's onProgress in the order the
 * worker emitted it. For apply-recipe: `done` items of the current phase are finished and `name` is
 * the one being worked on now (done = ApplyProgress.index, total = its count).
 */
export interface TaskProgress {
  done: number;
  total: number;
  name?: string;
  phase?: ApplyProgress['phase'];
  message?: string;
}

/** worker -> pool. */
export type WorkerReply =
  | { type: 'result'; taskId: number; result: TaskResults[TaskType] }
  | { type: 'progress'; taskId: number; progress: TaskProgress }
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
