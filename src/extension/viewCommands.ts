/**
 * Commands of the analysis views: Analyze Spectrum, Add to Comparison, Compress…, Ablate…, Scan Model
 * (the model map), and the extension point the evaluation side calls to offer computed directions.
 * Each takes a Models-tree node (context menu) or, from the palette, asks for the model and tensor.
 */
import * as vscode from 'vscode';
import type { AnalysisService, ComputedDirection } from './analysis';
import { OVERVIEW_VIEW_TYPE, type CheckpointEditorProvider } from './checkpointEditor';
import { registerSafeCommand } from './log';
import type { ModelStore } from './modelStore';
import { resolveTarget } from './target';
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

export function registerViewCommands({ context, store, editors, analysis, spectra }: Deps): void {
  const reg = (id: string, fn: (...args: any[]) => unknown) => registerSafeCommand(context, id, fn);

  const target = (arg: unknown, name: unknown, needTensor: boolean) => resolveTarget(store, editors, arg, name, { needTensor });

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
