/**
 * Leftovers of a write that was killed: the atomic writer (checkpoint/atomicWrite.ts) writes into
 * `.<name>.tmp-<16 hex>` beside each target and deletes it itself on error or cancellation, but a
 * worker terminated mid-write (it did not stop within the cancel grace period) runs no cleanup. The
 * pool then removes the temp files of that write: those in the target's folder whose name starts with
 * `.<stem>` (every file a write derives from `<stem>.<ext>` starts with the stem: the file itself,
 * safetensors shards `<stem>-00001-of-0000N.safetensors` and index, ONNX `<name>.data`, the
 * `<name>.recipe.json` sidecar) and that did not exist before the write started.
 */
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';

const TEMP_SUFFIX = /\.tmp-[0-9a-f]{16}$/;

/** The common prefix of every file a write to `target` produces. */
function stemOf(target: string): string {
  const base = nodePath.basename(target);
  if (base.endsWith('.safetensors.index.json')) return base.slice(0, -'.safetensors.index.json'.length);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Absolute paths of the atomic writer's temp files that belong to writes of `target`. */
export async function listTempOutputs(target: string): Promise<string[]> {
  const abs = nodePath.resolve(target);
  const dir = nodePath.dirname(abs);
  const prefix = `.${stemOf(abs)}`;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return []; // no folder: nothing was written there
  }
  return names.filter((n) => n.startsWith(prefix) && TEMP_SUFFIX.test(n)).map((n) => nodePath.join(dir, n));
}

/**
 * Deletes the temp files of writes to `target` except those in `before` (another write's, present
 * before ours began). Returns the paths removed.
 */
export async function removeTempOutputs(target: string, before: ReadonlySet<string> = new Set()): Promise<string[]> {
  const removed: string[] = [];
  for (const f of await listTempOutputs(target)) {
    if (before.has(f)) continue;
    try {
      await fsp.unlink(f);
      removed.push(f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return removed;
}
