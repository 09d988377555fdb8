/**
 * Which model (and tensor) a command acts on. Commands are reached from a Models-tree node (context
 * menu), from (uri, tensorName) arguments (command links, other extensions, tests), from the active
 * overview editor, or from the palette with nothing selected — then the user picks among the open models.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CheckpointEditorProvider } from './checkpointEditor';
import type { ModelStore } from './modelStore';
import type { ModelTreeNode } from './modelTree';

export interface CommandTarget { uri: vscode.Uri; name?: string }

/** A Models-tree node is recognised by shape: commands receive it as a plain argument. */
function isTreeNode(arg: unknown): arg is ModelTreeNode {
  return arg !== null && typeof arg === 'object' && 'kind' in arg && 'model' in arg;
}

/**
 * Resolves the model a command acts on; undefined when there is none (the user is told) or the user
 * dismissed the pick. With `needTensor`, also asks for a 2-D tensor when none came with the argument.
 */
export async function resolveTarget(
  store: ModelStore, editors: CheckpointEditorProvider, arg: unknown, name: unknown, opts: { needTensor?: boolean; title?: string } = {},
): Promise<CommandTarget | undefined> {
  let t: CommandTarget | undefined;
  if (isTreeNode(arg)) t = { uri: arg.model.uri, name: arg.kind === 'tensor' ? arg.tensor.name : undefined };
  else if (arg instanceof vscode.Uri) t = { uri: arg, name: typeof name === 'string' ? name : undefined };
  else if (editors.activeDocument) t = { uri: editors.activeDocument.uri };
  else {
    const models = store.all();
    if (models.length === 0) {
      void vscode.window.showInformationMessage('Tensor Scalpel: open a checkpoint first (Open Checkpoint…).');
      return undefined;
    }
    const pick = models.length === 1 ? { uri: models[0]!.uri } : await vscode.window.showQuickPick(
      models.map((m) => ({ label: path.basename(m.uri.fsPath), description: m.summary.formatDetail, uri: m.uri })), { title: opts.title ?? 'Which model?' });
    if (!pick) return undefined;
    t = { uri: pick.uri };
  }
  if (opts.needTensor && !t.name) {
    const summary = store.get(t.uri)?.summary;
    const mats = (summary?.tensors ?? []).filter((x) => x.shape.length >= 2);
    const pick = await vscode.window.showQuickPick(mats.map((x) => ({ label: x.name, description: `[${x.shape.join(', ')}] ${x.dtype}` })), { title: 'Which tensor?', matchOnDescription: true });
    if (!pick) return undefined;
    t.name = pick.label;
  }
  return t;
}
