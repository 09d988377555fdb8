/**
 * A whole-model spectrum scan: the caller's thread opens the checkpoint header, picks the matrices,
 * serves what it can from the result cache and sends the rest, tensor by tensor, to the worker pool.
 * Results stream out through onResult as they arrive and come back in checkpoint order.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from '../checkpoint/open';
import { CancelledError } from '../checkpoint/errors';
import type { TensorEntry } from '../checkpoint/types';
import { matrixShape } from '../analysis/spectrum';
import { SPECTRUM_ANALYSIS_VERSION, type SpectrumOptions, type TensorSpectrum } from '../analysis/analyze';
import { WorkerPool } from './pool';
import { ResultCache, cacheKey, fileIdentity, type FileIdentity } from './cache';
import type { BackendPreference, ScanProgress, SpectrumScanResult, TensorFailure } from './types';

export interface SpectrumScanOptions extends SpectrumOptions {
  backend?: BackendPreference;
  libraryPath?: string;
  /** Which tensors: a predicate over the index (default: every tensor that is a matrix). */
  filter?: (t: TensorEntry) => boolean;
  /** A long-lived pool to use (the extension keeps one); otherwise one is made and disposed. */
  pool?: WorkerPool;
  /** Workers for a pool made here (default: one per core). */
  workers?: number;
  /** false: no cache; a folder path; or undefined for the default folder (os.tmpdir()/tensor-scalpel-cache). */
  cache?: false | string;
  signal?: AbortSignal;
  onProgress?(p: ScanProgress): void;
  onResult?(r: TensorSpectrum): void;
}

/** The options that change a result (the cache key part); backend preference included. */
function analysisOptions(o: SpectrumScanOptions) {
  return { mode: o.mode ?? 'auto', estimate: o.estimate, bins: o.bins, exactMaxRank: o.exactMaxRank, backend: o.backend ?? 'auto' };
}

export async function scanSpectra(file: string, opts: SpectrumScanOptions = {}): Promise<SpectrumScanResult> {
  const started = performance.now();
  const abs = path.resolve(file);
  const signal = opts.signal;
  if (signal?.aborted) throw new CancelledError();
  const ckpt = await open(abs);
  const ownPool = opts.pool ? undefined : new WorkerPool({ size: opts.workers });
  const pool = opts.pool ?? ownPool!;
  const cache = opts.cache === false ? undefined : new ResultCache(opts.cache);
  // Workers share the cores: each backend gets its share of threads rather than all of them.
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const settings = { backend: opts.backend ?? 'auto', libraryPath: opts.libraryPath, threads: Math.max(1, Math.floor(cores / pool.size)) } as const;
  const options: SpectrumOptions = { mode: opts.mode ?? 'auto', estimate: opts.estimate, bins: opts.bins, exactMaxRank: opts.exactMaxRank };
  try {
    const skipped: string[] = [];
    const selected: TensorEntry[] = [];
    for (const t of ckpt.tensors) {
      if (opts.filter && !opts.filter(t)) continue;
      if (!matrixShape(t.shape)) { skipped.push(t.name); continue; }
      selected.push(t);
    }
    const total = selected.length;
    const results = new Map<string, TensorSpectrum>();
    const failures: TensorFailure[] = [];
    const backends: string[] = [];
    let done = 0, computed = 0, cached = 0;
    const identities = new Map<string, Promise<FileIdentity>>();
    const identityOf = (f: string) => {
      let p = identities.get(f);
      if (!p) { p = fileIdentity(f); identities.set(f, p); }
      return p;
    };
    const record = (r: TensorSpectrum) => {
      results.set(r.name, r);
      if (!backends.includes(r.backend)) backends.push(r.backend);
      opts.onResult?.(r);
    };

    const one = async (t: TensorEntry): Promise<void> => {
      let key: string | undefined;
      if (cache) {
        const id = await identityOf(t.file);
        key = cacheKey({ file: id, name: t.name, dtype: t.dtype, shape: t.shape, byteOffset: t.byteOffset, byteLength: t.byteLength },
          { kind: 'spectrum', version: SPECTRUM_ANALYSIS_VERSION, options: analysisOptions(opts) });
        const hit = await cache.get<TensorSpectrum>(key);
        if (signal?.aborted) throw new CancelledError();
        if (hit) {
          cached++; done++;
          record(hit);
          opts.onProgress?.({ done, total, name: t.name, status: 'cached' });
          return;
        }
      }
      if (signal?.aborted) throw new CancelledError(); // the next tensor boundary: nothing new starts
      opts.onProgress?.({ done, total, name: t.name, status: 'started' });
      try {
        const r = await pool.run({ type: 'spectrum', path: abs, tensor: t.name, options, settings }, signal);
        computed++; done++;
        record(r);
        opts.onProgress?.({ done, total, name: t.name, status: 'computed' });
        if (cache && key) await cache.set(key, r).catch(() => undefined); // a full disk must not fail the scan
      } catch (e) {
        if (e instanceof CancelledError || signal?.aborted) throw e instanceof CancelledError ? e : new CancelledError();
        done++;
        const message = (e as Error).message;
        failures.push({ name: t.name, message });
        opts.onProgress?.({ done, total, name: t.name, status: 'failed', error: message });
      }
    };

    // Every tensor is queued at once; the pool runs `size` of them at a time in checkpoint order.
    const outcomes = await Promise.allSettled(selected.map(one));
    const cancelled = outcomes.find((o) => o.status === 'rejected');
    if (cancelled) throw (cancelled as PromiseRejectedResult).reason;
    return {
      path: abs,
      mode: options.mode,
      backends,
      tensors: selected.filter((t) => results.has(t.name)).map((t) => results.get(t.name)!),
      failures,
      skipped,
      computed,
      cached,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await ckpt.close();
    if (ownPool) await ownPool.dispose();
  }
}
