import * as vscode from 'vscode';
import { CheckpointEditorProvider } from './checkpointEditor';
import { registerCommands } from './commands';
import { readSettings } from './config';
import { readSummary } from './loader';
import { createLog, logError } from './log';
import { ModelStore } from './modelStore';
import { ModelTreeProvider, VIEW_ID } from './modelTree';
import { AnalysisService } from './analysis';
import { AblateView, CompressView, SpectrumView } from './views';
import { registerViewCommands } from './viewCommands';
import { registerEvaluate } from './evaluatePanel';

/** What activate() hands to other parts of the extension (and to in-host tests). */
export interface TensorScalpelApi {
  store: ModelStore;
  tree: ModelTreeProvider;
  editors: CheckpointEditorProvider;
  treeView: vscode.TreeView<import('./modelTree').ModelTreeNode>;
  analysis: AnalysisService;
  spectra: SpectrumView;
}

export function activate(context: vscode.ExtensionContext): TensorScalpelApi {
  const log = createLog();
  context.subscriptions.push(log);
  const settings = readSettings(context);
  log.info(`Tensor Scalpel ${context.extension.packageJSON.version as string} activated; workers=${settings.workers}, linalgBackend=${settings.linalgBackend}, cacheFolder=${settings.cacheFolder}`);
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('tensorScalpel')) {
      const s = readSettings(context);
      log.info(`settings changed: workers=${s.workers}, linalgBackend=${s.linalgBackend}, nativeLibraryPath=${s.nativeLibraryPath || '(system)'}, cacheFolder=${s.cacheFolder}`);
    }
  }));

  const store = new ModelStore(context.workspaceState);
  const tree = new ModelTreeProvider(store);
  const treeView = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: tree, showCollapseAll: true, canSelectMany: true });
  tree.attach(treeView);
  context.subscriptions.push(store, tree, treeView);
  void vscode.commands.executeCommand('setContext', 'tensorScalpel.hasModels', false);
  void vscode.commands.executeCommand('setContext', 'tensorScalpel.filterActive', false);

  const editors = CheckpointEditorProvider.register(context, store, tree);
  registerCommands({ context, store, tree, editors });
  // One worker pool and linalg backend for every analysis view; disposed with the extension.
  const analysis = new AnalysisService(context);
  context.subscriptions.push(analysis);
  const spectra = new SpectrumView(context, analysis);
  editors.attachAnalysis(analysis, {
    openSpectrum: (uri, name, add) => spectra.show(uri.fsPath, name, add),
    openCompress: async (uri, name) => { CompressView.show(context, analysis, uri.fsPath, name); },
    openAblate: async (uri, name) => { AblateView.show(context, analysis, uri.fsPath, name); },
  });
  registerViewCommands({ context, store, editors, analysis, spectra });
  registerEvaluate(context, store, editors);

  // Bring back the models listed last time; one that no longer opens is dropped (and logged).
  void (async () => {
    for (const uri of store.rememberedUris()) {
      if (store.has(uri)) continue;
      try {
        store.set(uri, await readSummary(uri));
      } catch (err) {
        logError(`cannot reopen ${uri.fsPath}`, err);
      }
    }
    store.prune();
  })();

  return { store, tree, editors, treeView, analysis, spectra };
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
