/**
 * The Evaluate panel: runs a model (and optionally an original to compare against) in onnxruntime
 * through src/core/evaluate — perplexity, next-token accuracy, KL divergence, top-1 agreement,
 * throughput, greedy generations side by side — and computes difference-in-means directions per
 * layer from two prompt files, which it saves as .npy or offers to the ablation picker through the
 * `tensorScalpel.addComputedDirection` command.
 *
 * onnxruntime's session.run is asynchronous (it runs off the host thread), and the JS between runs
 * (softmax over a row, argmax) is light, so the host stays responsive; every loop checks the abort
 * signal, so Cancel stops at the next model run.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';
import { evaluateModel, generate, loadModel, requireTokenizer, sampleTextFor, type LanguageModel } from '../core/evaluate';
import { captureResiduals, readPromptFile } from '../core/evaluate/activations';
import { directionsBetween, writeDirection, type DirectionSet } from '../core/evaluate/directions';
import type { DirectionsResult, EvalFileField, EvalGeneration, EvalResult, EvalRunRequest, EvaluateToHost, HostToEvaluate } from '../protocol/evaluate';
import type { CheckpointEditorProvider } from './checkpointEditor';
import { log, logError } from './log';
import type { ModelStore } from './modelStore';
import { PanelHost } from './panelHost';
import { tokenPieces } from './evaluateTokens';
import { resolveTarget } from './target';

export const EVALUATE_COMMAND = 'tensorScalpel.evaluateModel';
export const EVALUATE_VIEW_TYPE = 'tensorScalpel.evaluate';
const ADD_COMPUTED_DIRECTION = 'tensorScalpel.addComputedDirection';

/** An error whose cause is a model without a tokenizer: the webview offers to pick a vocabulary. */
class NeedsVocabError extends Error {}

/** The loader's "has no tokenizer" message, worded for the panel (it has a Choose button, not --vocab). */
function noTokenizer(model: LanguageModel): NeedsVocabError {
  return new NeedsVocabError((model.tokenizerError?.message ?? `${model.path} has no tokenizer`).replace('pass --vocab with', 'choose'));
}

export class EvaluatePanel {
  private static readonly open = new Map<string, EvaluatePanel>();
  private readonly host: PanelHost<HostToEvaluate, EvaluateToHost>;
  private abort: AbortController | undefined;
  /** Vectors of the computed direction sets, by key (the webview only holds the per-layer numbers). */
  private readonly directionSets = new Map<string, { set: DirectionSet; result: DirectionsResult }>();
  private lastResult: HostToEvaluate | undefined;
  private lastDirections: HostToEvaluate | undefined;

  static show(context: vscode.ExtensionContext, file: string): EvaluatePanel {
    let p = EvaluatePanel.open.get(file);
    if (!p) {
      p = new EvaluatePanel(context, file);
      EvaluatePanel.open.set(file, p);
    }
    p.host.panel.reveal(undefined, false);
    return p;
  }

  private constructor(private readonly context: vscode.ExtensionContext, private readonly file: string) {
    this.host = new PanelHost<HostToEvaluate, EvaluateToHost>(context.extensionUri, EVALUATE_VIEW_TYPE, 'evaluate', `Evaluate: ${path.basename(file)}`, (m) => this.onMessage(m));
    this.host.onReady = () => {
      const sample = vscode.Uri.joinPath(context.extensionUri, 'media', 'sample', 'prompts').fsPath;
      this.host.post({ type: 'evalSetup', setup: { fileName: path.basename(file), path: file, defaultPromptA: path.join(sample, 'a.txt'), defaultPromptB: path.join(sample, 'b.txt') } });
      // The webview restores its own state; these re-send results that arrived while it was hidden.
      if (this.lastResult) this.host.post(this.lastResult as never);
      if (this.lastDirections) this.host.post(this.lastDirections as never);
    };
    this.host.onDidDispose(() => {
      this.abort?.abort();
      EvaluatePanel.open.delete(file);
    });
  }

  private post(m: Parameters<PanelHost<HostToEvaluate, EvaluateToHost>['post']>[0]): void {
    this.host.post(m);
  }

  private async onMessage(m: EvaluateToHost): Promise<void> {
    switch (m.type) {
      case 'pickFile': return this.pickFile(m.field);
      case 'cancel': this.abort?.abort(); return;
      case 'run': return this.run(m.request);
      case 'computeDirections': return this.computeDirections(m.promptA, m.promptB, m.pooling, m.vocab, m.ropeOrder);
      case 'saveDirection': return this.saveDirection(m.key, m.layer);
      case 'offerDirection': return this.offerDirection(m.key, m.layer);
    }
  }

  private async pickFile(field: EvalFileField): Promise<void> {
    const filters: Record<EvalFileField, Record<string, string[]> | undefined> = {
      against: { Checkpoints: ['gguf', 'safetensors', 'json', 'onnx', 'pt', 'pth', 'bin'], 'All files': ['*'] },
      text: { Text: ['txt', 'md'], 'All files': ['*'] },
      vocab: { Vocabularies: ['json', 'gguf'], 'All files': ['*'] },
      promptA: { 'Prompt files': ['txt'], 'All files': ['*'] },
      promptB: { 'Prompt files': ['txt'], 'All files': ['*'] },
    };
    const titles: Record<EvalFileField, string> = {
      against: 'Compare against which original?', text: 'Which text to score?', vocab: 'Which vocabulary (meta.json, vocab.json or a GGUF file)?',
      promptA: 'Prompt set A (one prompt per line)', promptB: 'Prompt set B (one prompt per line)',
    };
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFiles: true, canSelectFolders: false, filters: filters[field], title: titles[field], defaultUri: vscode.Uri.file(path.dirname(this.file)) });
    if (picked?.[0]) this.post({ type: 'fileChosen', field, path: picked[0].fsPath });
  }

  /** Starts an operation: cancels the previous one, and returns the new signal. */
  private begin(): AbortController {
    this.abort?.abort();
    const a = new AbortController();
    this.abort = a;
    return a;
  }

  /** Loads a model; without `needTokenizer` one lacking a tokenizer loads too (the original's is used). */
  private async load(file: string, vocab: string | null, signal: AbortSignal, captureResiduals = false, needTokenizer = true, ropeOrder: EvalRunRequest['ropeOrder'] = 'auto'): Promise<LanguageModel> {
    const model = await loadModel(file, { vocabPath: vocab ?? undefined, signal, captureResiduals, ropeOrder: ropeOrder === 'auto' ? undefined : ropeOrder });
    if (needTokenizer && !model.tokenizer) {
      await model.close();
      throw noTokenizer(model);
    }
    return model;
  }

  private fail(phase: 'evaluate' | 'directions', e: unknown, abort: AbortController): void {
    // Superseded by a newer run (which aborted this one): that run reports.
    if (this.abort !== abort) return;
    if (e instanceof CancelledError || abort.signal.aborted) {
      this.post({ type: 'evalError', phase, message: 'Cancelled.', cancelled: true });
      return;
    }
    const message = logError(`evaluate ${this.file}`, e);
    this.post({ type: 'evalError', phase, message, needsVocab: e instanceof NeedsVocabError });
  }

  private async run(req: EvalRunRequest): Promise<void> {
    const abort = this.begin();
    const signal = abort.signal;
    const t0 = performance.now();
    const progress = (message: string, fraction?: number) => this.post({ type: 'evalProgress', phase: 'evaluate', message, fraction });
    const models: LanguageModel[] = [];
    try {
      progress(`loading ${path.basename(this.file)}…`, 0);
      // With an original, its tokenizer defines the tokens (evaluateModel): the edited model needs none of its own.
      const model = await this.load(this.file, req.vocab, signal, false, !req.against, req.ropeOrder);
      models.push(model);
      let against: LanguageModel | undefined;
      if (req.against) {
        progress(`loading ${path.basename(req.against)}…`, 0.02);
        against = await this.load(req.against, req.vocab, signal, false, false, req.ropeOrder);
        models.push(against);
        if (!against.tokenizer) throw noTokenizer(against);
      }
      let text: string | undefined;
      if (req.text) text = await fsp.readFile(req.text, 'utf8');
      progress('scoring…', 0.05);
      const report = await evaluateModel(model, against, {
        text, textName: req.text ? path.basename(req.text) : undefined,
        maxTokens: Math.max(1, Math.floor(req.maxTokens)), sampleTokens: 0, signal,
        onProgress: (scored, total) => progress(`scored ${scored} / ${total} tokens`, 0.05 + 0.55 * (scored / Math.max(1, total))),
      });
      // Greedy generations from the user's prompt (the original's tokenizer defines the prompt's tokens).
      const tok = requireTokenizer(against ?? model);
      const bos = tok.kind === 'sentencepiece' && tok.bos !== undefined;
      // An empty prompt starts from BOS; a vocabulary without one (characters) starts from the text's opening words.
      let prompt = req.prompt;
      let promptIds = tok.encode(prompt, { bos });
      if (promptIds.length === 0) {
        const head = (text ?? sampleTextFor(tok.kind).text).slice(0, 40);
        const cut = head.lastIndexOf(' ');
        prompt = cut > 8 ? head.slice(0, cut) : head;
        promptIds = tok.encode(prompt, { bos });
      }
      const n = Math.max(0, Math.floor(req.sampleTokens));
      let generation: EvalGeneration | null = null, againstGeneration: EvalGeneration | null = null;
      if (n > 0) {
        if (promptIds.length === 0) throw new Error('the prompt is empty and the model has no BOS token to start from: type a prompt');
        const gen = async (lm: LanguageModel, from: number, span: number, who: string): Promise<EvalGeneration> => {
          const g = await generate(lm, promptIds, { maxTokens: n, eos: tok.eos, signal, onToken: (_id, i) => progress(`generating (${who}) ${i + 1} / ${n}`, from + span * ((i + 1) / n)) });
          return { ids: g.ids, pieces: tokenPieces(tok, promptIds, g.ids), stop: g.stop, msPerToken: g.msPerToken };
        };
        generation = await gen(model, 0.6, against ? 0.2 : 0.4, path.basename(this.file));
        if (against) againstGeneration = await gen(against, 0.8, 0.2, path.basename(req.against!));
      }
      const result: EvalResult = {
        model: report.model, against: report.against, textSource: report.text.source, textTokens: report.text.tokens,
        tokens: report.tokens, window: report.window, perplexity: report.perplexity, accuracy: report.accuracy,
        klDivergence: report.klDivergence, top1Agreement: report.top1Agreement, tokensPerSecond: report.tokensPerSecond,
        msPerToken: generation && generation.ids.length > 0 ? generation.msPerToken : null,
        againstMetrics: report.againstMetrics, prompt, promptText: tok.decode(promptIds),
        generation, againstGeneration, seconds: (performance.now() - t0) / 1000,
        rope: model.architecture?.family === 'llama' ? { order: model.architecture.ropeOrder, source: model.architecture.ropeSource } : null,
      };
      log().info(`evaluated ${this.file}${req.against ? ` against ${req.against}` : ''}: perplexity ${report.perplexity.toFixed(4)}, accuracy ${report.accuracy.toFixed(4)}${report.klDivergence !== null ? `, KL ${report.klDivergence.toExponential(3)}, top-1 agreement ${report.top1Agreement}` : ''} over ${report.tokens} tokens`);
      this.lastResult = { type: 'evalResult', result } as HostToEvaluate;
      this.post({ type: 'evalResult', result });
    } catch (e) {
      this.fail('evaluate', e, abort);
    } finally {
      for (const lm of models) await lm.close().catch(() => undefined);
      if (this.abort === abort) this.abort = undefined;
    }
  }

  private async computeDirections(fileA: string, fileB: string, pooling: 'last' | 'mean', vocab: string | null, ropeOrder: EvalRunRequest['ropeOrder'] = 'auto'): Promise<void> {
    const abort = this.begin();
    const signal = abort.signal;
    const progress = (message: string, fraction?: number) => this.post({ type: 'evalProgress', phase: 'directions', message, fraction });
    let model: LanguageModel | undefined;
    try {
      const a = await readPromptFile(fileA);
      const b = await readPromptFile(fileB);
      progress(`loading ${path.basename(this.file)} with residual outputs…`, 0);
      model = await this.load(this.file, vocab, signal, true, true, ropeOrder);
      progress(`capturing ${a.length} prompts of A`, 0.1);
      const ca = await captureResiduals(model, a, { pooling, signal });
      progress(`capturing ${b.length} prompts of B`, 0.55);
      const cb = await captureResiduals(model, b, { pooling, signal });
      const set = directionsBetween(ca, cb);
      const key = createHash('sha1').update(`${this.file}\0${fileA}\0${fileB}\0${pooling}\0${Date.now()}`).digest('hex').slice(0, 12);
      const result: DirectionsResult = {
        key, promptA: fileA, promptB: fileB, countA: a.length, countB: b.length, pooling, dModel: set.dModel,
        layers: set.layers.map((l) => ({ layer: l.layer, label: l.label, norm: l.norm, separation: l.separation })), bestLayer: set.bestLayer,
      };
      this.directionSets.clear();
      this.directionSets.set(key, { set, result });
      log().info(`directions of ${this.file} (${path.basename(fileA)} − ${path.basename(fileB)}, ${pooling}): best layer ${set.bestLayer}, separation ${set.layers[set.bestLayer].separation.toFixed(3)}`);
      this.lastDirections = { type: 'directionsResult', result } as HostToEvaluate;
      this.post({ type: 'directionsResult', result });
    } catch (e) {
      this.fail('directions', e, abort);
    } finally {
      await model?.close().catch(() => undefined);
      if (this.abort === abort) this.abort = undefined;
    }
  }

  private direction(key: string, layer: number): { set: DirectionSet; result: DirectionsResult } {
    const d = this.directionSets.get(key);
    if (!d || !(layer >= 0 && layer < d.set.directions.length)) throw new Error('these directions are no longer held by the extension: press Compute again');
    return d;
  }

  private suggestedName(result: DirectionsResult, layer: number): string {
    const stem = (f: string) => path.basename(f).replace(/\.[^.]+$/, '');
    return `${path.basename(this.file).replace(/\.[^.]+$/, '')}.${stem(result.promptA)}-${stem(result.promptB)}.layer${layer}.npy`;
  }

  private async saveDirection(key: string, layer: number): Promise<void> {
    try {
      const { set, result } = this.direction(key, layer);
      const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(path.join(path.dirname(this.file), this.suggestedName(result, layer))), filters: { 'NumPy array': ['npy'] }, title: `Save the direction of layer ${layer}` });
      if (!target) return;
      await writeDirection(target.fsPath, set.directions[layer], 'unit');
      log().info(`saved the unit direction of layer ${layer} (${set.dModel} values) to ${target.fsPath}`);
      this.post({ type: 'directionDone', action: 'save', ok: true, message: `Saved the unit direction of layer ${layer} to ${target.fsPath}`, file: target.fsPath });
    } catch (e) {
      this.post({ type: 'directionDone', action: 'save', ok: false, message: logError('save direction', e) });
    }
  }

  private async offerDirection(key: string, layer: number): Promise<void> {
    try {
      const { set, result } = this.direction(key, layer);
      // The picker reads the direction from a file: keep it in the extension's storage.
      const dir = vscode.Uri.joinPath(this.context.storageUri ?? this.context.globalStorageUri, 'directions').fsPath;
      await fsp.mkdir(dir, { recursive: true });
      const file = path.join(dir, `${result.key}.${this.suggestedName(result, layer)}`);
      await writeDirection(file, set.directions[layer], 'unit');
      const stem = (f: string) => path.basename(f).replace(/\.[^.]+$/, '');
      const id = `evaluate:${result.key}:${layer}`;
      const label = `mean(${stem(result.promptA)}) − mean(${stem(result.promptB)}) @ ${set.layers[layer].label}`;
      const detail = `difference in means, ${path.basename(this.file)}, ${result.pooling} token, ||r|| = ${set.layers[layer].norm.toPrecision(4)}, separation ${set.layers[layer].separation.toPrecision(3)}`;
      const returned = await vscode.commands.executeCommand<string | undefined>(ADD_COMPUTED_DIRECTION, { id, label, file, detail });
      if (returned !== id) throw new Error(`${ADD_COMPUTED_DIRECTION} returned ${JSON.stringify(returned)}, expected ${id}`);
      this.post({ type: 'directionDone', action: 'offer', ok: true, message: `Offered "${label}" to the ablation picker.`, file, id });
    } catch (e) {
      this.post({ type: 'directionDone', action: 'offer', ok: false, message: logError('offer direction', e) });
    }
  }
}

/** Registers "Tensor Scalpel: Evaluate Model…" (editor title, Models tree context menu, palette). */
export function registerEvaluate(context: vscode.ExtensionContext, store: ModelStore, editors: CheckpointEditorProvider): void {
  context.subscriptions.push(vscode.commands.registerCommand(EVALUATE_COMMAND, async (arg?: unknown) => {
    try {
      const uri = (await resolveTarget(store, editors, arg, undefined, { title: 'Evaluate which model?' }))?.uri;
      if (!uri) return undefined;
      EvaluatePanel.show(context, uri.fsPath);
      return uri.fsPath;
    } catch (err) {
      void vscode.window.showErrorMessage(`Tensor Scalpel: ${logError(EVALUATE_COMMAND, err)}`);
      return undefined;
    }
  }));
}
