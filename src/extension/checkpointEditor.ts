import * as path from 'node:path';
import * as vscode from 'vscode';
import type { HostToOverview, OverviewToHost, Unsent } from '../protocol/messages';
import { CheckpointDocument } from './checkpointDocument';
import { log, logError } from './log';
import type { ModelStore } from './modelStore';
import type { ModelTreeProvider } from './modelTree';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { mapMetrics, type AnalysisService } from './analysis';
import { saveExport } from './panelHost';

/** What the model map tab asks the rest of the extension to do. */
export interface MapActions {
  openSpectrum(uri: vscode.Uri, name: string, add: boolean): Promise<void>;
  openCompress(uri: vscode.Uri, name?: string): Promise<void>;
  openAblate(uri: vscode.Uri, name?: string): Promise<void>;
}

/** View types of the overview editor (package.json contributes.customEditors). */
export const OVERVIEW_VIEW_TYPE = 'tensorScalpel.checkpoint';
/** Same editor for files other tools own too (.onnx, pytorch_model*.bin): offered, not default. */
export const OVERVIEW_OPTION_VIEW_TYPE = 'tensorScalpel.checkpointOption';

/** One open overview panel and its message counter. */
interface Panel {
  document: CheckpointDocument;
  panel: vscode.WebviewPanel;
  /** Set once the webview has sent `ready`; nothing is posted before. */
  ready: boolean;
  nextId: number;
  /** A tensor to highlight as soon as the webview is ready. */
  pendingHighlight?: string;
  /** Show the model map tab as soon as the webview is ready. */
  pendingMap?: boolean;
}

/**
 * The read-only overview editor for checkpoint files: a webview showing what the header says.
 * Registered under two view types with different priorities; both share this provider.
 */
export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument>, vscode.Disposable {
  private readonly panels = new Set<Panel>();
  private activePanel: Panel | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private analysis: AnalysisService | undefined;
  private actions: MapActions | undefined;

  /** Connects the model map tab to the analysis service (scan results stream to every open overview). */
  attachAnalysis(analysis: AnalysisService, actions: MapActions): void {
    this.analysis = analysis;
    this.actions = actions;
    this.subs.push(analysis.onDidChangeScan((e) => {
      for (const p of this.panels) {
        if (!p.ready || p.document.uri.fsPath !== e.path) continue;
        this.post(p, { type: 'mapResult', status: e.status, ...(e.tensor ? { tensor: mapMetrics(e.tensor) } : {}) });
      }
    }));
  }

  /** Brings the model map tab of the overview of `uri` to the front. */
  showMap(uri: vscode.Uri): void {
    for (const p of this.panels) {
      if (p.document.uri.toString() !== uri.toString()) continue;
      if (p.ready) this.post(p, { type: 'showMap' });
      else p.pendingMap = true;
    }
  }

  private postMap(p: Panel): void {
    if (!this.analysis || !p.ready) return;
    const file = p.document.uri.fsPath;
    this.post(p, { type: 'mapState', status: this.analysis.status(file), tensors: this.analysis.results(file).map(mapMetrics) });
  }

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly store: ModelStore,
    private readonly tree: ModelTreeProvider,
  ) {}

  static register(context: vscode.ExtensionContext, store: ModelStore, tree: ModelTreeProvider): CheckpointEditorProvider {
    const provider = new CheckpointEditorProvider(context.extensionUri, store, tree);
    const options = { supportsMultipleEditorsPerDocument: true, webviewOptions: { retainContextWhenHidden: false } };
    context.subscriptions.push(
      provider,
      vscode.window.registerCustomEditorProvider(OVERVIEW_VIEW_TYPE, provider, options),
      vscode.window.registerCustomEditorProvider(OVERVIEW_OPTION_VIEW_TYPE, provider, options),
    );
    return provider;
  }

  async openCustomDocument(uri: vscode.Uri, _ctx: vscode.CustomDocumentOpenContext, token: vscode.CancellationToken): Promise<CheckpointDocument> {
    const doc = await CheckpointDocument.create(uri, token);
    if (doc.summary) this.store.set(uri, doc.summary);
    doc.onDidChangeState(() => {
      if (doc.summary) this.store.set(uri, doc.summary);
      for (const p of this.panels) if (p.document === doc) this.postState(p);
    });
    return doc;
  }

  async resolveCustomEditor(document: CheckpointDocument, webviewPanel: vscode.WebviewPanel): Promise<void> {
    const entry: Panel = { document, panel: webviewPanel, ready: false, nextId: 1 };
    this.panels.add(entry);
    webviewPanel.webview.options = webviewOptions(this.extensionUri);
    webviewPanel.webview.html = webviewHtml(webviewPanel.webview, this.extensionUri, 'overview', path.basename(document.uri.fsPath));
    webviewPanel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'tensor-scalpel.svg');

    const subs: vscode.Disposable[] = [
      webviewPanel.webview.onDidReceiveMessage((m: OverviewToHost) => this.onMessage(entry, m)),
      webviewPanel.onDidChangeViewState((e) => this.onViewState(entry, e.webviewPanel.active)),
    ];
    webviewPanel.onDidDispose(() => {
      for (const s of subs) s.dispose();
      this.panels.delete(entry);
      if (this.activePanel === entry) this.setActive(undefined);
    });
    if (webviewPanel.active) this.onViewState(entry, true);
  }

  /** The document of the overview editor that has focus, if any. */
  get activeDocument(): CheckpointDocument | undefined {
    return this.activePanel?.document;
  }

  /** Documents of every open overview (for Refresh). */
  openDocuments(): CheckpointDocument[] {
    return [...new Set([...this.panels].map((p) => p.document))];
  }

  /** Opens (or focuses) the overview of `uri` and highlights a tensor row in it. */
  async showTensor(uri: vscode.Uri, name: string): Promise<void> {
    await vscode.commands.executeCommand('vscode.openWith', uri, OVERVIEW_VIEW_TYPE, { preserveFocus: true });
    for (const p of this.panels) {
      if (p.document.uri.toString() !== uri.toString()) continue;
      if (p.ready) this.post(p, { type: 'highlightTensor', name });
      else p.pendingHighlight = name;
    }
  }

  private onViewState(entry: Panel, active: boolean): void {
    if (active) {
      this.setActive(entry);
      // Keep the tree in step with the editor: select this model when its overview comes to the front.
      if (this.store.has(entry.document.uri)) void this.tree.revealModel(entry.document.uri).catch((e) => logError('reveal in Models', e));
    } else if (this.activePanel === entry) this.setActive(undefined);
  }

  private setActive(entry: Panel | undefined): void {
    this.activePanel = entry;
    void vscode.commands.executeCommand('setContext', 'tensorScalpel.overviewActive', entry !== undefined);
  }

  private post(p: Panel, msg: Unsent<HostToOverview>): void {
    const full = { ...msg, messageId: p.nextId++ } as HostToOverview;
    void p.panel.webview.postMessage(full).then(undefined, (e) => logError('post to overview', e));
  }

  private postState(p: Panel, inReplyTo?: number): void {
    if (!p.ready) return;
    this.post(p, { type: 'state', state: p.document.state, ...(inReplyTo !== undefined ? { inReplyTo } : {}) });
  }

  private async onMessage(p: Panel, m: OverviewToHost): Promise<void> {
    if (!m || typeof m !== 'object' || typeof (m as { type?: unknown }).type !== 'string') return;
    switch (m.type) {
      case 'ready':
        p.ready = true;
        this.postState(p, m.messageId);
        this.postMap(p);
        if (p.pendingMap) {
          this.post(p, { type: 'showMap' });
          p.pendingMap = false;
        }
        if (p.pendingHighlight) {
          this.post(p, { type: 'highlightTensor', name: p.pendingHighlight });
          p.pendingHighlight = undefined;
        }
        return;
      case 'showLog':
        log().show(true);
        this.post(p, { type: 'ack', ok: true, inReplyTo: m.messageId });
        return;
      case 'reload':
        await p.document.load();
        // The state itself reaches every panel through onDidChangeState.
        this.post(p, { type: 'ack', ok: p.document.state.kind === 'loaded', inReplyTo: m.messageId });
        return;
      case 'revealTensor':
        try {
          await this.tree.revealTensor(p.document.uri, m.name);
          this.post(p, { type: 'ack', ok: true, inReplyTo: m.messageId });
        } catch (e) {
          this.post(p, { type: 'ack', ok: false, error: logError('reveal tensor', e), inReplyTo: m.messageId });
        }
        return;
      case 'startScan':
        if (this.analysis) {
          void this.analysis.startScan(p.document.uri.fsPath);
          this.postMap(p);
        }
        return;
      case 'cancelScan':
        this.analysis?.cancelScan(p.document.uri.fsPath);
        return;
      case 'openSpectrum':
        await this.actions?.openSpectrum(p.document.uri, m.name, m.add === true);
        return;
      case 'openCompress':
        await this.actions?.openCompress(p.document.uri, m.name);
        return;
      case 'openAblate':
        await this.actions?.openAblate(p.document.uri, m.name);
        return;
      case 'saveExport': {
        const saved = await saveExport(path.dirname(p.document.uri.fsPath), m.suggestedName, m.format, m.text, m.base64).catch((e) => { logError('export', e); return undefined; });
        this.post(p, { type: 'ack', ok: saved !== undefined, inReplyTo: m.messageId });
        return;
      }
      default: {
        const unknown: never = m;
        log().warn(`overview sent an unknown message: ${JSON.stringify(unknown).slice(0, 200)}`);
      }
    }
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}
