import * as vscode from 'vscode';
import type { CheckpointSummary } from '../core/checkpoint/types';

/** One checkpoint listed in the Models tree: its location and the header summary read when it opened. */
export interface OpenedModel {
  uri: vscode.Uri;
  summary: CheckpointSummary;
}

const STATE_KEY = 'tensorScalpel.models';

/**
 * The checkpoints the user has opened in this workspace, in the order opened. Owns nothing but
 * summaries (the files are closed after their header is read). The list of URIs is kept in
 * workspaceState so the tree comes back after a reload.
 */
export class ModelStore implements vscode.Disposable {
  private readonly models = new Map<string, OpenedModel>();
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after any add, replace or remove. */
  readonly onDidChange = this.changed.event;

  constructor(private readonly memento?: vscode.Memento) {}

  /** URIs remembered from the last session (read them again with the loader). */
  rememberedUris(): vscode.Uri[] {
    const raw = this.memento?.get<string[]>(STATE_KEY) ?? [];
    const uris: vscode.Uri[] = [];
    for (const s of raw) {
      try { uris.push(vscode.Uri.parse(s, true)); } catch { /* a malformed entry is dropped */ }
    }
    return uris;
  }

  all(): OpenedModel[] {
    return [...this.models.values()];
  }

  get(uri: vscode.Uri): OpenedModel | undefined {
    return this.models.get(uri.toString());
  }

  has(uri: vscode.Uri): boolean {
    return this.models.has(uri.toString());
  }

  /** Adds the model, or replaces its summary when already listed (keeps its place). */
  set(uri: vscode.Uri, summary: CheckpointSummary): void {
    this.models.set(uri.toString(), { uri, summary });
    this.persist();
    this.changed.fire();
  }

  remove(uri: vscode.Uri): boolean {
    const had = this.models.delete(uri.toString());
    if (had) {
      this.persist();
      this.changed.fire();
    }
    return had;
  }

  /** Rewrites the remembered list from what is listed now (drops entries that failed to reopen). */
  prune(): void {
    this.persist();
  }

  private persist(): void {
    void this.memento?.update(STATE_KEY, [...this.models.keys()]);
  }

  dispose(): void {
    this.changed.dispose();
  }
}
