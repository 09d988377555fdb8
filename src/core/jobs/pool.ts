/**
 * A pool of worker_threads that runs heavy work off the caller's thread (in the extension: off the
 * extension host), one task per worker at a time, so peak memory stays near (workers x the largest
 * tensor). The caller's thread only passes small messages; the workers open checkpoints themselves by
 * path. Task types (types.ts): 'spectrum' and 'compress-table' (one tensor each) and 'apply-recipe'
 * (writes a whole edited model; streams progress).
 *
 * Cancellation: a task whose AbortSignal fires while queued is dropped. A running 'spectrum' or
 * 'compress-table' task has its worker terminated at once (it may be deep inside a LAPACK call that
 * cannot be interrupted, and it leaves nothing behind) and a fresh worker is started for the next
 * task. A running 'apply-recipe' is asked to stop: the worker aborts its own AbortSignal and
 * applyRecipe deletes its temp files itself; if the worker has not answered within the grace period
 * (a long synchronous LAPACK call), it is terminated and the pool deletes that write's temp files
 * (outputCleanup.ts). Either way the task rejects with CancelledError, and only after the worker has
 * stopped and the files are gone. A worker that crashes fails only its own task; the pool replaces it.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError } from '../checkpoint/errors';
import { listTempOutputs, removeTempOutputs } from './outputCleanup';
import type { TaskInput, TaskProgress, TaskResults, WorkerReply, WorkerRequest, WorkerTaskRequest } from './types';

export interface WorkerPoolOptions {
  /** Number of workers (default: one per core, os.availableParallelism()). */
  size?: number;
  /** The worker entry (default: worker.js next to this bundle, or worker.ts under tsx). */
  workerScript?: string;
  /**
   * How long a cancelled 'apply-recipe' may take to stop on its own before its worker is terminated
   * (default 2000 ms). A LAPACK call cannot be interrupted, so the worker sees the cancel only between
   * calls; 2 s covers one factorisation of a few-thousand-wide matrix.
   */
  cancelGraceMs?: number;
}

/** Per-call options of WorkerPool.run. */
export interface RunOptions {
  signal?: AbortSignal;
  /** Progress the worker reports (apply-recipe), delivered in order; none after cancellation. */
  onProgress?: (p: TaskProgress) => void;
  /**
   * Run ahead of the tasks already queued without it (but after earlier urgent ones): for work a user
   * is waiting on (an editor's table, a write) while a whole-model scan has queued every tensor.
   */
  urgent?: boolean;
}

/** Counters for tests and logs. */
export interface PoolStats {
  /** Tasks a worker finished with a result (i.e. real computations). */
  computed: number;
  failed: number;
  cancelled: number;
  /** Workers started over the pool's life (initial ones plus replacements). */
  workersStarted: number;
  /** Workers terminated because of cancellation or a crash. */
  workersRecycled: number;
  /** Cancelled apply-recipe tasks whose worker did not stop within the grace period. */
  forcedStops: number;
  /** Temp files the pool deleted after terminating a writing worker. */
  tempFilesRemoved: number;
}

interface Task {
  request: WorkerTaskRequest;
  resolve(v: unknown): void;
  reject(e: Error): void;
  signal?: AbortSignal;
  onProgress?: (p: TaskProgress) => void;
  /** apply-recipe: the output path and the temp files beside it that predate this write (not ours). */
  output?: { target: string; before: Set<string> };
  urgent?: boolean;
  /** Set once a cancel was sent to the worker (cooperative stop in progress). */
  cancelling?: { timer: NodeJS.Timeout };
}

interface Slot {
  worker: Worker;
  task?: Task;
}

/** Task types whose worker is asked to stop (and cleans up after itself) rather than terminated at once. */
function stopsCooperatively(r: WorkerTaskRequest): boolean {
  return r.type === 'apply-recipe';
}

/**
 * Where the worker entry lives. Bundled: out/worker.js beside out/cli.js and out/extension.js (this
 * code is inlined into those, so __dirname is out/). Under tsx (tests, `tsx src/cli/main.ts`):
 * src/core/jobs/worker.ts beside this file.
 */
export function defaultWorkerScript(): string {
  for (const name of ['worker.js', 'worker.ts']) {
    const p = path.join(__dirname, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`worker entry not found next to ${__dirname} (expected worker.js from the build, or worker.ts under tsx)`);
}

/**
 * Starts a worker. A .ts entry (tests under tsx) is loaded through tsx's CommonJS hook from a small
 * eval'd bootstrap: on Node 20 a worker inherits `--import tsx` in execArgv, but the ESM hooks are
 * not in place before the worker's entry is resolved, so `new Worker('x.ts')` fails with
 * ERR_UNKNOWN_FILE_EXTENSION (tried here). A .js entry gets no execArgv: the extension host's flags
 * (inspector ports...) must not be inherited.
 */
function startWorker(script: string): Worker {
  if (script.endsWith('.ts')) {
    // A variable, not a literal: the bundler must not try to resolve tsx (a dev dependency, absent in a .vsix).
    const tsxHook = 'tsx/cjs';
    const tsx = require.resolve(tsxHook);
    return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(script)});`, { eval: true });
  }
  return new Worker(script, { execArgv: [] });
}

export class WorkerPool {
  readonly size: number;
  readonly workerScript: string;
  readonly cancelGraceMs: number;
  readonly stats: PoolStats = { computed: 0, failed: 0, cancelled: 0, workersStarted: 0, workersRecycled: 0, forcedStops: 0, tempFilesRemoved: 0 };
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextTaskId = 1;
  /** One abort listener per signal, however many tasks share it (a scan queues every tensor at once). */
  private readonly bySignal = new Map<AbortSignal, { tasks: Set<Task>; listener: () => void }>();
  private disposed = false;

  constructor(opts: WorkerPoolOptions = {}) {
    const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    this.size = Math.max(1, Math.floor(opts.size ?? cores));
    this.workerScript = opts.workerScript ?? defaultWorkerScript();
    this.cancelGraceMs = Math.max(0, opts.cancelGraceMs ?? 2000);
  }

  /**
   * Runs one task on the next free worker. The second argument is an AbortSignal (the original
   * form) or RunOptions with a signal and an onProgress callback.
   */
  run<R extends TaskInput>(request: R, opts?: AbortSignal | RunOptions): Promise<TaskResults[R['type']]> {
    const { signal, onProgress, urgent } = opts instanceof AbortSignal ? { signal: opts, onProgress: undefined, urgent: false } : (opts ?? {});
    if (this.disposed) return Promise.reject(new Error('worker pool is disposed'));
    if (signal?.aborted) {
      this.stats.cancelled++;
      return Promise.reject(new CancelledError());
    }
    const full = { ...request, taskId: this.nextTaskId++ } as WorkerTaskRequest;
    if (full.type === 'apply-recipe') return this.runWriting(full, { signal, onProgress, urgent }) as Promise<TaskResults[R['type']]>;
    return new Promise((resolve, reject) => {
      this.enqueue({ request: full, resolve: resolve as (v: unknown) => void, reject, signal, onProgress, urgent });
    });
  }

  /**
   * A write first lists the temp files already beside its target, so that a forced stop deletes only
   * its own (another write to the same name may be running elsewhere).
   */
  private async runWriting(request: WorkerTaskRequest & { type: 'apply-recipe' }, { signal, onProgress, urgent }: RunOptions): Promise<unknown> {
    const target = request.options.output ?? request.recipe.output?.path;
    const before = target ? new Set(await listTempOutputs(target)) : new Set<string>();
    if (this.disposed) throw new Error('worker pool is disposed');
    if (signal?.aborted) {
      this.stats.cancelled++;
      throw new CancelledError();
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ request, resolve, reject, signal, onProgress, urgent, output: target ? { target, before } : undefined });
    });
  }

  private enqueue(task: Task): void {
    const signal = task.signal;
    if (signal) {
      let group = this.bySignal.get(signal);
      if (!group) {
        const tasks = new Set<Task>();
        // Queued tasks first, so that cancelling a running one cannot start a queued one.
        const listener = () => {
          const all = [...tasks].sort((a, b) => Number(this.queue.includes(b)) - Number(this.queue.includes(a)));
          for (const t of all) this.cancel(t);
        };
        group = { tasks, listener };
        this.bySignal.set(signal, group);
        signal.addEventListener('abort', listener, { once: true });
      }
      group.tasks.add(task);
    }
    const at = task.urgent ? this.queue.findIndex((t) => !t.urgent) : -1;
    if (at >= 0) this.queue.splice(at, 0, task);
    else this.queue.push(task);
    this.dispatch();
  }

  /** Number of tasks waiting or running. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.task).length;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    for (const t of this.queue.splice(0)) this.settle(t, new Error('worker pool disposed'));
    const slots = this.slots.splice(0);
    await Promise.all(slots.map(async (s) => {
      const task = s.task;
      s.task = undefined;
      if (task?.cancelling) clearTimeout(task.cancelling.timer);
      await s.worker.terminate();
      if (task) {
        await this.removeLeftovers(task);
        this.settle(task, new Error('worker pool disposed'));
      }
    }));
  }

  private spawnScheduled = false;

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.task);
      let spawned = false;
      if (!slot) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
        spawned = true;
      }
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.postMessage(task.request satisfies WorkerRequest);
      if (spawned && this.queue.length > 0 && !this.spawnScheduled) {
        // new Worker() costs the calling thread a few ms (tens under load): start the next one on a
        // later turn of the event loop rather than all of them in one blocking stretch.
        this.spawnScheduled = true;
        setImmediate(() => { this.spawnScheduled = false; if (!this.disposed) this.dispatch(); });
        return;
      }
    }
  }

  private spawn(): Slot {
    const worker = startWorker(this.workerScript);
    this.stats.workersStarted++;
    const slot: Slot = { worker };
    worker.on('message', (reply: WorkerReply) => {
      const task = slot.task;
      if (!task || task.request.taskId !== reply.taskId) return; // a reply for a task already cancelled
      if (reply.type === 'progress') {
        if (task.cancelling || !task.onProgress) return;
        try {
          task.onProgress(reply.progress);
        } catch {
          // A throwing listener must not take the pool down; the task goes on.
        }
        return;
      }
      slot.task = undefined;
      if (task.cancelling) clearTimeout(task.cancelling.timer);
      if (reply.type === 'result') {
        // A write that finished before it saw the cancel has produced its file: report that truthfully.
        this.stats.computed++;
        this.settle(task, undefined, reply.result);
      } else if (task.cancelling || reply.error.name === 'CancelledError') {
        this.stats.cancelled++;
        this.settle(task, new CancelledError());
      } else {
        this.stats.failed++;
        const err = new Error(reply.error.message);
        err.name = reply.error.name;
        this.settle(task, err);
      }
      this.dispatch();
    });
    const onDeath = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // already removed (terminated on purpose)
      this.slots.splice(i, 1);
      this.stats.workersRecycled++;
      const task = slot.task;
      slot.task = undefined;
      if (task) {
        if (task.cancelling) clearTimeout(task.cancelling.timer);
        const wasCancelling = task.cancelling !== undefined;
        void this.removeLeftovers(task).finally(() => {
          if (wasCancelling) {
            this.stats.cancelled++;
            this.settle(task, new CancelledError());
          } else {
            this.stats.failed++;
            this.settle(task, new Error(`worker stopped while running ${task.request.type}: ${why}`));
          }
        });
      }
      if (!this.disposed) this.dispatch();
    };
    worker.on('error', (e) => onDeath(e.message));
    worker.on('exit', (code) => onDeath(`exit code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private cancel(task: Task): void {
    const qi = this.queue.indexOf(task);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      this.stats.cancelled++;
      this.settle(task, new CancelledError());
      this.dispatch();
      return;
    }
    const slot = this.slots.find((s) => s.task === task);
    if (!slot || task.cancelling) return; // already settled, or already stopping
    if (stopsCooperatively(task.request)) {
      // Ask first: applyRecipe's own cleanup is the reliable one. The slot stays busy until the
      // worker answers (or is terminated), so no other task lands on a worker that is still writing.
      slot.worker.postMessage({ type: 'cancel', taskId: task.request.taskId } satisfies WorkerRequest);
      const timer = setTimeout(() => void this.forceStop(slot, task), this.cancelGraceMs);
      task.cancelling = { timer };
      return;
    }
    // The worker is mid-computation and leaves nothing behind: stop it and let the next task start on a fresh one.
    this.slots.splice(this.slots.indexOf(slot), 1);
    slot.task = undefined;
    this.stats.workersRecycled++;
    void slot.worker.terminate();
    this.stats.cancelled++;
    this.settle(task, new CancelledError());
    this.dispatch();
  }

  /** The grace period is over: terminate the worker, then delete the temp files its write left. */
  private async forceStop(slot: Slot, task: Task): Promise<void> {
    const i = this.slots.indexOf(slot);
    if (i < 0 || slot.task !== task) return; // it answered (or died) meanwhile
    this.slots.splice(i, 1);
    slot.task = undefined;
    this.stats.workersRecycled++;
    this.stats.forcedStops++;
    // Once terminate() resolves the thread is gone: nothing can create a file after the cleanup below.
    await slot.worker.terminate();
    await this.removeLeftovers(task);
    this.stats.cancelled++;
    this.settle(task, new CancelledError());
    if (!this.disposed) this.dispatch();
  }

  private async removeLeftovers(task: Task): Promise<void> {
    if (!task.output) return;
    try {
      this.stats.tempFilesRemoved += (await removeTempOutputs(task.output.target, task.output.before)).length;
    } catch {
      // Best effort: a folder we cannot list or a file we cannot delete is the user's to see.
    }
  }

  private settle(task: Task, err?: Error, value?: unknown): void {
    const group = task.signal ? this.bySignal.get(task.signal) : undefined;
    if (group) {
      group.tasks.delete(task);
      if (group.tasks.size === 0) {
        task.signal!.removeEventListener('abort', group.listener);
        this.bySignal.delete(task.signal!);
      }
    }
    if (err) task.reject(err);
    else task.resolve(value);
  }
}
