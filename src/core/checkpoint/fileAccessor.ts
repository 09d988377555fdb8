import { promises as fsp } from 'node:fs';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';

/**
 * Reads byte ranges from a file handle instead of loading the file (the vscode-hexeditor
 * `FileAccessor` idea). Every read is bounds-checked against the file size so a corrupt header can
 * never make us allocate or read past the end.
 */
export class FileAccessor {
  private constructor(
    readonly path: string,
    private readonly handle: fsp.FileHandle,
    readonly size: number,
    readonly mtimeMs: number,
  ) {}

  static async open(path: string): Promise<FileAccessor> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, 'r');
    } catch (e) {
      throw new CheckpointError(path, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      throw new CheckpointError(path, 'not a regular file');
    }
    if (!Number.isSafeInteger(st.size)) {
      await handle.close();
      throw new CheckpointError(path, `file size ${st.size} is beyond Number.MAX_SAFE_INTEGER`);
    }
    return new FileAccessor(path, handle, st.size, st.mtimeMs);
  }

  /**
   * Reads exactly `length` bytes at `offset`. Throws a CheckpointError naming `what` when the range
   * runs past the end of the file.
   */
  async read(offset: number, length: number, what = 'data', opts: { tensor?: string; signal?: AbortSignal } = {}): Promise<Uint8Array> {
    this.checkRange(offset, length, what, opts.tensor);
    const out = new Uint8Array(length);
    // Large tensors are read in chunks so cancellation is honoured and no single read exceeds 2 GiB.
    const CHUNK = 64 * 1024 * 1024;
    let done = 0;
    while (done < length) {
      throwIfAborted(opts.signal);
      const n = Math.min(CHUNK, length - done);
      const { bytesRead } = await this.handle.read(out, done, n, offset + done);
      if (bytesRead === 0) {
        throw new CheckpointError(this.path, `${what}: unexpected end of file (wanted ${formatBytes(length)} bytes)`, { tensor: opts.tensor, offset: offset + done });
      }
      done += bytesRead;
    }
    return out;
  }

  /** Reads up to `length` bytes at `offset` (short at end of file); never throws for the range. */
  async readUpTo(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.handle.read(out, done, n - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === n ? out : out.subarray(0, done);
  }

  checkRange(offset: number, length: number, what: string, tensor?: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new CheckpointError(this.path, `${what}: invalid byte range (offset ${offset}, length ${length})`, { tensor });
    }
    if (offset + length > this.size) {
      throw new CheckpointError(
        this.path,
        `${what}: data ends at byte ${formatBytes(offset + length)}, file has ${formatBytes(this.size)}`,
        { tensor, offset },
      );
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** Converts a bigint from a header into a safe integer, or throws a CheckpointError. */
export function toSafeInt(v: bigint | number, file: string, what: string, opts: { tensor?: string; offset?: number } = {}): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (!Number.isSafeInteger(n) || (typeof v === 'bigint' && BigInt(n) !== v)) {
    throw new CheckpointError(file, `${what} ${v} is not a safe integer (above Number.MAX_SAFE_INTEGER)`, opts);
  }
  return n;
}
