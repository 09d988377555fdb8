import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';

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

/**
 * Registers a command whose failures never escape as unhandled rejections: a cancellation is silent,
 * any other error is logged and shown with a "Show Log" action.
 */
export function registerSafeCommand(context: vscode.ExtensionContext, id: string, fn: (...args: any[]) => unknown): void {
  context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof CancelledError) return undefined;
      const msg = logError(id, err);
      const choice = await vscode.window.showErrorMessage(`Tensor Scalpel: ${msg}`, 'Show Log');
      if (choice === 'Show Log') log().show(true);
      return undefined;
    }
  }));
}
