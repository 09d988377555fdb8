/**
 * The host side of the spectrum view, the bond-dimension editor and the ablation picker: each a
 * webview panel (webview/<name>/main.ts) fed with data the host computes.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { open } from '../core/checkpoint/open';
import { CancelledError } from '../core/checkpoint/errors';
import type { Recipe } from '../core/surgery';
import { userSites } from '../core/analysis/mpo';
import type {
  AblateToHost, AblationCandidate, AblationModel, CompressModel, CompressTensor, CompressToHost, HostToAblate, HostToCompress, HostToSpectrum,
  MessageBase, SpectrumSeries, SpectrumToHost, Unsent,
} from '../protocol/messages';
import { spectrumSeries, type AnalysisService } from './analysis';
import { log, logError } from './log';
import { PanelHost, runRecipeWithProgress, saveExport } from './panelHost';

export const SPECTRUM_VIEW_TYPE = 'tensorScalpel.spectrum';
export const COMPRESS_VIEW_TYPE = 'tensorScalpel.compress';
export const ABLATE_VIEW_TYPE = 'tensorScalpel.ablate';

/** The one spectrum panel: a list of series (one tensor, or several overlaid for comparison). */
export class SpectrumView {
  private host: PanelHost<HostToSpectrum, SpectrumToHost> | undefined;
  private series: SpectrumSeries[] = [];
  private loading: string | undefined;

  constructor(private readonly context: vscode.ExtensionContext, private readonly analysis: AnalysisService) {}

  /** Shows the spectrum of a tensor; `add` keeps the series already shown (comparison). */
  async show(file: string, name: string, add = false): Promise<void> {
    const host = this.ensure();
    host.panel.reveal(undefined, false);
    if (!add) this.series = [];
    this.loading = `Computing the spectrum of ${name}…`;
    this.push();
    try {
      const t = await this.analysis.spectrum(file, name);
      const s = spectrumSeries(file, t);
      this.series = [...this.series.filter((x) => !(x.path === file && x.name === name)), s];
      host.panel.title = this.series.length === 1 ? `Spectrum: ${name}` : `Spectra (${this.series.length})`;
      this.loading = undefined;
      this.push();
    } catch (e) {
      this.loading = undefined;
      host.post({ type: 'spectra', series: this.series, error: logError(`spectrum of ${name}`, e) });
    }
  }

  private push(): void {
    this.host?.post({ type: 'spectra', series: this.series, ...(this.loading ? { loading: this.loading } : {}) });
  }

  private ensure(): PanelHost<HostToSpectrum, SpectrumToHost> {
    if (this.host) return this.host;
    const host = new PanelHost<HostToSpectrum, SpectrumToHost>(this.context.extensionUri, SPECTRUM_VIEW_TYPE, 'spectrum', 'Spectrum', async (m) => {
      switch (m.type) {
        case 'removeSeries':
          this.series = this.series.filter((s) => !(s.path === m.path && s.name === m.name));
          this.push();
          return;
        case 'saveExport': {
          const folder = this.series[0] ? path.dirname(this.series[0].path) : this.context.globalStorageUri.fsPath;
          const saved = await saveExport(folder, m.suggestedName, m.format, m.text, m.base64);
          host.post({ type: 'ack', ok: saved !== undefined, inReplyTo: m.messageId });
          return;
        }
        case 'ready':
          return;
      }
    });
    host.onReady = () => this.push();
    host.onDidDispose(() => { this.host = undefined; this.series = []; });
    this.host = host;
    return host;
  }
}

/**
 * A panel per model file: the bond-dimension editor and the ablation picker. Opening one again for
 * the same file reveals the open panel with the new focus. On `ready` (first load, and again after
 * the panel was hidden: retainContextWhenHidden is off) the model, whatever the subclass adds, and
 * the last write status are sent again.
 */
abstract class ModelPanel<ToWeb extends MessageBase, FromWeb extends MessageBase & { type: string }, Model> {
  protected readonly host: PanelHost<ToWeb, FromWeb>;
  protected model: Model | undefined;
  protected focus: string | undefined;
  protected lastStatus: Unsent<ToWeb> | undefined;

  /** The open panel of `file` in `registry`, revealed with `focus`, or a new one from `create`. */
  protected static showFor<V extends ModelPanel<MessageBase, MessageBase & { type: string }, unknown>>(registry: Map<string, V>, file: string, create: () => V, focus?: string): V {
    let v = registry.get(file);
    if (!v) {
      v = create();
      registry.set(file, v);
      v.host.onDidDispose(() => registry.delete(file));
    }
    v.focus = focus;
    v.host.panel.reveal(undefined, false);
    v.postModel();
    return v;
  }

  protected constructor(extensionUri: vscode.Uri, viewType: string, entry: string, title: string) {
    this.host = new PanelHost<ToWeb, FromWeb>(extensionUri, viewType, entry, title, (m) => this.onMessage(m));
    this.host.onReady = () => {
      this.postModel();
      this.resend();
      if (this.lastStatus) this.host.post(this.lastStatus);
    };
  }

  /** The message that (re)sends the model with the current focus. */
  protected abstract modelMessage(model: Model): Unsent<ToWeb>;
  protected abstract onMessage(m: FromWeb): Promise<void>;
  /** What else a reloaded webview needs, between the model and the write status. */
  protected resend(): void {}

  protected postModel(): void {
    if (this.model) this.host.post(this.modelMessage(this.model));
  }
}

/** The bond-dimension editor of one model. */
export class CompressView extends ModelPanel<HostToCompress, CompressToHost, CompressModel> {
  private static readonly open = new Map<string, CompressView>();
  private loading: AbortController | undefined;
  private writing: AbortController | undefined;

  static show(context: vscode.ExtensionContext, analysis: AnalysisService, file: string, focus?: string): CompressView {
    return ModelPanel.showFor(CompressView.open, file, () => new CompressView(context, analysis, file), focus);
  }

  private constructor(private readonly context: vscode.ExtensionContext, private readonly analysis: AnalysisService, private readonly file: string) {
    super(context.extensionUri, COMPRESS_VIEW_TYPE, 'compress', `Compress: ${path.basename(file)}`);
    this.host.onDidDispose(() => this.loading?.abort());
    void this.load();
  }

  protected modelMessage(model: CompressModel): Unsent<HostToCompress> {
    return { type: 'compressModel', model, focus: this.focus };
  }

  private async load(): Promise<void> {
    const ac = new AbortController();
    this.loading = ac;
    try {
      const ckpt = await open(this.file);
      try {
        const stat = ckpt.files.length ? await Promise.all(ckpt.files.map((f) => import('node:fs').then((fs) => fs.promises.stat(f)))) : [];
        const matrices = ckpt.tensors.filter((t) => t.shape.length === 2 && t.shape[0] > 1 && t.shape[1] > 1);
        this.model = {
          fileName: path.basename(this.file), path: this.file, totalParams: ckpt.tensors.reduce((a, t) => a + t.params, 0),
          sizeOnDisk: stat.reduce((a, s) => a + s.size, 0), tensors: [], progress: { done: 0, total: matrices.length },
        };
        this.postModel();
        const started = Date.now();
        for (const e of matrices) {
          if (ac.signal.aborted) throw new CancelledError();
          try {
            const t = await this.analysis.compressTable(this.file, e.name, undefined, ac.signal);
            this.model.tensors.push(t);
            this.model.progress = { done: this.model.tensors.length, total: matrices.length };
            this.host.post({ type: 'compressTensor', tensor: t, progress: this.model.progress });
          } catch (err) {
            if (err instanceof CancelledError) throw err;
            logError(`chi table of ${e.name}`, err);
            this.model.progress = { done: (this.model.progress?.done ?? 0) + 1, total: matrices.length };
          }
          await new Promise((r) => setImmediate(r)); // let the host breathe between tensors
        }
        this.model.progress = undefined;
        this.postModel();
        log().info(`bond-dimension tables of ${this.model.tensors.length} tensors of ${this.file} in ${Date.now() - started} ms`);
      } finally {
        await ckpt.close();
      }
    } catch (e) {
      if (!(e instanceof CancelledError)) this.host.post({ type: 'compressError', message: logError(`compress editor of ${this.file}`, e) });
    }
  }

  protected async onMessage(m: CompressToHost): Promise<void> {
    switch (m.type) {
      case 'refactor': {
        if (!this.model) return;
        const idx = this.model.tensors.findIndex((t) => t.name === m.name);
        if (idx < 0) return;
        const t = this.model.tensors[idx];
        try {
          userSites(t.shape[0], t.shape[1], m.outFactors, m.inFactors); // throws FactorisationError with the reason
          const nt: CompressTensor = await this.analysis.compressTable(this.file, m.name, { outFactors: m.outFactors, inFactors: m.inFactors });
          nt.defaultOn = t.defaultOn;
          this.model.tensors[idx] = nt;
          this.host.post({ type: 'compressTensor', tensor: nt });
          this.host.post({ type: 'ack', ok: true, inReplyTo: m.messageId });
        } catch (e) {
          this.host.post({ type: 'ack', ok: false, error: (e as Error).message, inReplyTo: m.messageId });
        }
        return;
      }
      case 'write': {
        if (m.choices.length === 0) {
          void vscode.window.showWarningMessage('Tensor Scalpel: no tensor is selected for compression.');
          return;
        }
        const base = path.basename(this.file).replace(/(\.safetensors|\.gguf|\.onnx|\.pt|\.pth|\.bin)$/i, '');
        const ext = /\.gguf$/i.test(this.file) ? 'gguf' : /\.onnx$/i.test(this.file) ? 'onnx' : 'safetensors';
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(path.join(path.dirname(this.file), `${base}.compressed.${ext}`)),
          filters: { 'safetensors': ['safetensors'], 'GGUF': ['gguf'], 'ONNX': ['onnx'] },
          title: 'Write Compressed Model', saveLabel: 'Write',
        });
        if (!target) return;
        if (path.resolve(target.fsPath) === path.resolve(this.file)) {
          void vscode.window.showErrorMessage('Tensor Scalpel: choose another file; the input is never overwritten.');
          return;
        }
        const recipe: Recipe = {
          version: 1,
          output: { path: target.fsPath, factorized: m.factorized },
          compress: m.choices.map((c) => ({ tensors: [c.name], method: 'mpo' as const, chi: c.chi, outFactors: c.outFactors, inFactors: c.inFactors })),
        };
        this.writing = new AbortController();
        await runRecipeWithProgress(this.analysis, recipe, this.file, target.fsPath, (s) => {
          this.lastStatus = { type: 'writeStatus', ...s } as HostToCompress;
          this.host.post({ type: 'writeStatus', ...s });
        }, this.writing);
        this.writing = undefined;
        return;
      }
      case 'cancelWrite':
        this.writing?.abort();
        return;
      case 'openResult':
        await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(m.path), 'tensorScalpel.checkpoint');
        return;
      case 'ready':
        return;
    }
  }
}

/** The ablation picker of one model. */
export class AblateView extends ModelPanel<HostToAblate, AblateToHost, AblationModel> {
  private static readonly open = new Map<string, AblateView>();
  private readonly candidates = new Map<string, AblationCandidate & { file: string; key?: string }>();
  private writing: AbortController | undefined;
  private lastPreview: Extract<HostToAblate, { type: 'preview' }> | undefined;
  private readonly subs: vscode.Disposable[] = [];

  static show(context: vscode.ExtensionContext, analysis: AnalysisService, file: string, focus?: string): AblateView {
    return ModelPanel.showFor(AblateView.open, file, () => new AblateView(context, analysis, file), focus);
  }

  private constructor(private readonly context: vscode.ExtensionContext, private readonly analysis: AnalysisService, private readonly file: string) {
    super(context.extensionUri, ABLATE_VIEW_TYPE, 'ablate', `Ablate: ${path.basename(file)}`);
    this.subs.push(analysis.onDidChangeComputedDirections(() => this.pushCandidates()));
    this.host.onDidDispose(() => { for (const s of this.subs) s.dispose(); });
    void this.load();
  }

  protected modelMessage(model: AblationModel): Unsent<HostToAblate> {
    return { type: 'ablateModel', model, focus: this.focus };
  }

  protected override resend(): void {
    this.pushCandidates();
    if (this.lastPreview) this.host.post({ type: 'preview', rows: this.lastPreview.rows, ...(this.lastPreview.error ? { error: this.lastPreview.error } : {}) });
  }

  private async load(): Promise<void> {
    try {
      const { rep, matrices } = await this.analysis.residual(this.file);
      this.model = {
        fileName: path.basename(this.file), path: this.file, dModel: rep.dModel, family: `${rep.family} (${rep.naming} names${rep.layout ? `, ${rep.layout}` : ''})`,
        writers: rep.writers.map((w) => ({ name: w.name, kind: w.kind, shape: w.shape, residualAxis: w.residualAxis, preselected: w.kind !== 'bias' })),
        matrices, notes: rep.notes,
      };
      this.postModel();
    } catch (e) {
      this.host.post({ type: 'ablateError', message: logError(`ablation picker of ${this.file}`, e) });
    }
  }

  private allCandidates(): Array<AblationCandidate & { file: string; key?: string }> {
    const computed = this.analysis.computedDirections().map((d) => ({
      id: `computed:${d.id}`, label: d.label, source: 'computed' as const, detail: d.detail ?? d.file, length: 0, file: d.file, key: d.key,
    }));
    return [...this.candidates.values(), ...computed];
  }

  private pushCandidates(): void {
    this.host.post({ type: 'candidates', candidates: this.allCandidates().map(({ file: _f, key: _k, ...c }) => c) });
  }

  protected async onMessage(m: AblateToHost): Promise<void> {
    switch (m.type) {
      case 'singularDirections': {
        const t = this.model?.matrices.find((x) => x.name === m.tensor);
        if (!t) return;
        // The residual axis: the writer's when it is one, else the axis whose size is d_model (rows first).
        const axis: 0 | 1 = t.residualAxis ?? (this.model?.dModel !== undefined && t.shape[0] !== this.model.dModel && t.shape[1] === this.model.dModel ? 1 : 0);
        const dirs = await this.analysis.singularDirections(this.file, m.tensor, Math.max(1, Math.min(16, m.count)), axis);
        for (const d of dirs) {
          const id = `svd:${d.label}`;
          this.candidates.set(id, { id, label: d.label, source: 'singular', detail: `σ = ${d.sigma.toPrecision(4)}, ${axis === 0 ? 'left' : 'right'} singular vector (residual axis)`, length: d.length, file: d.file });
        }
        this.pushCandidates();
        this.host.post({ type: 'ack', ok: true, inReplyTo: m.messageId });
        return;
      }
      case 'pickFiles': {
        const uris = await vscode.window.showOpenDialog({ canSelectMany: true, title: 'Direction vectors', openLabel: 'Add', filters: { 'Vectors': ['npy', 'npz', 'safetensors', 'pt', 'pth'], 'All files': ['*'] } });
        for (const u of uris ?? []) {
          try {
            const { loadDirection } = await import('../core/surgery');
            const d = await loadDirection(u.fsPath);
            const id = `file:${u.fsPath}`;
            this.candidates.set(id, { id, label: path.basename(u.fsPath), source: 'file', detail: `${d.tensor}, norm ${d.norm.toPrecision(4)}`, length: d.r.length, file: u.fsPath });
          } catch (e) {
            void vscode.window.showErrorMessage(`Tensor Scalpel: ${logError(`direction ${u.fsPath}`, e)}`);
          }
        }
        this.pushCandidates();
        return;
      }
      case 'removeCandidate':
        this.candidates.delete(m.id);
        this.pushCandidates();
        return;
      case 'preview': {
        const all = this.allCandidates().filter((c) => m.candidates.includes(c.id));
        const writers = (this.model?.writers ?? []).filter((w) => m.writers.includes(w.name)).map((w) => ({ name: w.name, axis: w.residualAxis }));
        try {
          const rows = await this.analysis.ablationPreview(this.file, writers, all.map((c) => ({ id: c.id, file: c.file, key: c.key })));
          this.lastPreview = { type: 'preview', rows, messageId: 0 };
          this.host.post({ type: 'preview', rows });
        } catch (e) {
          const error = logError('ablation preview', e);
          this.lastPreview = { type: 'preview', rows: [], error, messageId: 0 };
          this.host.post({ type: 'preview', rows: [], error });
        }
        return;
      }
      case 'write': {
        const chosen = this.allCandidates().filter((c) => m.candidates.includes(c.id));
        if (chosen.length === 0 || m.writers.length === 0) {
          void vscode.window.showWarningMessage('Tensor Scalpel: pick at least one direction and one residual writer.');
          return;
        }
        const base = path.basename(this.file).replace(/(\.safetensors|\.gguf|\.onnx|\.pt|\.pth|\.bin)$/i, '');
        const ext = /\.gguf$/i.test(this.file) ? 'gguf' : /\.onnx$/i.test(this.file) ? 'onnx' : 'safetensors';
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(path.join(path.dirname(this.file), `${base}.ablated.${ext}`)),
          filters: { 'safetensors': ['safetensors'], 'GGUF': ['gguf'], 'ONNX': ['onnx'] }, title: 'Write Edited Model', saveLabel: 'Write',
        });
        if (!target) return;
        const recipe: Recipe = { version: 1, output: { path: target.fsPath }, ablate: chosen.map((c) => ({ direction: c.file, ...(c.key ? { key: c.key } : {}), writers: m.writers })) };
        this.writing = new AbortController();
        await runRecipeWithProgress(this.analysis, recipe, this.file, target.fsPath, (s) => {
          this.lastStatus = { type: 'writeStatus', ...s } as HostToAblate;
          this.host.post({ type: 'writeStatus', ...s });
        }, this.writing);
        this.writing = undefined;
        return;
      }
      case 'cancelWrite':
        this.writing?.abort();
        return;
      case 'openResult':
        await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(m.path), 'tensorScalpel.checkpoint');
        return;
      case 'ready':
        return;
    }
  }
}
