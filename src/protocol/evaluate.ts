/**
 * Messages of the Evaluate panel (host: src/extension/evaluatePanel.ts, webview: webview/evaluate).
 * Types only; the envelope (messageId, inReplyTo, the `ready` handshake) is messages.ts's.
 */
import type { MessageBase } from './messages';

/** Files the user chooses through the host's open dialog. */
export type EvalFileField = 'against' | 'text' | 'vocab' | 'promptA' | 'promptB';

/** What the panel evaluates, and the defaults the host knows (sent on every `ready`). */
export interface EvalSetup {
  fileName: string;
  path: string;
  /** The bundled prompt files of the Directions section. */
  defaultPromptA: string;
  defaultPromptB: string;
}

/** The settings of one run (the webview owns them and restores them with getState/setState). */
export interface EvalRunRequest {
  /** The original to compare against; null = score the model alone. */
  against: string | null;
  /** A text file to score; null = the bundled sample text. */
  text: string | null;
  /** A vocabulary (meta.json / vocab.json / GGUF) for a model without its own tokenizer; null = the model's. */
  vocab: string | null;
  /** Score at most this many targets. */
  maxTokens: number;
  /** Greedy continuation length. */
  sampleTokens: number;
  /** The generation prompt; '' = BOS alone. */
  prompt: string;
  /**
   * RoPE pair order for Llama-family models built from weights: 'auto' follows the file (GGUF, or a
   * hint in its metadata); 'interleaved' = Meta/llama2.c pairs (x[2i], x[2i+1]); 'half' = Hugging
   * Face rotate_half (x[i], x[i + d/2]). Files without a hint (e.g. a llama2.c .pt) need it set.
   * Applies to the model under test and the original alike. Absent = 'auto'.
   */
  ropeOrder?: 'auto' | 'interleaved' | 'half';
}

/** A greedy generation as tokens (ids and the text each adds), so the webview can mark a divergence. */
export interface EvalGeneration {
  ids: number[];
  /** pieces[i] = decode(prompt + ids[..i]) minus decode(prompt + ids[..i-1]). */
  pieces: string[];
  stop: 'eos' | 'length';
  msPerToken: number;
}

export interface EvalResult {
  model: string;
  against: string | null;
  textSource: string;
  textTokens: number;
  /** Targets scored. */
  tokens: number;
  window: number;
  perplexity: number;
  accuracy: number;
  klDivergence: number | null;
  top1Agreement: number | null;
  tokensPerSecond: number;
  /** Mean generation latency of the model under test. */
  msPerToken: number | null;
  againstMetrics: { perplexity: number; accuracy: number; tokensPerSecond: number } | null;
  prompt: string;
  /** The decoded prompt (what both generations start with). */
  promptText: string;
  generation: EvalGeneration | null;
  againstGeneration: EvalGeneration | null;
  seconds: number;
  /** For Llama-family graphs: the RoPE order used and why (e.g. 'option', 'GGUF (...)'); null otherwise. */
  rope: { order: 'interleaved' | 'half'; source: string } | null;
}

export interface DirectionLayerRow {
  layer: number;
  label: string;
  norm: number;
  separation: number;
}

export interface DirectionsResult {
  /** Identifies this computation (the host keeps its vectors under it). */
  key: string;
  promptA: string;
  promptB: string;
  countA: number;
  countB: number;
  pooling: 'last' | 'mean';
  dModel: number;
  layers: DirectionLayerRow[];
  bestLayer: number;
}

export type EvalPhase = 'evaluate' | 'directions';

export type HostToEvaluate =
  | (MessageBase & { type: 'evalSetup'; setup: EvalSetup })
  | (MessageBase & { type: 'evalProgress'; phase: EvalPhase; message: string; fraction?: number })
  | (MessageBase & { type: 'evalResult'; result: EvalResult })
  | (MessageBase & { type: 'evalError'; phase: EvalPhase; message: string; cancelled?: boolean; needsVocab?: boolean })
  | (MessageBase & { type: 'directionsResult'; result: DirectionsResult })
  | (MessageBase & { type: 'fileChosen'; field: EvalFileField; path: string | null })
  | (MessageBase & { type: 'directionDone'; action: 'save' | 'offer'; ok: boolean; message: string; file?: string; id?: string });

export type EvaluateToHost =
  | (MessageBase & { type: 'ready' })
  | (MessageBase & { type: 'pickFile'; field: EvalFileField })
  | (MessageBase & { type: 'run'; request: EvalRunRequest })
  | (MessageBase & { type: 'cancel' })
  | (MessageBase & { type: 'computeDirections'; promptA: string; promptB: string; pooling: 'last' | 'mean'; vocab: string | null; ropeOrder?: EvalRunRequest['ropeOrder'] })
  | (MessageBase & { type: 'saveDirection'; key: string; layer: number })
  | (MessageBase & { type: 'offerDirection'; key: string; layer: number });
