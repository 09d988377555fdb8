import * as vscode from 'vscode';
import { CancelledError } from '../core/checkpoint/errors';

/** Work shorter than this never flashes a notification; longer work shows one with a Cancel button. */
export const PROGRESS_DELAY_MS = 700;

/**
 * Runs `work` and, if it is still running after PROGRESS_DELAY_MS, shows a cancellable progress
 * notification. Cancelling (the notification's button or `token`) aborts the signal given to `work`
 * and rejects at once with CancelledError; `work` is expected to stop at its next check and release
 * what it holds.
 */
export async function withDelayedProgress<T>(
  title: string,
  work: (signal: AbortSignal, report: (message: string, increment?: number) => void) => Promise<T>,
  token?: vscode.CancellationToken,
): Promise<T> {
  const ac = new AbortController();
  const sub = token?.onCancellationRequested(() => ac.abort());
  let reporter: ((m: string, inc?: number) => void) | undefined;
  let lastMessage = '';
  const report = (message: string, increment?: number) => {
    lastMessage = message;
    reporter?.(message, increment);
  };
  const aborted = new Promise<never>((_, reject) => {
    if (ac.signal.aborted) reject(new CancelledError());
    ac.signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
  });
  aborted.catch(() => undefined); // only observed through the races below
  const running = work(ac.signal, report);
  try {
    const early = await Promise.race([
      running.then((v) => ({ done: true as const, v })),
      aborted,
      new Promise<{ done: false }>((r) => setTimeout(() => r({ done: false }), PROGRESS_DELAY_MS)),
    ]);
    if (early.done) return early.v;
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      (progress, progressToken) => {
        progressToken.onCancellationRequested(() => ac.abort());
        reporter = (message, increment) => progress.report({ message, increment });
        if (lastMessage) progress.report({ message: lastMessage });
        return Promise.race([running, aborted]);
      },
    );
  } finally {
    sub?.dispose();
  }
}
