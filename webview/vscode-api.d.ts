/** The API VS Code injects into every webview (acquireVsCodeApi may be called once per page). */
interface VsCodeWebviewApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): S;
}
declare function acquireVsCodeApi<S = unknown>(): VsCodeWebviewApi<S>;
