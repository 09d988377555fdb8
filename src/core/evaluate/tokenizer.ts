/**
 * The tokenizer interface shared by the three kinds we read (character vocabularies, SentencePiece
 * BPE as GGUF "llama" stores it, GPT-2 byte-level BPE as GGUF "gpt2" stores it), and where to find
 * one for a model: the GGUF's own metadata, a character list in safetensors `__metadata__`, a sibling
 * meta.json ("vocab": [...characters]) or vocab.json ("tokens": [...pieces]), or a file given by
 * the caller (`vocabPath`: any of those JSON files, or a GGUF file whose tokenizer to borrow).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, open, type Checkpoint } from '../checkpoint';
import type { GgufCheckpoint, GgufValue } from '../checkpoint/gguf';
import { CharTokenizer } from './tokenizerChar';
import { SentencePieceTokenizer, type SpmTokenType } from './tokenizerSpm';
import { ByteLevelBpeTokenizer } from './tokenizerBpe';

export interface EncodeOptions {
  /** Prepend the BOS token (SentencePiece models have one; default false). */
  bos?: boolean;
}

export interface Tokenizer {
  readonly kind: 'char' | 'sentencepiece' | 'bpe';
  readonly vocabSize: number;
  readonly bos?: number;
  readonly eos?: number;
  /** Where it came from, for messages ("GGUF tokenizer.ggml.model=llama of x.gguf"). */
  readonly source: string;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Token ids -> text, as the tokenizer's own decoder does (control tokens dropped). */
  decode(ids: readonly number[]): string;
  /** The stored string of one token. */
  piece(id: number): string;
}

/** Returns the tokenizer of a model, or throws `<file> has no tokenizer: pass --vocab ...`. */
export async function loadTokenizer(modelPath: string, ckpt?: Checkpoint, opts: { vocabPath?: string } = {}): Promise<Tokenizer> {
  if (opts.vocabPath) return tokenizerFromFile(opts.vocabPath);
  if (ckpt && ckpt.format === 'gguf') {
    const t = fromGguf(ckpt as GgufCheckpoint);
    if (t) return t;
  }
  if (ckpt && typeof ckpt.metadata.vocab === 'string') {
    const list = parseJsonOrUndefined(ckpt.metadata.vocab);
    if (Array.isArray(list) && list.every((c) => typeof c === 'string')) return fromList(list as string[], `${path.basename(modelPath)} __metadata__ vocab`);
  }
  const dir = path.dirname(modelPath);
  for (const name of ['meta.json', 'vocab.json']) {
    const p = path.join(dir, name);
    let text: string;
    try { text = await fsp.readFile(p, 'utf8'); } catch { continue; }
    const t = fromJson(parseJsonOrUndefined(text), p);
    if (t) return t;
  }
  throw new CheckpointError(modelPath, 'has no tokenizer: pass --vocab with a meta.json (a "vocab" list of characters), a vocab.json (a "tokens" list of SentencePiece pieces) or a GGUF file that carries one');
}

/** A tokenizer from a file named by the user: JSON (char list / SentencePiece pieces) or a GGUF. */
export async function tokenizerFromFile(file: string): Promise<Tokenizer> {
  const abs = path.resolve(file);
  let head: Buffer;
  try {
    head = await fsp.readFile(abs);
  } catch (e) {
    throw new CheckpointError(abs, `cannot read the vocabulary: ${(e as Error).message}`);
  }
  if (head.subarray(0, 4).toString('latin1') === 'GGUF') {
    const ckpt = await open(abs) as GgufCheckpoint;
    try {
      const t = fromGguf(ckpt);
      if (!t) throw new CheckpointError(abs, 'this GGUF file carries no tokenizer (no tokenizer.ggml.tokens)');
      return t;
    } finally {
      await ckpt.close();
    }
  }
  const json = parseJsonOrUndefined(head.toString('utf8'));
  if (json === undefined) throw new CheckpointError(abs, 'vocabulary is neither JSON nor a GGUF file');
  const t = fromJson(json, abs);
  if (!t) throw new CheckpointError(abs, 'no vocabulary found: expected {"vocab": [characters]}, {"tokens": [pieces], "scores"?: [...]} or a JSON list of strings');
  return t;
}

function parseJsonOrUndefined(text: string): unknown {
  try { return JSON.parse(text); } catch { return undefined; }
}

function fromJson(json: unknown, file: string): Tokenizer | undefined {
  const label = path.basename(file);
  if (Array.isArray(json) && json.every((c) => typeof c === 'string')) return fromList(json as string[], label);
  if (!json || typeof json !== 'object') return undefined;
  const o = json as Record<string, unknown>;
  if (Array.isArray(o.vocab) && o.vocab.every((c) => typeof c === 'string')) return fromList(o.vocab as string[], `${label} vocab`);
  if (Array.isArray(o.tokens) && o.tokens.every((c) => typeof c === 'string')) {
    const scores = Array.isArray(o.scores) && o.scores.length === o.tokens.length ? Float32Array.from(o.scores as number[]) : undefined;
    return SentencePieceTokenizer.fromPieces(o.tokens as string[], { scores, source: `${label} tokens` });
  }
  return undefined;
}

/** A list of one-character strings is a character vocabulary; anything else is SentencePiece pieces. */
function fromList(list: string[], source: string): Tokenizer {
  if (list.every((c) => [...c].length === 1)) return new CharTokenizer(list, source);
  return SentencePieceTokenizer.fromPieces(list, { source });
}

function kvNumber(kv: Map<string, GgufValue>, key: string): number | undefined {
  const v = kv.get(key);
  if (!v || v.type === 'array' || v.type === 'string' || v.type === 'bool') return undefined;
  const n = Number(v.value);
  // 0xFFFFFFFF (-1 as uint32) means "none" in llama.cpp's writer.
  return n === 4294967295 ? undefined : n;
}

function fromGguf(ckpt: GgufCheckpoint): Tokenizer | undefined {
  const kv = ckpt.gguf.kv;
  const tokensV = kv.get('tokenizer.ggml.tokens');
  if (!tokensV || tokensV.type !== 'array' || tokensV.itemType !== 'string') return undefined;
  const tokens = tokensV.value as string[];
  const modelV = kv.get('tokenizer.ggml.model');
  const model = modelV && modelV.type === 'string' ? modelV.value : 'llama';
  const source = `GGUF tokenizer.ggml.model=${model} of ${path.basename(ckpt.path)}`;
  const bos = kvNumber(kv, 'tokenizer.ggml.bos_token_id');
  const eos = kvNumber(kv, 'tokenizer.ggml.eos_token_id');
  if (model === 'llama') {
    const scoresV = kv.get('tokenizer.ggml.scores');
    const typesV = kv.get('tokenizer.ggml.token_type');
    const spV = kv.get('tokenizer.ggml.add_space_prefix');
    return new SentencePieceTokenizer(tokens, {
      scores: scoresV && scoresV.type === 'array' ? Float32Array.from(scoresV.value as ArrayLike<number>) : undefined,
      types: typesV && typesV.type === 'array' ? (Array.from(typesV.value as ArrayLike<number>) as SpmTokenType[]) : undefined,
      bos, eos, unk: kvNumber(kv, 'tokenizer.ggml.unknown_token_id'),
      addSpacePrefix: spV && spV.type === 'bool' ? spV.value : true,
      source,
    });
  }
  if (model === 'gpt2') {
    const mergesV = kv.get('tokenizer.ggml.merges');
    if (!mergesV || mergesV.type !== 'array' || mergesV.itemType !== 'string') throw new CheckpointError(ckpt.path, 'tokenizer.ggml.model is "gpt2" but tokenizer.ggml.merges is missing');
    return new ByteLevelBpeTokenizer(tokens, mergesV.value as string[], { bos, eos, source });
  }
  // "none" (e.g. PicoGPT's GGUF export): a plain list; single characters make a character vocabulary.
  if (tokens.every((c) => [...c].length === 1)) return new CharTokenizer(tokens, source);
  throw new CheckpointError(ckpt.path, `tokenizer.ggml.model "${model}" is not supported (llama, gpt2, or a character list)`);
}
