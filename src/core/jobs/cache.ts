/**
 * Result cache: one JSON file per (tensor, analysis) in a cache folder, so that reopening a model is
 * instant. The key is a SHA-256 of the file identity — absolute path, size and mtime of the file that
 * holds the tensor, the tensor's name, dtype, shape and byte range — together with the analysis kind,
 * its options and version. Any change to the file (size or mtime) or to the options misses the cache.
 * Writes go to a temporary file in the same folder and are renamed into place, so a reader never sees
 * half a file; unreadable entries count as misses.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function defaultCacheDir(): string {
  return path.join(os.tmpdir(), 'tensor-scalpel-cache');
}

export interface FileIdentity {
  path: string;
  size: number;
  mtimeMs: number;
}

export async function fileIdentity(file: string): Promise<FileIdentity> {
  const abs = path.resolve(file);
  const st = await fs.stat(abs);
  return { path: abs, size: st.size, mtimeMs: st.mtimeMs };
}

export interface TensorIdentity {
  file: FileIdentity;
  name: string;
  dtype: string;
  shape: number[];
  byteOffset: number;
  byteLength: number;
}

/** A stable JSON rendering (sorted keys) so that equal options always hash alike. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function cacheKey(tensor: TensorIdentity, analysis: { kind: string; version: number; options: unknown }): string {
  return createHash('sha256').update(stableJson({ tensor, analysis })).digest('hex');
}

export class ResultCache {
  constructor(readonly dir: string = defaultCacheDir()) {}

  private fileOf(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      const text = await fs.readFile(this.fileOf(key), 'utf8');
      const entry = JSON.parse(text) as { key: string; value: T };
      return entry.key === key ? entry.value : undefined;
    } catch {
      return undefined; // missing or unreadable: recompute
    }
  }

  async set<T>(key: string, value: T): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const target = this.fileOf(key);
    const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await fs.writeFile(tmp, JSON.stringify({ key, value }));
    await fs.rename(tmp, target);
  }

  /** Removes every cache entry (the folder itself stays). */
  async clear(): Promise<void> {
    let names: string[] = [];
    try { names = await fs.readdir(this.dir); } catch { return; }
    await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => fs.rm(path.join(this.dir, n), { force: true })));
  }
}
