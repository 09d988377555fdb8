import * as vscode from 'vscode';
import { open, summarize } from '../core/checkpoint';
import { CancelledError } from '../core/checkpoint/errors';
import type { CheckpointSummary } from '../core/checkpoint/types';
import { withDelayedProgress } from './progress';
import { log } from './log';

/** Reads a checkpoint's header (nothing else) and returns its summary; the file is closed again. */
export async function readSummary(uri: vscode.Uri, signal?: AbortSignal): Promise<CheckpointSummary> {
  if (uri.scheme !== 'file') {
    throw new Error(`${uri.toString(true)}: only files on disk can be opened (this one has scheme "${uri.scheme}")`);
  }
  const started = Date.now();
  const ckpt = await open(uri.fsPath);
  try {
    if (signal?.aborted) throw new CancelledError();
    const summary = summarize(ckpt);
    log().info(`opened ${uri.fsPath}: ${summary.formatDetail}, ${summary.tensors.length} tensors, ${summary.totalParams} parameters, ${summary.files.length} file(s), ${Date.now() - started} ms`);
    return summary;
  } finally {
    await ckpt.close();
  }
}

/** readSummary with a cancellable progress notification when it takes longer than a moment. */
export function readSummaryWithProgress(uri: vscode.Uri, token?: vscode.CancellationToken): Promise<CheckpointSummary> {
  const name = uri.path.split('/').pop() ?? uri.toString();
  return withDelayedProgress(`Tensor Scalpel: reading ${name}`, (signal) => readSummary(uri, signal), token);
}
