import * as path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';
import type { CheckpointSummary } from '../core/checkpoint/types';
import type { OverviewState } from '../protocol/messages';
import { readSummaryWithProgress } from './loader';
import { logError } from './log';
import { buildOverviewModel } from './overviewModel';

/**
 * The document behind a checkpoint overview editor: the file's URI and what reading its header gave —
 * the summary, or the reader's error. It never throws out of `load`: a corrupt file becomes an
 * `error` state the webview shows (VS Code would otherwise show its generic "could not open" pane).
 */
export class CheckpointDocument implements vscode.CustomDocument {
  private stateValue: OverviewState = { kind: 'loading' };
  private summaryValue: CheckpointSummary | undefined;
  private readonly changed = new vscode.EventEmitter<OverviewState>();
  private readonly disposed = new vscode.EventEmitter<void>();
  /** Fires after every (re)load with the new state. */
  readonly onDidChangeState = this.changed.event;
  readonly onDidDispose = this.disposed.event;
  private loading: Promise<void> | undefined;

  private constructor(readonly uri: vscode.Uri) {}

  static async create(uri: vscode.Uri, token?: vscode.CancellationToken): Promise<CheckpointDocument> {
    const doc = new CheckpointDocument(uri);
    await doc.load(token);
    return doc;
  }

  get state(): OverviewState {
    return this.stateValue;
  }

  /** The header summary when the file opened cleanly. */
  get summary(): CheckpointSummary | undefined {
    return this.summaryValue;
  }

  /** Reads the header again (after an error, or when the file changed on disk). */
  load(token?: vscode.CancellationToken): Promise<void> {
    this.loading ??= this.doLoad(token).finally(() => { this.loading = undefined; });
    return this.loading;
  }

  private async doLoad(token?: vscode.CancellationToken): Promise<void> {
    const fileName = path.basename(this.uri.fsPath || this.uri.path);
    try {
      this.summaryValue = await readSummaryWithProgress(this.uri, token);
      this.stateValue = { kind: 'loaded', model: buildOverviewModel(this.summaryValue) };
    } catch (err) {
      this.summaryValue = undefined;
      const message = err instanceof CancelledError
        ? 'Opening was cancelled. Use Reload to try again.'
        : logError(`cannot open ${this.uri.fsPath || this.uri.toString()}`, err);
      this.stateValue = {
        kind: 'error', fileName, path: this.uri.fsPath || this.uri.toString(), message,
        errorName: err instanceof Error ? err.name : 'Error',
      };
    }
    this.changed.fire(this.stateValue);
  }

  dispose(): void {
    this.disposed.fire();
    this.changed.dispose();
    this.disposed.dispose();
  }
}
