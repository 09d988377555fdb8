/**
 * The extension's analysis service: one long-lived WorkerPool for spectrum scans (disposed on
 * deactivate), the scan state of every model (results stream to the model map as they arrive), and the
 * host-side computations of the editors — MPO chi tables, singular directions, ablation previews.
 * Spectra, the per-tensor MPO tables ('compress-table') and model writes ('apply-recipe') run in the
 * worker pool, so the extension host only passes messages; the singular directions (one SVD of one
 * tensor, on demand) still use the host's linalg backend.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { open } from '../core/checkpoint/open';
import { CancelledError } from '../core/checkpoint/errors';
import type { TensorSpectrum } from '../core/analysis/analyze';
import { WorkerPool, scanSpectra, type TaskProgress } from '../core/jobs';
import { getLinalgBackend, type LinalgBackend } from '../core/linalg';
import { npyFloat32Bytes } from './npy';
import { directionComponent, residualWriters, loadDirection, type ApplyResult, type Recipe } from '../core/surgery';
import type { CompressTensor, MapTensorMetrics, ScanStatus, SpectrumSeries } from '../protocol/messages';
import { readSettings } from './config';
import { log, logError } from './log';

interface ScanState {
  status: ScanStatus;
  results: Map<string, TensorSpectrum>;
  abort?: AbortController;
  running?: Promise<void>;
}

export interface ScanEvent {
  path: string;
  status: ScanStatus;
  tensor?: TensorSpectrum;
}

/** The slim form the model map needs. */
export function mapMetrics(t: TensorSpectrum): MapTensorMetrics {
  return {
    name: t.name, matrix: t.matrix, mode: t.mode, normalizedEntropy: t.normalizedEntropy, effectiveRank: t.effectiveRank,
    rank: t.rank, stableRank: t.stableRank, alpha: t.alpha, outliers: t.outliers, spectralNorm: t.spectralNorm, frobeniusNorm: t.frobeniusNorm,
  };
}

export function spectrumSeries(filePath: string, t: TensorSpectrum): SpectrumSeries {
  return {
    model: path.basename(filePath), path: filePath, name: t.name, matrix: t.matrix, mode: t.mode,
    singularValues: t.singularValues ?? t.topSingularValues ?? [], truncation: t.truncation, mpEdge: t.mpEdge, outliers: t.outliers,
    normalizedEntropy: t.normalizedEntropy, effectiveRank: t.effectiveRank, stableRank: t.stableRank, alpha: t.alpha,
  };
}

/** A computed direction another part of the extension (evaluation) registers for the ablation picker. */
export interface ComputedDirection {
  id: string;
  label: string;
  /** A file loadDirection reads (npy, npz, safetensors, pt), and the tensor inside. */
  file: string;
  key?: string;
  detail?: string;
}

export class AnalysisService implements vscode.Disposable {
  private pool: WorkerPool | undefined;
  private poolSize = 0;
  private backendPromise: Promise<LinalgBackend> | undefined;
  private readonly scans = new Map<string, ScanState>();
  private readonly changed = new vscode.EventEmitter<ScanEvent>();
  readonly onDidChangeScan = this.changed.event;
  private readonly computed = new Map<string, ComputedDirection>();
  private readonly computedChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeComputedDirections = this.computedChanged.event;

  constructor(private readonly context: vscode.ExtensionContext) {}

  private settings() {
    return readSettings(this.context);
  }

  private workerPool(): WorkerPool {
    const want = this.settings().workers;
    if (this.pool && this.poolSize !== want) {
      const old = this.pool;
      this.pool = undefined;
      void old.dispose();
    }
    if (!this.pool) {
      this.pool = new WorkerPool({ size: want, workerScript: path.join(this.context.extensionUri.fsPath, 'out', 'worker.js') });
      this.poolSize = want;
    }
    return this.pool;
  }

  /** The host's linalg backend (for MPO tables and SVDs), made once from the settings. */
  backend(): Promise<LinalgBackend> {
    const s = this.settings();
    this.backendPromise ??= getLinalgBackend(s.linalgBackend, { libraryPath: s.nativeLibraryPath || undefined, threads: 1 });
    return this.backendPromise;
  }

  status(file: string): ScanStatus {
    return this.scans.get(file)?.status ?? { state: 'idle', done: 0, total: 0, failures: [] };
  }

  results(file: string): TensorSpectrum[] {
    return [...(this.scans.get(file)?.results.values() ?? [])];
  }

  /** Starts (or joins) the spectrum scan of a model; results stream through onDidChangeScan. */
  startScan(file: string): Promise<void> {
    const existing = this.scans.get(file);
    if (existing?.running) return existing.running;
    const state: ScanState = existing ?? { status: { state: 'idle', done: 0, total: 0, failures: [] }, results: new Map() };
    this.scans.set(file, state);
    const ac = new AbortController();
    state.abort = ac;
    state.status = { state: 'running', done: 0, total: 0, failures: [], message: 'opening' };
    this.changed.fire({ path: file, status: state.status });
    const s = this.settings();
    const started = Date.now();
    state.running = (async () => {
      try {
        const res = await scanSpectra(file, {
          mode: 'auto', backend: s.linalgBackend, libraryPath: s.nativeLibraryPath || undefined, pool: this.workerPool(),
          cache: s.cacheFolder, signal: ac.signal,
          onProgress: (p) => {
            state.status = { ...state.status, done: p.done, total: p.total, message: `${p.status} ${p.name}` };
            if (p.status === 'failed') state.status.failures = [...state.status.failures, { name: p.name, message: p.error ?? 'failed' }];
            if (p.status === 'started') this.changed.fire({ path: file, status: state.status });
          },
          onResult: (r) => {
            state.results.set(r.name, r);
            this.changed.fire({ path: file, status: state.status, tensor: r });
          },
        });
        state.status = { ...state.status, state: 'done', done: res.tensors.length + res.failures.length, total: res.tensors.length + res.failures.length, message: `${res.computed} computed, ${res.cached} from cache (${res.backends.join(', ') || 'no backend'})`, seconds: res.seconds };
        log().info(`spectrum scan of ${file}: ${res.tensors.length} tensors, ${res.failures.length} failed, ${res.computed} computed, ${res.cached} cached, ${res.seconds.toFixed(2)} s`);
      } catch (e) {
        if (e instanceof CancelledError || ac.signal.aborted) {
          state.status = { ...state.status, state: 'cancelled', message: 'cancelled' };
          log().info(`spectrum scan of ${file} cancelled after ${Date.now() - started} ms`);
        } else {
          state.status = { ...state.status, state: 'error', message: logError(`spectrum scan of ${file}`, e) };
        }
      } finally {
        state.running = undefined;
        state.abort = undefined;
        this.changed.fire({ path: file, status: state.status });
      }
    })();
    return state.running;
  }

  cancelScan(file: string): void {
    this.scans.get(file)?.abort?.abort();
  }

  /** One tensor's spectrum: from the model's scan when there, else computed alone (in the pool). */
  async spectrum(file: string, name: string, signal?: AbortSignal): Promise<TensorSpectrum> {
    const have = this.scans.get(file)?.results.get(name);
    if (have) return have;
    const s = this.settings();
    const res = await scanSpectra(file, {
      mode: 'auto', backend: s.linalgBackend, libraryPath: s.nativeLibraryPath || undefined, pool: this.workerPool(),
      cache: s.cacheFolder, signal, filter: (t) => t.name === name,
    });
    if (res.failures.length) throw new Error(`${name}: ${res.failures[0].message}`);
    const t = res.tensors[0];
    if (!t) throw new Error(`${name} in ${path.basename(file)} is not a matrix (shape has fewer than 2 dimensions)`);
    let state = this.scans.get(file);
    if (!state) { state = { status: { state: 'idle', done: 0, total: 0, failures: [] }, results: new Map() }; this.scans.set(file, state); }
    state.results.set(t.name, t);
    return t;
  }

  /**
   * The bond-dimension editor's table for one 2-D tensor of `file`, computed in the worker pool
   * ('compress-table', core/analysis/chiTable.ts): the exact bond spectra (2 sites unless factors are
   * given), then for every uniform chi = 1..max:
   *   chi_k = min(chi, L_k, R_k), params = sum_k chi_{k-1} o_k i_k chi_k,
   *   error = sqrt(sum_k sum_{j > chi_k} s_{k,j}^2) / ||W||_F   (TT-SVD bound; exact for 2 sites).
   * Aborting `signal` terminates the worker computing it (CancelledError).
   */
  async compressTable(file: string, name: string, factors?: { outFactors: number[]; inFactors: number[] }, signal?: AbortSignal): Promise<CompressTensor> {
    const s = this.settings();
    return this.workerPool().run({
      type: 'compress-table', path: file, tensor: name, factors: factors ? { outFactors: factors.outFactors, inFactors: factors.inFactors } : undefined,
      settings: { backend: s.linalgBackend, libraryPath: s.nativeLibraryPath || undefined, threads: 1 },
    }, { signal, urgent: true });
  }

  /**
   * Writes an edited / compressed model in the worker pool ('apply-recipe'). Progress arrives in
   * order through onProgress; aborting `signal` asks the worker to stop (applyRecipe removes its temp
   * files) and terminates it after a grace period (the pool removes them), then rejects with
   * CancelledError.
   */
  applyRecipe(recipe: Recipe, input: string, output: string, signal?: AbortSignal, onProgress?: (p: TaskProgress) => void): Promise<ApplyResult> {
    const s = this.settings();
    return this.workerPool().run({
      type: 'apply-recipe', recipe, options: { input, output },
      settings: { backend: s.linalgBackend, libraryPath: s.nativeLibraryPath || undefined },
    }, { signal, onProgress, urgent: true });
  }

  /**
   * The top `count` singular directions of a tensor along its residual axis (u_i for axis 0, the
   * rows of V^T for axis 1), written as float32 .npy files so the surgery recipe can name them.
   */
  async singularDirections(file: string, name: string, count: number, axis: 0 | 1): Promise<Array<{ label: string; file: string; sigma: number; length: number }>> {
    const ckpt = await open(file);
    try {
      const e = ckpt.get(name);
      if (!e || e.shape.length !== 2) throw new Error(`${name} is not a 2-D tensor of ${path.basename(file)}`);
      const [rows, cols] = e.shape;
      const w = await e.read();
      const backend = await this.backend();
      const k = Math.min(count, rows, cols);
      const svd = await backend.svd({ rows, cols, data: w });
      const out: Array<{ label: string; file: string; sigma: number; length: number }> = [];
      const dir = path.join(this.context.globalStorageUri.fsPath, 'directions');
      await fs.promises.mkdir(dir, { recursive: true });
      const kk = svd.S.length;
      for (let i = 0; i < k; i++) {
        const v = new Float32Array(axis === 0 ? rows : cols);
        if (axis === 0) for (let r = 0; r < rows; r++) v[r] = svd.U.data[r * kk + i];
        else for (let c = 0; c < cols; c++) v[c] = svd.Vt.data[i * cols + c];
        const f = path.join(dir, `${sanitize(path.basename(file))}.${sanitize(name)}.${axis === 0 ? 'u' : 'v'}${i + 1}.npy`);
        await fs.promises.writeFile(f, npyFloat32Bytes(v));
        out.push({ label: `${name} ${axis === 0 ? 'u' : 'v'}${i + 1}`, file: f, sigma: svd.S[i], length: v.length });
      }
      return out;
    } finally {
      await ckpt.close();
    }
  }

  /** ||r r^T W||_F / ||W||_F for every writer and direction (= ||r^T W|| / ||W||_F along the residual axis). */
  async ablationPreview(file: string, writers: Array<{ name: string; axis: 0 | 1 }>, directions: Array<{ id: string; file: string; key?: string }>, signal?: AbortSignal): Promise<Array<{ writer: string; removed: Record<string, number> }>> {
    const dirs = [];
    for (const d of directions) dirs.push({ id: d.id, ...(await loadDirection(d.file, d.key)) });
    const ckpt = await open(file);
    try {
      const rows: Array<{ writer: string; removed: Record<string, number> }> = [];
      for (const wr of writers) {
        if (signal?.aborted) throw new CancelledError();
        const e = ckpt.get(wr.name);
        if (!e) continue;
        const shape = e.shape.length === 1 ? [e.shape[0], 1] : e.shape;
        const w = await e.read();
        let fro = 0;
        for (let i = 0; i < w.length; i++) fro += w[i] * w[i];
        fro = Math.sqrt(fro);
        const removed: Record<string, number> = {};
        for (const d of dirs) {
          const axis = e.shape.length === 1 ? 0 : wr.axis;
          if (d.r.length !== shape[axis]) { removed[d.id] = NaN; continue; }
          removed[d.id] = fro > 0 ? directionComponent(w, shape[0], shape[1], d.r, axis) / fro : 0;
        }
        rows.push({ writer: wr.name, removed });
      }
      return rows;
    } finally {
      await ckpt.close();
    }
  }

  /** The residual writers of a model (surgery's detection) and its 2-D tensors. */
  async residual(file: string) {
    const ckpt = await open(file);
    try {
      const rep = residualWriters(ckpt);
      const matrices = ckpt.tensors.filter((t) => t.shape.length === 2).map((t) => ({
        name: t.name, shape: t.shape, residualAxis: rep.writers.find((w) => w.name === t.name)?.residualAxis,
      }));
      return { rep, matrices, metadata: ckpt.metadata };
    } finally {
      await ckpt.close();
    }
  }

  // --- computed directions: the evaluation side's extension point ------------------------------------
  addComputedDirection(d: ComputedDirection): void {
    this.computed.set(d.id, d);
    this.computedChanged.fire();
  }

  removeComputedDirection(id: string): void {
    if (this.computed.delete(id)) this.computedChanged.fire();
  }

  computedDirections(): ComputedDirection[] {
    return [...this.computed.values()];
  }

  dispose(): void {
    for (const s of this.scans.values()) s.abort?.abort();
    void this.pool?.dispose();
    this.pool = undefined;
    void this.backendPromise?.then((b) => b.dispose()).catch(() => undefined);
    this.changed.dispose();
    this.computedChanged.dispose();
  }
}

function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_');
}
