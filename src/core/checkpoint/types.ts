/**
 * The lazy checkpoint model shared by every format: `open()` reads only the header and returns a
 * `Checkpoint` whose tensor index (name, dtype, row-major shape, byte range) is known up front; each
 * `TensorEntry.read()` streams just that tensor and decodes it to float32.
 */

export type CheckpointFormat = 'safetensors' | 'gguf' | 'onnx' | 'pytorch' | 'npy' | 'npz';

/** Which part of the model a tensor belongs to (see grouping.ts). */
export type TensorGroupKind = 'embedding' | 'block' | 'head' | 'other';
export interface TensorGroup {
  kind: TensorGroupKind;
  /** Block index for kind 'block'. */
  index?: number;
  /** Display label: "embedding", "block 3", "head", "other". */
  label: string;
}

export interface TensorInfo {
  name: string;
  /**
   * The dtype as the format names it, normalised to upper case: F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
   * I64, I32, I16, I8, U8, U16, U32, U64, BOOL, or a GGUF block quantization (Q4_0, Q8_0, Q4_K, ...).
   */
  dtype: string;
  /** Row-major shape, like PyTorch and numpy (GGUF's ne order is reversed). */
  shape: number[];
  /** Number of elements (product of shape; 1 for a scalar). */
  params: number;
  /** The file holding the data (differs from Checkpoint.path for shards and external data). */
  file: string;
  /** Absolute byte offset of the tensor's data in `file` (a safe integer). */
  byteOffset: number;
  /** Number of bytes the stored data occupies. */
  byteLength: number;
  group: TensorGroup;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface TensorEntry extends TensorInfo {
  /** Reads and decodes this tensor to float32 (row-major, `params` elements). */
  read(opts?: ReadOptions): Promise<Float32Array>;
  /** Reads the stored bytes unchanged (for writers that copy tensors through). */
  readRaw(opts?: ReadOptions): Promise<Uint8Array>;
}

export interface Checkpoint {
  format: CheckpointFormat;
  /** The path the user opened. */
  path: string;
  /** Every file the checkpoint spans (shards, external data), first the one opened. */
  files: string[];
  /** Total bytes on disk over `files`. */
  sizeOnDisk: number;
  tensors: TensorEntry[];
  /** Format metadata, JSON-serialisable (GGUF KV pairs, safetensors __metadata__, ONNX producer...). */
  metadata: Record<string, unknown>;
  /** Short format detail for display, e.g. "GGUF v3", "ONNX opset 14", "safetensors (3 shards)". */
  formatDetail: string;
  get(name: string): TensorEntry | undefined;
  close(): Promise<void>;
}

/** A JSON-serialisable summary of a checkpoint (what `inspect --json` prints and the webview shows). */
export interface CheckpointSummary {
  format: CheckpointFormat;
  formatDetail: string;
  path: string;
  files: string[];
  sizeOnDisk: number;
  tensors: Array<{ name: string; shape: number[]; dtype: string; params: number; group: string; byteOffset: number; byteLength: number; file: string }>;
  totalParams: number;
  dtypeMix: Record<string, number>;
  metadata: Record<string, unknown>;
}
