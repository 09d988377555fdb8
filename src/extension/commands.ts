import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';
import { OVERVIEW_VIEW_TYPE, type CheckpointEditorProvider } from './checkpointEditor';
import { readSummary } from './loader';
import { log, logError, registerSafeCommand } from './log';
import type { ModelStore } from './modelStore';
import { SHOW_TENSOR_COMMAND, type ModelTreeNode, type ModelTreeProvider } from './modelTree';
import { withDelayedProgress } from './progress';

/** Command ids (package.json contributes.commands). */
export const COMMANDS = {
  openCheckpoint: 'tensorScalpel.openCheckpoint',
  openSample: 'tensorScalpel.openSample',
  showLog: 'tensorScalpel.showLog',
  filterModels: 'tensorScalpel.filterModels',
  clearFilter: 'tensorScalpel.clearFilter',
  removeModel: 'tensorScalpel.removeModel',
  refresh: 'tensorScalpel.refresh',
  showTensor: SHOW_TENSOR_COMMAND,
} as const;

/** The bundled sample: Karpathy's stories260K Llama as GGUF (media/sample/NOTICE.md). */
export function sampleModelUri(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'media', 'sample', 'stories260K.gguf');
}

/** File-dialog filters: every name the overview editor is registered for. */
const OPEN_FILTERS: Record<string, string[]> = {
  'Checkpoints': ['safetensors', 'gguf', 'onnx', 'pt', 'pth', 'bin', 'json'],
  'All files': ['*'],
};

interface Deps {
  context: vscode.ExtensionContext;
  store: ModelStore;
  tree: ModelTreeProvider;
  editors: CheckpointEditorProvider;
}

export function registerCommands({ context, store, tree, editors }: Deps): void {
  const reg = (id: string, fn: (...args: any[]) => unknown) => registerSafeCommand(context, id, fn);

  reg(COMMANDS.openCheckpoint, async () => {
    const uris = await vscode.window.showOpenDialog({
      canSelectMany: true, canSelectFiles: true, canSelectFolders: false,
      openLabel: 'Open Checkpoint', title: 'Open Checkpoint', filters: OPEN_FILTERS,
    });
    if (!uris?.length) return;
    await openAll(uris);
  });

  reg(COMMANDS.openSample, async () => {
    await vscode.commands.executeCommand('vscode.openWith', sampleModelUri(context.extensionUri), OVERVIEW_VIEW_TYPE);
  });

  reg(COMMANDS.showLog, () => log().show());

  reg(COMMANDS.filterModels, async () => {
    const value = await vscode.window.showInputBox({
      title: 'Filter Models',
      prompt: 'Show only tensors whose name contains this text (several words: all must occur). Empty clears the filter.',
      placeHolder: 'e.g. attn_q, blk.3, ffn',
      value: tree.filter,
    });
    if (value === undefined) return;
    tree.setFilter(value);
  });

  reg(COMMANDS.clearFilter, () => tree.setFilter(''));

  reg(COMMANDS.removeModel, async (node?: ModelTreeNode, selected?: ModelTreeNode[]) => {
    const targets: vscode.Uri[] = [];
    const clicked = node && typeof node === 'object' && 'model' in node ? node : undefined;
    // VS Code passes the tree's whole selection too; it applies only when the clicked row is part of it
    // (an inline button on an unselected row means just that row).
    if (clicked && selected?.some((n) => n.id === clicked.id)) targets.push(...selected.map((n) => n.model.uri));
    else if (clicked) targets.push(clicked.model.uri);
    else if (editors.activeDocument && store.has(editors.activeDocument.uri)) targets.push(editors.activeDocument.uri);
    else {
      const models = store.all();
      if (models.length === 0) return;
      const pick = await vscode.window.showQuickPick(
        models.map((m) => ({ label: path.basename(m.uri.fsPath), description: m.summary.formatDetail, detail: m.uri.fsPath, uri: m.uri })),
        { title: 'Remove Model from the Models view', canPickMany: true },
      );
      if (!pick?.length) return;
      targets.push(...pick.map((p) => p.uri));
    }
    for (const uri of new Set(targets.map((u) => u.toString()))) store.remove(vscode.Uri.parse(uri));
  });

  reg(COMMANDS.refresh, async () => {
    const models = store.all();
    const openDocs = editors.openDocuments();
    await withDelayedProgress('Tensor Scalpel: reading headers again', async (signal, report) => {
      let i = 0;
      for (const m of models) {
        if (signal.aborted) throw new CancelledError();
        report(path.basename(m.uri.fsPath), 100 / Math.max(1, models.length));
        try {
          store.set(m.uri, await readSummary(m.uri, signal));
        } catch (err) {
          if (err instanceof CancelledError) throw err;
          // A file that vanished or broke stays listed with its old summary; the log says why.
          logError(`refresh ${m.uri.fsPath}`, err);
        }
        i++;
      }
      for (const d of openDocs) {
        if (signal.aborted) throw new CancelledError();
        await d.load();
      }
      log().info(`refreshed ${i} model(s) and ${openDocs.length} open overview(s)`);
    });
    tree.refresh();
  });

  reg(COMMANDS.showTensor, async (uri?: vscode.Uri, name?: string) => {
    if (!(uri instanceof vscode.Uri) || typeof name !== 'string') return;
    await editors.showTensor(uri, name);
  });

  /** Opens each file in the overview editor; many files get one cancellable progress notification. */
  async function openAll(uris: vscode.Uri[]): Promise<void> {
    if (uris.length === 1) {
      await vscode.commands.executeCommand('vscode.openWith', uris[0], OVERVIEW_VIEW_TYPE);
      return;
    }
    await withDelayedProgress(`Tensor Scalpel: opening ${uris.length} checkpoints`, async (signal, report) => {
      for (const uri of uris) {
        if (signal.aborted) throw new CancelledError();
        report(path.basename(uri.fsPath), 100 / uris.length);
        await vscode.commands.executeCommand('vscode.openWith', uri, OVERVIEW_VIEW_TYPE, { preview: false, preserveFocus: true });
      }
    });
  }
}
