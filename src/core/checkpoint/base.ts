import type { Checkpoint, CheckpointFormat, CheckpointSummary, TensorEntry } from './types';
import { groupOf, groupOrder } from './grouping';
import { CheckpointError } from './errors';

/** Shared bookkeeping for every format: name lookup, duplicate detection, closing the file handles. */
export class BaseCheckpoint implements Checkpoint {
  private readonly byName = new Map<string, TensorEntry>();

  constructor(
    readonly format: CheckpointFormat,
    readonly path: string,
    readonly files: string[],
    readonly sizeOnDisk: number,
    readonly tensors: TensorEntry[],
    readonly metadata: Record<string, unknown>,
    readonly formatDetail: string,
    private readonly onClose: () => Promise<void>,
  ) {
    for (const t of tensors) {
      if (this.byName.has(t.name)) throw new CheckpointError(path, `duplicate tensor name`, { tensor: t.name });
      this.byName.set(t.name, t);
    }
  }

  get(name: string): TensorEntry | undefined {
    return this.byName.get(name);
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}

export function product(shape: readonly number[]): number {
  let p = 1;
  for (const d of shape) p *= d;
  return p;
}

export { groupOf, groupOrder };

/** The JSON summary printed by `inspect --json` and shown by the overview editor. */
export function summarize(ckpt: Checkpoint): CheckpointSummary {
  const dtypeMix: Record<string, number> = {};
  let totalParams = 0;
  // Tied weights (e.g. a PyTorch lm_head sharing wte's storage) are one set of parameters: count each
  // stored byte range once.
  const seen = new Set<string>();
  for (const t of ckpt.tensors) {
    const key = `${t.file}\0${t.byteOffset}\0${t.byteLength}\0${t.dtype}`;
    if (t.byteLength > 0 && seen.has(key)) continue;
    seen.add(key);
    totalParams += t.params;
    dtypeMix[t.dtype] = (dtypeMix[t.dtype] ?? 0) + t.params;
  }
  return {
    format: ckpt.format,
    formatDetail: ckpt.formatDetail,
    path: ckpt.path,
    files: ckpt.files,
    sizeOnDisk: ckpt.sizeOnDisk,
    tensors: ckpt.tensors.map((t) => ({
      name: t.name, shape: t.shape, dtype: t.dtype, params: t.params, group: t.group.label,
      byteOffset: t.byteOffset, byteLength: t.byteLength, file: t.file,
    })),
    totalParams,
    dtypeMix,
    metadata: ckpt.metadata,
  };
}
