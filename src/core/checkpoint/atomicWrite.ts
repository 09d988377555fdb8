/**
 * Atomic output for every checkpoint writer: nothing is ever written over an input, and a target
 * either keeps its old content or gets the complete new file — never a half-written one.
 *
 * The protocol (the one POSIX guarantees for rename(2) within one file system):
 *   1. refuse a target that is (or resolves to, through symlinks or hard links) one of the inputs;
 *   2. write into a fresh temporary file beside the target (`.<name>.tmp-<random>`, same folder, so
 *      the rename never crosses file systems), created with O_EXCL so it can never clobber anything;
 *   3. flush and fsync the temporary file, close it;
 *   4. rename it over the target, then fsync the folder so the rename itself is durable (skipped
 *      silently where folders cannot be opened, e.g. Windows);
 *   5. on any error or cancellation before step 4: close and delete the temporary file.
 *
 * For a set of files (safetensors shards + index) every file is completed and synced before the
 * first rename, and the renames happen in the order given (the index last), so a reader never finds
 * an index that names a shard which is not yet in place.
 */
import { promises as fsp, constants as fsConstants } from 'node:fs';
import * as nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointError, throwIfAborted } from './errors';

/** Appends are collected into a buffer of this size before they reach the file. */
const DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024;
/** Chunks at least this large bypass the buffer (after flushing it), saving a copy. */
const DIRECT_WRITE_BYTES = 1024 * 1024;

/**
 * A buffered writer over an open file handle. `write` appends at the logical end (`position`);
 * `writeAt` patches bytes already written (e.g. a header whose sizes are known only at the end).
 * Positions are plain numbers (safe integers), so files beyond 4 GiB work.
 */
export class BufferedFileWriter {
  private buffer: Uint8Array;
  private used = 0;
  /** File offset of buffer[0]. */
  private flushedTo: number;

  constructor(
    private readonly handle: fsp.FileHandle,
    readonly path: string,
    opts: { bufferBytes?: number; startPosition?: number } = {},
  ) {
    this.buffer = new Uint8Array(opts.bufferBytes ?? DEFAULT_BUFFER_BYTES);
    this.flushedTo = opts.startPosition ?? 0;
  }

  /** Bytes written so far (the offset the next `write` lands at). */
  get position(): number {
    return this.flushedTo + this.used;
  }

  /** Appends `bytes`. */
  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength >= DIRECT_WRITE_BYTES) {
      await this.flush();
      await this.writeFully(bytes, this.flushedTo);
      this.flushedTo += bytes.byteLength;
      return;
    }
    let src = bytes;
    while (src.byteLength > 0) {
      const room = this.buffer.byteLength - this.used;
      const n = Math.min(room, src.byteLength);
      this.buffer.set(src.subarray(0, n), this.used);
      this.used += n;
      src = src.subarray(n);
      if (this.used === this.buffer.byteLength) await this.flush();
    }
  }

  /** Appends `count` copies of the byte `fill`. */
  async fill(count: number, fill = 0): Promise<void> {
    const CHUNK = 64 * 1024;
    const block = new Uint8Array(Math.min(count, CHUNK)).fill(fill);
    for (let left = count; left > 0; left -= block.byteLength) {
      await this.write(left >= block.byteLength ? block : block.subarray(0, left));
    }
  }

  /** Appends `fill` bytes until `position` is a multiple of `alignment`; returns the bytes added. */
  async padTo(alignment: number, fill = 0): Promise<number> {
    const pad = (alignment - (this.position % alignment)) % alignment;
    if (pad > 0) await this.fill(pad, fill);
    return pad;
  }

  /** Overwrites `bytes` at `offset`, which must lie within what was already written. */
  async writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + bytes.byteLength > this.position) {
      throw new RangeError(`writeAt(${offset}, ${bytes.byteLength} bytes) is outside the ${this.position} bytes written so far`);
    }
    await this.flush();
    await this.writeFully(bytes, offset);
  }

  /** Writes the buffered bytes to the file. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    await this.writeFully(this.buffer.subarray(0, this.used), this.flushedTo);
    this.flushedTo += this.used;
    this.used = 0;
  }

  /** Flushes and fsyncs: after this the bytes are on stable storage. */
  async sync(): Promise<void> {
    await this.flush();
    await this.handle.sync();
  }

  private async writeFully(bytes: Uint8Array, position: number): Promise<void> {
    // A single write may be short (and is limited to 2 GiB); loop until everything is written.
    const MAX = 1024 * 1024 * 1024;
    let done = 0;
    while (done < bytes.byteLength) {
      const n = Math.min(MAX, bytes.byteLength - done);
      const { bytesWritten } = await this.handle.write(bytes, done, n, position + done);
      if (bytesWritten <= 0) throw new Error(`${this.path}: write returned ${bytesWritten}`);
      done += bytesWritten;
    }
  }
}

/** `.<name>.tmp-<16 hex digits>` in the target's folder. */
export function tempPathFor(target: string): string {
  const dir = nodePath.dirname(target);
  return nodePath.join(dir, `.${nodePath.basename(target)}.tmp-${randomBytes(8).toString('hex')}`);
}

/**
 * The canonical path a (possibly not yet existing) file would have: realpath of the file if it
 * exists, else realpath of its folder joined with its name.
 */
async function canonicalPath(p: string): Promise<string> {
  const abs = nodePath.resolve(p);
  try {
    return await fsp.realpath(abs);
  } catch {
    try {
      return nodePath.join(await fsp.realpath(nodePath.dirname(abs)), nodePath.basename(abs));
    } catch {
      return abs;
    }
  }
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch {
    return undefined;
  }
}

/**
 * Refuses targets that are one of the inputs — by resolved real path (symlinks, `..`, relative
 * paths) and, where both exist, by device + inode (hard links, case-insensitive file systems).
 * Also refuses duplicate targets, targets that are folders and targets in a missing folder.
 */
export async function assertTargetsAreNotInputs(targets: readonly string[], inputs: readonly string[]): Promise<void> {
  const inputInfo = await Promise.all(inputs.map(async (p) => ({ path: p, real: await canonicalPath(p), st: await statOrUndefined(p) })));
  const seen = new Map<string, string>();
  for (const target of targets) {
    const abs = nodePath.resolve(target);
    const real = await canonicalPath(abs);
    const dirSt = await statOrUndefined(nodePath.dirname(abs));
    if (!dirSt || !dirSt.isDirectory()) {
      throw new CheckpointError(abs, `cannot write here: the folder ${nodePath.dirname(abs)} does not exist`);
    }
    const st = await statOrUndefined(abs);
    if (st?.isDirectory()) throw new CheckpointError(abs, 'cannot write the output: the target is a folder, expected a file path');
    for (const inp of inputInfo) {
      const sameInode = st !== undefined && inp.st !== undefined && st.dev === inp.st.dev && st.ino === inp.st.ino;
      if (real === inp.real || sameInode) {
        throw new CheckpointError(abs, `refusing to write the output over an input of this operation (${inp.path}); choose another output path`);
      }
    }
    const prev = seen.get(real);
    if (prev !== undefined) throw new CheckpointError(abs, `the same output file is named twice (${prev} and ${target})`);
    seen.set(real, target);
  }
}

/** fsyncs a folder so a rename inside it is durable; a no-op where folders cannot be opened. */
async function syncDirectory(dir: string): Promise<void> {
  let dh: fsp.FileHandle | undefined;
  try {
    dh = await fsp.open(dir, fsConstants.O_RDONLY);
    await dh.sync();
  } catch {
    // Windows cannot open folders, some file systems refuse fsync on them: the rename still happened.
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

interface PendingFile {
  target: string;
  tmp: string;
  handle?: fsp.FileHandle;
  writer?: BufferedFileWriter;
  finished: boolean;
}

/**
 * A set of output files written through temporary files and committed together. Create it with
 * `AtomicOutputSet.create` (which checks the targets against the inputs), `open(i)` each file when
 * its turn comes, `finish(i)` it (flush, fsync, close), then `commit()` (renames, folder fsync) or
 * `abort()` (deletes every temporary file). `withAtomicOutputs` runs this protocol around a callback.
 */
export class AtomicOutputSet {
  private readonly files: PendingFile[];
  private done = false;

  private constructor(targets: readonly string[], private readonly signal?: AbortSignal) {
    this.files = targets.map((t) => {
      const target = nodePath.resolve(t);
      return { target, tmp: tempPathFor(target), finished: false };
    });
  }

  static async create(targets: readonly string[], inputs: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<AtomicOutputSet> {
    if (targets.length === 0) throw new Error('AtomicOutputSet: no targets');
    await assertTargetsAreNotInputs(targets, inputs);
    throwIfAborted(opts.signal);
    return new AtomicOutputSet(targets, opts.signal);
  }

  get targets(): string[] {
    return this.files.map((f) => f.target);
  }

  get tempPaths(): string[] {
    return this.files.map((f) => f.tmp);
  }

  /** Creates target i's temporary file (exclusively) and returns a writer for it. */
  async open(i: number, opts: { bufferBytes?: number } = {}): Promise<BufferedFileWriter> {
    const f = this.files[i];
    if (this.done) throw new Error('AtomicOutputSet: already committed or aborted');
    if (f.writer) return f.writer;
    f.handle = await fsp.open(f.tmp, 'wx', 0o644);
    f.writer = new BufferedFileWriter(f.handle, f.tmp, opts);
    return f.writer;
  }

  /** Flushes, fsyncs and closes target i's temporary file. */
  async finish(i: number): Promise<void> {
    const f = this.files[i];
    if (!f.writer || !f.handle) throw new Error(`AtomicOutputSet: ${f.target} was never opened`);
    if (f.finished) return;
    await f.writer.sync();
    await f.handle.close();
    f.handle = undefined;
    f.finished = true;
  }

  /**
   * Renames every finished temporary file over its target, in order, then fsyncs the folders.
   * The signal is checked one last time before the first rename: after that the set is committed.
   * If a rename fails, the temporary files not yet renamed are deleted, and so are the targets this
   * commit had newly created (targets that existed before were already replaced and stay replaced).
   */
  async commit(): Promise<void> {
    if (this.done) throw new Error('AtomicOutputSet: already committed or aborted');
    for (let i = 0; i < this.files.length; i++) if (!this.files[i].finished) await this.finish(i);
    throwIfAborted(this.signal);
    const renamed: Array<{ target: string; existed: boolean }> = [];
    try {
      for (const f of this.files) {
        const existed = (await statOrUndefined(f.target)) !== undefined;
        await fsp.rename(f.tmp, f.target);
        renamed.push({ target: f.target, existed });
      }
    } catch (e) {
      this.done = true;
      for (const f of this.files.slice(renamed.length)) await fsp.rm(f.tmp, { force: true }).catch(() => undefined);
      for (const r of renamed) if (!r.existed) await fsp.rm(r.target, { force: true }).catch(() => undefined);
      throw e;
    }
    this.done = true;
    for (const dir of new Set(this.files.map((f) => nodePath.dirname(f.target)))) await syncDirectory(dir);
  }

  /** Closes and deletes every temporary file; never throws. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const f of this.files) {
      await f.handle?.close().catch(() => undefined);
      f.handle = undefined;
      await fsp.rm(f.tmp, { force: true }).catch(() => undefined);
    }
  }
}

export interface AtomicOutputOptions {
  signal?: AbortSignal;
}

/**
 * Runs `fn` with a writer on a temporary file beside `target`; when `fn` resolves, the file is
 * fsynced and renamed over `target`. When `fn` throws (or the signal aborts before the rename) the
 * temporary file is deleted, `target` is untouched and the error is rethrown. `inputs` are the
 * files the output is derived from: a target that resolves to any of them is refused up front.
 */
export async function withAtomicOutput<T>(
  target: string,
  inputs: readonly string[],
  fn: (out: BufferedFileWriter, tmpPath: string) => Promise<T>,
  opts: AtomicOutputOptions = {},
): Promise<T> {
  return withAtomicOutputs([target], inputs, async (set) => fn(await set.open(0), set.tempPaths[0]), opts);
}

/**
 * The same for several files committed as a set (see AtomicOutputSet): `fn` opens each target with
 * `set.open(i)` and may `set.finish(i)` it before opening the next; the commit renames in the order
 * of `targets`.
 */
export async function withAtomicOutputs<T>(
  targets: readonly string[],
  inputs: readonly string[],
  fn: (set: AtomicOutputSet) => Promise<T>,
  opts: AtomicOutputOptions = {},
): Promise<T> {
  const set = await AtomicOutputSet.create(targets, inputs, opts);
  try {
    const result = await fn(set);
    await set.commit();
    return result;
  } catch (e) {
    await set.abort();
    throw e;
  }
}
