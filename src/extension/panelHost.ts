/**
 * Shared plumbing of the extension's webview panels (spectrum view, bond-dimension editor, ablation
 * picker): the ready handshake (nothing is posted before the script says `ready`), message ids,
 * exports through a save dialog, and running a surgery recipe with progress, cancel and an Open action.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';
import type { ApplyResult, Recipe } from '../core/surgery';
import type { AnalysisService } from './analysis';
import type { MessageBase, Unsent } from '../protocol/messages';
import { OVERVIEW_VIEW_TYPE } from './checkpointEditor';
import { log, logError } from './log';
import { webviewHtml, webviewOptions } from './webviewHtml';

export class PanelHost<ToWebview extends MessageBase, FromWebview extends MessageBase & { type: string }> implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  private ready = false;
  private nextId = 1;
  private queue: ToWebview[] = [];
  private readonly subs: vscode.Disposable[] = [];
  private readonly disposedEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposedEmitter.event;
  onReady: () => void = () => undefined;

  constructor(extensionUri: vscode.Uri, viewType: string, entry: string, title: string, onMessage: (m: FromWebview) => void | Promise<void>, column = vscode.ViewColumn.Active) {
    // retainContextWhenHidden is off: every view keeps its UI state with getState/setState and the
    // host re-sends the data on `ready`, so a hidden panel costs no memory.
    this.panel = vscode.window.createWebviewPanel(viewType, title, { viewColumn: column, preserveFocus: false }, { ...webviewOptions(extensionUri), retainContextWhenHidden: false });
    this.panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'tensor-scalpel.svg');
    this.panel.webview.html = webviewHtml(this.panel.webview, extensionUri, entry, title);
    this.subs.push(this.panel.webview.onDidReceiveMessage(async (m: FromWebview) => {
      if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
      if (m.type === 'ready') {
        this.ready = true;
        // What was posted while the page was away, then the view's full current state (which wins).
        const q = this.queue;
        this.queue = [];
        for (const x of q) void this.panel.webview.postMessage(x);
        this.onReady();
        return;
      }
      try {
        await onMessage(m);
      } catch (e) {
        if (!(e instanceof CancelledError)) void vscode.window.showErrorMessage(`Tensor Scalpel: ${logError(`${viewType} ${m.type}`, e)}`);
      }
    }));
    this.panel.onDidDispose(() => {
      for (const s of this.subs) s.dispose();
      this.disposedEmitter.fire();
      this.disposedEmitter.dispose();
    });
    // A hidden webview loses its page (no retainContextWhenHidden): it sends `ready` again when shown.
    this.subs.push(this.panel.onDidChangeViewState((e) => { if (!e.webviewPanel.visible) this.ready = false; }));
  }

  /** Posts now when the webview listens, else after its next `ready` (only the latest of each type is kept). */
  post(msg: Unsent<ToWebview>): void {
    const full = { ...msg, messageId: this.nextId++ } as unknown as ToWebview;
    if (this.ready) void this.panel.webview.postMessage(full).then(undefined, (e) => logError('post to webview', e));
    else this.queue.push(full);
  }

  dispose(): void {
    this.panel.dispose();
  }
}

/** Asks where to save exported bytes and writes them. Returns the path, or undefined when dismissed. */
export async function saveExport(defaultFolder: string, suggestedName: string, format: 'svg' | 'png' | 'csv', text?: string, base64?: string): Promise<string | undefined> {
  const filters: Record<string, string[]> = { svg: { 'SVG image': ['svg'] }, png: { 'PNG image': ['png'] }, csv: { 'CSV table': ['csv'] } }[format] as never;
  const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(defaultFolder, suggestedName)), filters, title: `Export ${format.toUpperCase()}` });
  if (!target) return undefined;
  const bytes = base64 !== undefined ? Buffer.from(base64, 'base64') : Buffer.from(text ?? '', 'utf8');
  await fs.promises.writeFile(target.fsPath, bytes);
  log().info(`exported ${format} (${bytes.length} bytes) to ${target.fsPath}`);
  return target.fsPath;
}

export type WriteStatus = { state: 'running' | 'done' | 'error' | 'cancelled'; message: string; output?: string };

/**
 * Runs a recipe through the surgery apply engine in the analysis service's worker pool (the host
 * thread only relays progress) with a cancellable progress notification; `abort` (the webview's own
 * Cancel button) aborts too. Reports to `status`; ends with a summary message whose Open action opens
 * the result in the overview editor.
 */
export async function runRecipeWithProgress(analysis: AnalysisService, recipe: Recipe, input: string, output: string, status: (s: WriteStatus) => void, abort: AbortController): Promise<ApplyResult | undefined> {
  status({ state: 'running', message: `writing ${path.basename(output)}…` });
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Tensor Scalpel: writing ${path.basename(output)}`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => abort.abort());
        return analysis.applyRecipe(recipe, input, output, abort.signal, (p) => {
          progress.report({ message: p.message });
          status({ state: 'running', message: `${p.phase} ${p.done + 1}/${p.total}: ${p.message}` });
        });
      });
    const t = result.totals;
    const summary = `Wrote ${path.basename(output)}: ${result.tensors.length} tensor(s) changed, parameters ${t.originalParams.toLocaleString('en-US')} → ${t.totalParams.toLocaleString('en-US')} (${(t.ratio * 100).toFixed(1)}%).`;
    log().info(`${summary} ${result.warnings.join(' ')}`);
    status({ state: 'done', message: summary, output });
    void vscode.window.showInformationMessage(summary, 'Open').then((c) => {
      if (c === 'Open') void vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(output), OVERVIEW_VIEW_TYPE);
    });
    return result;
  } catch (e) {
    if (e instanceof CancelledError || abort.signal.aborted) {
      status({ state: 'cancelled', message: 'Cancelled; nothing was written.' });
      return undefined;
    }
    const msg = logError(`write ${output}`, e);
    status({ state: 'error', message: msg });
    void vscode.window.showErrorMessage(`Tensor Scalpel: ${msg}`);
    return undefined;
  }
}
