/**
 * Commands of the analysis views: Analyze Spectrum, Add to Comparison, Compress…, Ablate…, Scan Model
 * (the model map), and the extension point the evaluation side calls to offer computed directions.
 * Each takes a Models-tree node (context menu) or, from the palette, asks for the model and tensor.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisService, ComputedDirection } from './analysis';
import { OVERVIEW_VIEW_TYPE, type CheckpointEditorProvider } from './checkpointEditor';
import { registerSafeCommand } from './log';
import type { ModelStore } from './modelStore';
import type { ModelTreeNode } from './modelTree';
import { AblateView, CompressView, type SpectrumView } from './views';

export const VIEW_COMMANDS = {
  analyzeSpectrum: 'tensorScalpel.analyzeSpectrum',
  addToComparison: 'tensorScalpel.addToComparison',
  compress: 'tensorScalpel.compress',
  ablate: 'tensorScalpel.ablate',
  scanModel: 'tensorScalpel.scanModel',
  /** Extension point: (direction: ComputedDirection) => id. Lists a computed direction in every ablation picker. */
  addComputedDirection: 'tensorScalpel.addComputedDirection',
  removeComputedDirection: 'tensorScalpel.removeComputedDirection',
} as const;

interface Deps {
  context: vscode.ExtensionContext;
  store: ModelStore;
  editors: CheckpointEditorProvider;
  analysis: AnalysisService;
  spectra: SpectrumView;
}

type Target = { uri: vscode.Uri; name?: string };

export function registerViewCommands({ context, store, editors, analysis, spectra }: Deps): void {
  const reg = (id: string, fn: (...args: any[]) => unknown) => registerSafeCommand(context, id, fn);

  /** The model (and tensor) a command acts on: the clicked tree node, (uri, name) arguments, the active overview, or a pick. */
  async function target(arg: unknown, name: unknown, needTensor: boolean): Promise<Target | undefined> {
    let t: Target | undefined;
    if (arg && typeof arg === 'object' && 'kind' in arg && 'model' in arg) {
      const node = arg as ModelTreeNode;
      t = { uri: node.model.uri, name: node.kind === 'tensor' ? node.tensor.name : undefined };
    } else if (arg instanceof vscode.Uri) t = { uri: arg, name: typeof name === 'string' ? name : undefined };
    else if (editors.activeDocument) t = { uri: editors.activeDocument.uri };
    else {
      const models = store.all();
      if (models.length === 0) {
        void vscode.window.showInformationMessage('Tensor Scalpel: open a checkpoint first (Open Checkpoint…).');
        return undefined;
      }
      const pick = models.length === 1 ? { uri: models[0].uri } : await vscode.window.showQuickPick(
        models.map((m) => ({ label: path.basename(m.uri.fsPath), description: m.summary.formatDetail, uri: m.uri })), { title: 'Which model?' });
      if (!pick) return undefined;
      t = { uri: pick.uri };
    }
    if (needTensor && !t.name) {
      const summary = store.get(t.uri)?.summary;
      const mats = (summary?.tensors ?? []).filter((x) => x.shape.length >= 2);
      const pick = await vscode.window.showQuickPick(mats.map((x) => ({ label: x.name, description: `[${x.shape.join(', ')}] ${x.dtype}` })), { title: 'Which tensor?', matchOnDescription: true });
      if (!pick) return undefined;
      t.name = pick.label;
    }
    return t;
  }

  reg(VIEW_COMMANDS.analyzeSpectrum, async (arg?: unknown, name?: unknown) => {
    const t = await target(arg, name, true);
    if (t?.name) await spectra.show(t.uri.fsPath, t.name, false);
  });
  reg(VIEW_COMMANDS.addToComparison, async (arg?: unknown, name?: unknown) => {
    const t = await target(arg, name, true);
    if (t?.name) await spectra.show(t.uri.fsPath, t.name, true);
  });
  reg(VIEW_COMMANDS.compress, async (arg?: unknown, name?: unknown) => {
    const t = await target(arg, name, false);
    if (t) CompressView.show(context, analysis, t.uri.fsPath, t.name);
  });
  reg(VIEW_COMMANDS.ablate, async (arg?: unknown, name?: unknown) => {
    const t = await target(arg, name, false);
    if (t) AblateView.show(context, analysis, t.uri.fsPath, t.name);
  });
  reg(VIEW_COMMANDS.scanModel, async (arg?: unknown) => {
    const t = await target(arg, undefined, false);
    if (!t) return;
    await vscode.commands.executeCommand('vscode.openWith', t.uri, OVERVIEW_VIEW_TYPE);
    editors.showMap(t.uri);
    void analysis.startScan(t.uri.fsPath);
  });
  reg(VIEW_COMMANDS.addComputedDirection, (d?: ComputedDirection) => {
    if (!d || typeof d.id !== 'string' || typeof d.label !== 'string' || typeof d.file !== 'string') {
      throw new Error(`${VIEW_COMMANDS.addComputedDirection} expects { id, label, file, key?, detail? }`);
    }
    analysis.addComputedDirection(d);
    return d.id;
  });
  reg(VIEW_COMMANDS.removeComputedDirection, (id?: string) => {
    if (typeof id === 'string') analysis.removeComputedDirection(id);
  });
}
