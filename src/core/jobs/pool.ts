/**
 * A pool of worker_threads that runs analyses off the caller's thread, one task (one tensor) per
 * worker at a time, so peak memory stays near (workers x the largest tensor). The caller's thread only
 * passes small messages; the workers open the checkpoint themselves by path.
 *
 * Cancellation: a task whose AbortSignal fires while queued is dropped; one already running has its
 * worker terminated (it may be deep inside a LAPACK call that cannot be interrupted) and a fresh
 * worker is started for the next task. Either way the task rejects with CancelledError.
 * A worker that crashes fails only its own task; the pool replaces it.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledError } from '../checkpoint/errors';
import type { TensorSpectrum } from '../analysis/analyze';
import type { WorkerReply, WorkerRequest } from './types';

export interface WorkerPoolOptions {
  /** Number of workers (default: one per core, os.availableParallelism()). */
  size?: number;
  /** The worker entry (default: worker.js next to this bundle, or worker.ts under tsx). */
  workerScript?: string;
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
}

interface Task {
  request: WorkerRequest;
  resolve(v: TensorSpectrum): void;
  reject(e: Error): void;
  signal?: AbortSignal;
}

interface Slot {
  worker: Worker;
  task?: Task;
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
  readonly stats: PoolStats = { computed: 0, failed: 0, cancelled: 0, workersStarted: 0, workersRecycled: 0 };
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
  }

  /** Runs one request on the next free worker. */
  run(request: Omit<WorkerRequest, 'taskId'>, signal?: AbortSignal): Promise<TensorSpectrum> {
    if (this.disposed) return Promise.reject(new Error('worker pool is disposed'));
    if (signal?.aborted) {
      this.stats.cancelled++;
      return Promise.reject(new CancelledError());
    }
    return new Promise<TensorSpectrum>((resolve, reject) => {
      const task: Task = { request: { ...request, taskId: this.nextTaskId++ } as WorkerRequest, resolve, reject, signal };
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
      this.queue.push(task);
      this.dispatch();
    });
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
      if (s.task) this.settle(s.task, new Error('worker pool disposed'));
      await s.worker.terminate();
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
      slot.worker.postMessage(task.request);
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
      slot.task = undefined;
      if (reply.type === 'result') {
        this.stats.computed++;
        this.settle(task, undefined, reply.result);
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
      if (slot.task) {
        this.stats.failed++;
        this.settle(slot.task, new Error(`worker stopped while analysing: ${why}`));
        slot.task = undefined;
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
    } else {
      const slot = this.slots.find((s) => s.task === task);
      if (!slot) return; // already settled
      // The worker is mid-computation: stop it and let the next task start on a fresh one.
      this.slots.splice(this.slots.indexOf(slot), 1);
      slot.task = undefined;
      this.stats.workersRecycled++;
      void slot.worker.terminate();
    }
    this.stats.cancelled++;
    this.settle(task, new CancelledError());
    this.dispatch();
  }

  private settle(task: Task, err?: Error, value?: TensorSpectrum): void {
    const group = task.signal ? this.bySignal.get(task.signal) : undefined;
    if (group) {
      group.tasks.delete(task);
      if (group.tasks.size === 0) {
        task.signal!.removeEventListener('abort', group.listener);
        this.bySignal.delete(task.signal!);
      }
    }
    if (err) task.reject(err);
    else task.resolve(value!);
  }
}
