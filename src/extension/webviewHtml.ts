import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

/** Webview options every panel of the extension uses: scripts on, resources only from out/webview and media. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'out', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** A fresh CSP nonce: 128 random bits, base64 (the CSP grammar allows base64 characters). */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

/**
 * The Content-Security-Policy of every webview: nothing by default; scripts only with the page's
 * nonce; styles from the extension or with the nonce (the bundle injects its CSS as a <style nonce>);
 * images from the extension or data: URIs; fonts from the extension. No network, no eval.
 */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    `default-src 'none'`,
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

/**
 * The HTML shell of a webview whose code is out/webview/<entry>.js (built from webview/<entry>/main.ts).
 * The script finds its nonce on `document.currentScript.nonce` to tag the <style> it injects.
 */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, entry: string, title: string): string {
  const nonce = makeNonce();
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'out', 'webview', `${entry}.js`));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(webview.cspSource, nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
</head>
<body>
<div id="app" role="main" aria-busy="true"><p class="status">Reading the header…</p></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
