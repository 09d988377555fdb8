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
  | HostToMap
  /** Reply to `ready`, and pushed again whenever the document is reloaded. */
  | (MessageBase & { type: 'state'; state: OverviewState })
  /** Scroll to and highlight a tensor row (the user picked it in the Models tree). */
  | (MessageBase & { type: 'highlightTensor'; name: string })
  /** Acknowledges a request that has no other answer. */
  | (MessageBase & { type: 'ack'; ok: boolean; error?: string });

/** Overview webview -> host. */
export type OverviewToHost =
  | MapToHost
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

// ---------------------------------------------------------------------------------------------------
// Model map (a tab of the overview editor), spectrum view, bond-dimension editor, ablation picker
// ---------------------------------------------------------------------------------------------------

/** The spectrum metrics one model-map cell shows (a slim TensorSpectrum: no singular values). */
export interface MapTensorMetrics {
  name: string;
  /** The matrix it was read as: [rows, cols]. */
  matrix: [number, number];
  mode: 'exact' | 'estimate';
  normalizedEntropy: number | null;
  effectiveRank: number;
  /** Full rank min(m, n). */
  rank: number;
  stableRank: number;
  alpha: number | null;
  outliers: number;
  spectralNorm: number;
  frobeniusNorm: number;
}

/** Where a model's spectrum scan stands. */
export interface ScanStatus {
  state: 'idle' | 'running' | 'done' | 'cancelled' | 'error';
  done: number;
  total: number;
  message?: string;
  failures: Array<{ name: string; message: string }>;
  seconds?: number;
}

/** Host -> overview (model map tab). */
export type HostToMap =
  /** The full map state (on ready and after a scan starts): every metric known so far. */
  | (MessageBase & { type: 'mapState'; status: ScanStatus; tensors: MapTensorMetrics[] })
  /** Live: one tensor's metrics arrived (and where the scan stands). */
  | (MessageBase & { type: 'mapResult'; status: ScanStatus; tensor?: MapTensorMetrics })
  /** Bring the model map tab to the front. */
  | (MessageBase & { type: 'showMap' });

/** Overview (model map tab) -> host. */
export type MapToHost =
  | (MessageBase & { type: 'startScan' })
  | (MessageBase & { type: 'cancelScan' })
  | (MessageBase & { type: 'openSpectrum'; name: string; add?: boolean })
  /** Save exported bytes (SVG/CSV as text, PNG as base64) through a save dialog. */
  | (MessageBase & { type: 'saveExport'; suggestedName: string; format: 'svg' | 'png' | 'csv'; text?: string; base64?: string })
  | (MessageBase & { type: 'openCompress'; name?: string })
  | (MessageBase & { type: 'openAblate'; name?: string });

/** One tensor's spectrum as the spectrum view draws it. */
export interface SpectrumSeries {
  model: string;
  /** Absolute path of the checkpoint (identity of the series together with `name`). */
  path: string;
  name: string;
  matrix: [number, number];
  mode: 'exact' | 'estimate';
  /** Descending singular values (all in exact mode, the top-k in estimate mode). */
  singularValues: number[];
  /** errors[k], params[k] for k = 0..K (see core/analysis/spectrum.ts truncationCurve). */
  truncation: { errors: number[]; params: number[] };
  mpEdge: number;
  outliers: number;
  normalizedEntropy: number | null;
  effectiveRank: number;
  stableRank: number;
  alpha: number | null;
}

export type HostToSpectrum =
  | (MessageBase & { type: 'spectra'; series: SpectrumSeries[]; loading?: string; error?: string })
  | (MessageBase & { type: 'ack'; ok: boolean; error?: string });

export type SpectrumToHost =
  | (MessageBase & { type: 'ready' })
  | (MessageBase & { type: 'removeSeries'; path: string; name: string })
  | (MessageBase & { type: 'saveExport'; suggestedName: string; format: 'svg' | 'png' | 'csv'; text?: string; base64?: string });

/** One compressible tensor of the bond-dimension editor with its precomputed chi tables. */
export interface CompressTensor {
  name: string;
  shape: [number, number];
  outFactors: number[];
  inFactors: number[];
  /** params[chi - 1] and errors[chi - 1] for chi = 1 .. maxChi (uniform chi over all bonds). */
  params: number[];
  errors: number[];
  /** Bond-cut entanglement entropies (nats) and their maxima ln min(L_k, R_k), per bond. */
  bondEntropies: Array<number | null>;
  maxBondEntropies: number[];
  /** False for embeddings / heads (listed, off by default). */
  defaultOn: boolean;
}

export interface CompressModel {
  fileName: string;
  path: string;
  /** Parameters of the whole model (compressible or not). */
  totalParams: number;
  sizeOnDisk: number;
  tensors: CompressTensor[];
  /** Tensors whose tables are still being computed (done / total). */
  progress?: { done: number; total: number };
}

export type HostToCompress =
  | (MessageBase & { type: 'compressModel'; model: CompressModel; focus?: string })
  | (MessageBase & { type: 'compressTensor'; tensor: CompressTensor; progress?: { done: number; total: number } })
  | (MessageBase & { type: 'compressError'; message: string })
  | (MessageBase & { type: 'writeStatus'; state: 'running' | 'done' | 'error' | 'cancelled'; message: string; output?: string })
  | (MessageBase & { type: 'ack'; ok: boolean; error?: string });

/** A user's choice for one tensor in a write request. */
export interface CompressChoice {
  name: string;
  chi: number;
  outFactors: number[];
  inFactors: number[];
}

export type CompressToHost =
  | (MessageBase & { type: 'ready' })
  /** Recompute one tensor's tables for another site factorisation (validated by the host too). */
  | (MessageBase & { type: 'refactor'; name: string; outFactors: number[]; inFactors: number[] })
  | (MessageBase & { type: 'write'; choices: CompressChoice[]; factorized: boolean })
  | (MessageBase & { type: 'cancelWrite' })
  /** Open a written result in the overview editor. */
  | (MessageBase & { type: 'openResult'; path: string });

/** A candidate direction of the ablation picker. */
export interface AblationCandidate {
  id: string;
  label: string;
  source: 'singular' | 'file' | 'computed';
  detail: string;
  length: number;
}

export interface AblationWriter {
  name: string;
  kind: string;
  shape: number[];
  residualAxis: 0 | 1;
  preselected: boolean;
}

export interface AblationModel {
  fileName: string;
  path: string;
  dModel: number | undefined;
  family: string;
  writers: AblationWriter[];
  /** 2-D tensors one can take singular directions from. */
  matrices: Array<{ name: string; shape: number[]; residualAxis?: 0 | 1 }>;
  notes: string[];
}

export type HostToAblate =
  | (MessageBase & { type: 'ablateModel'; model: AblationModel; focus?: string })
  | (MessageBase & { type: 'candidates'; candidates: AblationCandidate[] })
  /** rows: writer name -> fraction of ||W||_F removed per candidate id. */
  | (MessageBase & { type: 'preview'; rows: Array<{ writer: string; removed: Record<string, number> }>; error?: string })
  | (MessageBase & { type: 'writeStatus'; state: 'running' | 'done' | 'error' | 'cancelled'; message: string; output?: string })
  | (MessageBase & { type: 'ablateError'; message: string })
  | (MessageBase & { type: 'ack'; ok: boolean; error?: string });

export type AblateToHost =
  | (MessageBase & { type: 'ready' })
  | (MessageBase & { type: 'singularDirections'; tensor: string; count: number })
  | (MessageBase & { type: 'pickFiles' })
  | (MessageBase & { type: 'removeCandidate'; id: string })
  | (MessageBase & { type: 'preview'; candidates: string[]; writers: string[] })
  | (MessageBase & { type: 'write'; candidates: string[]; writers: string[] })
  | (MessageBase & { type: 'cancelWrite' })
  | (MessageBase & { type: 'openResult'; path: string });
