import * as vscode from 'vscode';

/**
 * The extension's one LogOutputChannel ("Tensor Scalpel" in the Output panel). The user sets its level
 * with "Developer: Set Log Level"; errors always land here with the file they concern.
 */
let channel: vscode.LogOutputChannel | undefined;

export function createLog(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Tensor Scalpel', { log: true });
  return channel;
}

export function log(): vscode.LogOutputChannel {
  return createLog();
}

/** Message text of anything thrown (CheckpointError messages already name file, tensor and offset). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Logs an error with its stack at error level and returns its message. */
export function logError(context: string, err: unknown): string {
  const msg = errorMessage(err);
  const l = log();
  l.error(`${context}: ${msg}`);
  if (err instanceof Error && err.stack) l.debug(err.stack);
  return msg;
}
