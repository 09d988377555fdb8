/**
 * The worker entry (bundled to out/worker.js). It receives one task at a time from the pool:
 *  - 'spectrum' / 'compress-table': opens the checkpoint itself by path (header only; reopened when
 *    the file's size or mtime changes), reads the one tensor, analyses it;
 *  - 'apply-recipe': runs applyRecipe, posting a 'progress' message per step; a 'cancel' message
 *    aborts the AbortSignal applyRecipe runs under, and applyRecipe deletes its own temp files.
 * Results are JSON-serialisable (structured clone). Errors are posted per task; the worker stays up.
 */
import { parentPort } from 'node:worker_threads';
import { promises as fs } from 'node:fs';
import { open } from '../checkpoint/open';
import type { Checkpoint } from '../checkpoint/types';
import { CheckpointError } from '../checkpoint/errors';
import { getLinalgBackend } from '../linalg/index';
import type { LinalgBackend } from '../linalg/types';
import { analyzeTensor } from '../analysis/analyze';
import { compressTensorTable } from '../analysis/chiTable';
import { applyRecipe } from '../surgery/apply';
import type { WorkerReply, WorkerRequest, WorkerTaskRequest, WorkerBackendSettings, TaskResults, TaskType } from './types';

const backends = new Map<string, Promise<LinalgBackend>>();
function backendFor(s: WorkerBackendSettings): Promise<LinalgBackend> {
  const key = `${s.backend}\u0000${s.libraryPath ?? ''}\u0000${s.threads ?? ''}`;
  let b = backends.get(key);
  if (!b) {
    b = getLinalgBackend(s.backend, { libraryPath: s.libraryPath, threads: s.threads });
    backends.set(key, b);
    b.catch(() => backends.delete(key)); // let a later task retry
  }
  return b;
}

let openCheckpoint: { key: string; ckpt: Promise<Checkpoint> } | undefined;
async function checkpointFor(file: string): Promise<Checkpoint> {
  const st = await fs.stat(file);
  const key = `${file}\u0000${st.size}\u0000${st.mtimeMs}`;
  if (openCheckpoint?.key !== key) {
    const previous = openCheckpoint;
    openCheckpoint = { key, ckpt: open(file) };
    openCheckpoint.ckpt.catch(() => { if (openCheckpoint?.key === key) openCheckpoint = undefined; });
    if (previous) void previous.ckpt.then((c) => c.close(), () => undefined);
  }
  return openCheckpoint.ckpt;
}

/** Abort controllers of the running tasks, so a 'cancel' message can reach them. */
const running = new Map<number, AbortController>();

async function entryFor(file: string, tensor: string) {
  const ckpt = await checkpointFor(file);
  const entry = ckpt.get(tensor);
  if (!entry) throw new CheckpointError(file, 'no such tensor in the checkpoint', { tensor });
  return entry;
}

async function compute(req: WorkerTaskRequest, signal: AbortSignal, post: (m: WorkerReply) => void): Promise<TaskResults[TaskType]> {
  switch (req.type) {
    case 'spectrum': {
      const entry = await entryFor(req.path, req.tensor);
      const backend = await backendFor(req.settings);
      const data = await entry.read();
      return analyzeTensor(backend, entry, data, req.options);
    }
    case 'compress-table': {
      const entry = await entryFor(req.path, req.tensor);
      return compressTensorTable(entry, await backendFor(req.settings), req.factors, signal);
    }
    case 'apply-recipe': {
      // The worker's cached backend (not disposed by applyRecipe: it is passed in).
      const backend = await backendFor(req.settings);
      return applyRecipe(req.recipe, {
        ...req.options, backend, signal,
        onProgress: (p) => post({
          type: 'progress', taskId: req.taskId,
          progress: { done: p.index, total: p.count, name: p.name, phase: p.phase, message: p.message },
        }),
      });
    }
  }
}

async function handle(req: WorkerTaskRequest, post: (m: WorkerReply) => void): Promise<WorkerReply> {
  const ac = new AbortController();
  running.set(req.taskId, ac);
  try {
    const result = await compute(req, ac.signal, post);
    return { type: 'result', taskId: req.taskId, result };
  } catch (e) {
    const err = e as Error;
    return { type: 'error', taskId: req.taskId, error: { name: err?.name ?? 'Error', message: err?.message ?? String(e) } };
  } finally {
    running.delete(req.taskId);
  }
}

if (parentPort) {
  const port = parentPort;
  const post = (m: WorkerReply) => port.postMessage(m);
  port.on('message', (req: WorkerRequest) => {
    if (req.type === 'cancel') {
      running.get(req.taskId)?.abort();
      return;
    }
    void handle(req, post).then(post);
  });
}
