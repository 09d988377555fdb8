/**
 * The worker entry (bundled to out/worker.js). It receives one task at a time from the pool, opens
 * the checkpoint itself by path (header only; reopened when the file's size or mtime changes), reads
 * the one tensor, analyses it and posts back a JSON-serialisable result. Errors are posted per task;
 * the worker stays up for the next one.
 */
import { parentPort } from 'node:worker_threads';
import { promises as fs } from 'node:fs';
import { open } from '../checkpoint/open';
import type { Checkpoint } from '../checkpoint/types';
import { CheckpointError } from '../checkpoint/errors';
import { getLinalgBackend } from '../linalg/index';
import type { LinalgBackend } from '../linalg/types';
import { analyzeTensor } from '../analysis/analyze';
import type { WorkerReply, WorkerRequest, WorkerBackendSettings } from './types';

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

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  try {
    const ckpt = await checkpointFor(req.path);
    const entry = ckpt.get(req.tensor);
    if (!entry) throw new CheckpointError(req.path, 'no such tensor in the checkpoint', { tensor: req.tensor });
    const backend = await backendFor(req.settings);
    const data = await entry.read();
    const result = await analyzeTensor(backend, entry, data, req.options);
    return { type: 'result', taskId: req.taskId, result };
  } catch (e) {
    const err = e as Error;
    return { type: 'error', taskId: req.taskId, error: { name: err?.name ?? 'Error', message: err?.message ?? String(e) } };
  }
}

if (parentPort) {
  const port = parentPort;
  port.on('message', (req: WorkerRequest) => {
    void handle(req).then((reply) => port.postMessage(reply));
  });
}
