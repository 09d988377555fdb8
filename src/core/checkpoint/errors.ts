/**
 * The one error type every reader throws for bad input. The message always names the file, and where
 * known the tensor and the byte offset, and says what was expected — e.g.
 * `GGUF tensor blk.3.ffn_down.weight: data ends at byte 9,437,184, file has 8,388,608`.
 */
export class CheckpointError extends Error {
  readonly file: string;
  readonly tensor?: string;
  readonly offset?: number;

  constructor(file: string, message: string, opts: { tensor?: string; offset?: number; cause?: unknown } = {}) {
    const where = [
      file,
      opts.tensor !== undefined ? `tensor ${opts.tensor}` : undefined,
      opts.offset !== undefined ? `byte ${formatBytes(opts.offset)}` : undefined,
    ].filter(Boolean).join(', ');
    super(`${where}: ${message}`, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'CheckpointError';
    this.file = file;
    this.tensor = opts.tensor;
    this.offset = opts.offset;
  }
}

/** 9437184 -> "9,437,184" (byte offsets are easier to read grouped). */
export function formatBytes(n: number | bigint): string {
  return n.toLocaleString('en-US');
}

/** Thrown when a long operation is cancelled through an AbortSignal. */
export class CancelledError extends Error {
  constructor(message = 'Cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
