import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** The settings under `tensorScalpel.*` (declared in package.json contributes.configuration). */
export type LinalgBackendSetting = 'auto' | 'native' | 'portable';

export interface TensorScalpelSettings {
  /** Worker threads for analysis; the setting's 0 means one per core (resolved here). */
  workers: number;
  linalgBackend: LinalgBackendSetting;
  /** Absolute path of a LAPACK/BLAS shared library, or '' to search the system's. */
  nativeLibraryPath: string;
  /** Folder for cached analysis results (resolved: never empty). */
  cacheFolder: string;
}

/** Reads the settings, resolving defaults: workers 0 -> cores, cacheFolder '' -> the extension's global storage. */
export function readSettings(context: vscode.ExtensionContext): TensorScalpelSettings {
  const c = vscode.workspace.getConfiguration('tensorScalpel');
  const rawWorkers = c.get<number>('workers', 0);
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const workers = Number.isFinite(rawWorkers) && rawWorkers >= 1 ? Math.floor(rawWorkers) : cores;
  const backend = c.get<string>('linalgBackend', 'auto');
  const linalgBackend: LinalgBackendSetting = backend === 'native' || backend === 'portable' ? backend : 'auto';
  const nativeLibraryPath = (c.get<string>('nativeLibraryPath', '') ?? '').trim();
  const folder = (c.get<string>('cacheFolder', '') ?? '').trim();
  const cacheFolder = folder
    ? path.resolve(folder.replace(/^~(?=$|[\\/])/, os.homedir()))
    : vscode.Uri.joinPath(context.globalStorageUri, 'cache').fsPath;
  return { workers, linalgBackend, nativeLibraryPath, cacheFolder };
}
