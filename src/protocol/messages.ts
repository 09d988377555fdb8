/**
 * The typed vocabulary between the extension host and the webviews (types only: both sides import
 * this file, the host through tsconfig.json and the webview through webview/tsconfig.json).
 *
 * Shape, after microsoft/vscode-hexeditor's shared protocol: every message carries a `messageId`
 * unique per sender; a reply names the request it answers in `inReplyTo`. The webview starts the
 * conversation with `ready` (the handshake): the host never posts before it has seen `ready`, because
 * a message posted to a webview whose script has not yet run is lost.
 */

/** Fields every message has. */
export interface MessageBase {
  /** Unique per sender (a counter). */
  messageId: number;
  /** For a reply: the `messageId` of the request it answers. */
  inReplyTo?: number;
}

// ---------------------------------------------------------------------------------------------------
// Overview editor (the custom editor for checkpoint files)
// ---------------------------------------------------------------------------------------------------

/** One tensor row of the overview table (already JSON-safe). */
export interface OverviewTensor {
  name: string;
  shape: number[];
  dtype: string;
  params: number;
  /** Group label: "embedding", "block 3", "head", "other". */
  group: string;
  /** Sort key of the group: embedding < block 0..N < head < other. */
  groupOrder: number;
  byteOffset: number;
  byteLength: number;
  /** File holding the data, relative to the folder of the opened file when it lies inside it. */
  file: string;
}

/** One metadata entry, its value rendered to text by the host; long values are cut and flagged. */
export interface OverviewMetadataEntry {
  key: string;
  /** The value as display text (JSON for arrays and objects), at most a few KB. */
  text: string;
  /** Short one-line form (first ~120 characters) shown while collapsed. */
  preview: string;
  /** True when `text` is longer than `preview` and the row starts collapsed. */
  long: boolean;
  /** For arrays: the element count (the text lists only the first elements of a long array). */
  arrayLength?: number;
}

/** Everything the overview shows, built from the header alone. */
export interface OverviewModel {
  fileName: string;
  path: string;
  format: string;
  formatDetail: string;
  files: string[];
  sizeOnDisk: number;
  totalParams: number;
  /** Parameters per dtype, largest first. */
  dtypeMix: Array<{ dtype: string; params: number }>;
  metadata: OverviewMetadataEntry[];
  tensors: OverviewTensor[];
}

/** What the editor currently holds. */
export type OverviewState =
  | { kind: 'loading' }
  | { kind: 'loaded'; model: OverviewModel }
  | { kind: 'error'; fileName: string; path: string; message: string; errorName: string };

/** Host -> overview webview. */
export type HostToOverview =
  /** Reply to `ready`, and pushed again whenever the document is reloaded. */
  | (MessageBase & { type: 'state'; state: OverviewState })
  /** Scroll to and highlight a tensor row (the user picked it in the Models tree). */
  | (MessageBase & { type: 'highlightTensor'; name: string })
  /** Acknowledges a request that has no other answer. */
  | (MessageBase & { type: 'ack'; ok: boolean; error?: string });

/** Overview webview -> host. */
export type OverviewToHost =
  /** The handshake: the script has run and listens. */
  | (MessageBase & { type: 'ready' })
  /** Show the extension's log (the "Show Log" action next to an error). */
  | (MessageBase & { type: 'showLog' })
  /** Open the file again (after an error, or to pick up changes on disk). */
  | (MessageBase & { type: 'reload' })
  /** Select this tensor in the Models tree. */
  | (MessageBase & { type: 'revealTensor'; name: string });

/** Every message type string, for exhaustive switches. */
export type OverviewToHostType = OverviewToHost['type'];
export type HostToOverviewType = HostToOverview['type'];

/** A message before the sender stamps its `messageId` (distributes over the union's members). */
export type Unsent<M> = M extends MessageBase ? Omit<M, 'messageId'> : never;
