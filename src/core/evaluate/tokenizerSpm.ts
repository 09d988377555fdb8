/**
 * SentencePiece BPE as llama.cpp runs it for GGUF `tokenizer.ggml.model = "llama"` (and llama2.c's
 * tokenizer.bin): pieces with scores, no merge list.
 *
 * Encoding:
 *  1. Normalise: prepend one space (the "dummy prefix", unless add_space_prefix is false) and write
 *     every space as U+2581 "▁".
 *  2. Start from single code points; repeatedly merge the adjacent pair whose concatenation is a
 *     piece with the highest score (ties: the leftmost pair), until no adjacent pair forms a piece.
 *  3. A symbol that is not a piece (a character outside the vocabulary) is written as its UTF-8
 *     bytes through the byte-fallback pieces <0x00>..<0xFF> (or <unk> where those are missing).
 * Decoding maps "▁" back to a space, byte pieces back to bytes (so <0x0A> is a newline and multi-byte
 * characters reassemble), drops control tokens (<s>, </s>), and removes the dummy prefix's space
 * at the start, as SentencePiece's decoder does.
 *
 * Token types (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte. Without stored scores (a plain vocab.json), pieces are ranked by id
 * (score = -id): SentencePiece BPE numbers its pieces in the order the merges were learned.
 */
import type { EncodeOptions, Tokenizer } from './tokenizer';

export type SpmTokenType = 1 | 2 | 3 | 4 | 5 | 6;
const T_UNKNOWN = 2, T_CONTROL = 3, T_UNUSED = 5, T_BYTE = 6;

export interface SpmOptions {
  scores?: Float32Array;
  types?: SpmTokenType[];
  bos?: number;
  eos?: number;
  unk?: number;
  addSpacePrefix?: boolean;
  source: string;
}

const SPACE = '\u2581';
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
/** Split points before a "▁" that follows another character (zero-width). */
const WORD_START = /(?<=[^\u2581])(?=\u2581)/u;
const UTF8 = new TextEncoder();

/** Max-heap of candidate merges keyed by (score desc, left position asc). */
class MergeQueue {
  private readonly items: Array<{ score: number; left: number; right: number; len: number }> = [];

  push(item: { score: number; left: number; right: number; len: number }): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): { score: number; left: number; right: number; len: number } | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }

  private before(x: { score: number; left: number }, y: { score: number; left: number }): boolean {
    return x.score > y.score || (x.score === y.score && x.left < y.left);
  }
}

export class SentencePieceTokenizer implements Tokenizer {
  readonly kind = 'sentencepiece' as const;
  readonly bos?: number;
  readonly eos?: number;
  readonly unk?: number;
  readonly addSpacePrefix: boolean;
  readonly source: string;
  private readonly pieceIds = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly byteOf: Int16Array;
  private readonly scores: Float32Array;
  private readonly types: SpmTokenType[];
  /** True when no piece has "▁" right after another character: then words merge independently. */
  private readonly wordsIndependent: boolean;
  private readonly wordCache = new Map<string, number[]>();

  constructor(private readonly pieces: readonly string[], opts: SpmOptions) {
    this.source = opts.source;
    this.addSpacePrefix = opts.addSpacePrefix ?? true;
    this.scores = opts.scores ?? Float32Array.from(pieces, (_, i) => -i);
    this.types = opts.types ?? pieces.map((p) => inferType(p));
    this.byteOf = new Int16Array(pieces.length).fill(-1);
    pieces.forEach((p, i) => {
      const t = this.types[i];
      const m = BYTE_PIECE.exec(p);
      if (t === T_BYTE && m) {
        this.byteIds[parseInt(m[1], 16)] = i;
        this.byteOf[i] = parseInt(m[1], 16);
      } else if (t !== T_CONTROL && t !== T_UNKNOWN && t !== T_UNUSED && !this.pieceIds.has(p)) {
        this.pieceIds.set(p, i);
      }
    });
    this.wordsIndependent = ![...this.pieceIds.keys()].some((p) => /[^\u2581]\u2581/u.test(p));
    const find = (p: string) => { const i = pieces.indexOf(p); return i >= 0 ? i : undefined; };
    this.bos = opts.bos ?? find('<s>');
    this.eos = opts.eos ?? find('</s>');
    this.unk = opts.unk ?? find('<unk>');
  }

  /** From a bare list of pieces (vocab.json): types from the piece text, scores by id. */
  static fromPieces(pieces: readonly string[], opts: { scores?: Float32Array; source: string }): SentencePieceTokenizer {
    return new SentencePieceTokenizer(pieces, { scores: opts.scores, source: opts.source });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  piece(id: number): string {
    return this.pieces[id] ?? '';
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.bos && this.bos !== undefined) out.push(this.bos);
    if (text.length === 0) return out;
    const normalised = (this.addSpacePrefix ? ' ' + text : text).replace(/ /g, SPACE);
    if (!this.wordsIndependent) {
      this.encodeSymbols(normalised, out);
      return out;
    }
    // Merges never cross a point where "▁" follows another character (no piece contains such a
    // pair, see wordsIndependent), so each "▁word" run is encoded on its own, and memoised: the
    // result is identical to merging over the whole text, and long texts encode in linear time.
    for (const word of normalised.split(WORD_START)) {
      if (word.length === 0) continue;
      let ids = this.wordCache.get(word);
      if (!ids) {
        ids = [];
        this.encodeSymbols(word, ids);
        if (this.wordCache.size < 100_000) this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /** The merge loop over one normalised string (module comment, steps 2-3), appending ids to `out`. */
  private encodeSymbols(normalised: string, out: number[]): void {
    const sym = Array.from(normalised); // code points
    const n = sym.length;
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const queue = new MergeQueue();
    const tryPair = (left: number, right: number) => {
      if (left < 0 || right < 0) return;
      const merged = sym[left] + sym[right];
      const id = this.pieceIds.get(merged);
      if (id !== undefined) queue.push({ score: this.scores[id], left, right, len: merged.length });
    };
    for (let i = 0; i + 1 < n; i++) tryPair(i, i + 1);
    for (let item = queue.pop(); item; item = queue.pop()) {
      const { left, right, len } = item;
      // Stale entry: one side was merged away or grew since this pair was queued.
      if (sym[left] === '' || sym[right] === '' || next[left] !== right || sym[left].length + sym[right].length !== len) continue;
      sym[left] += sym[right];
      sym[right] = '';
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryPair(prev[left], left);
      tryPair(left, next[left]);
    }
    for (let i = 0; i >= 0 && i < n; i = next[i]) {
      const id = this.pieceIds.get(sym[i]);
      if (id !== undefined) { out.push(id); continue; }
      for (const b of UTF8.encode(sym[i])) {
        const bid = this.byteIds[b];
        if (bid >= 0) out.push(bid);
        else if (this.unk !== undefined) out.push(this.unk);
      }
    }
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    const enc = new TextEncoder();
    let first = true;
    for (const id of ids) {
      const t = this.types[id];
      if (t === undefined || t === T_CONTROL || t === T_UNUSED) continue;
      if (t === T_UNKNOWN) { bytes.push(...enc.encode(' \u2047 ')); first = false; continue; }
      if (this.byteOf[id] >= 0) { bytes.push(this.byteOf[id]); first = false; continue; }
      let s = this.pieces[id].replace(/\u2581/g, ' ');
      if (first && this.addSpacePrefix && s.startsWith(' ')) s = s.slice(1);
      first = false;
      bytes.push(...enc.encode(s));
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
  }

  /**
   * The pieces as llama.cpp's `llama_token_to_piece` would print them one by one, "▁" as a space,
   * byte pieces left as written (<0x0A>), control tokens dropped — the form of a token-by-token
   * transcript such as stories260k/meta.json's greedy_sample.
   */
  renderPieces(ids: readonly number[]): string {
    return ids.filter((id) => this.types[id] !== T_CONTROL).map((id) => (this.byteOf[id] >= 0 ? this.pieces[id] : this.pieces[id].replace(/\u2581/g, ' '))).join('');
  }
}

function inferType(piece: string): SpmTokenType {
  if (piece === '<unk>') return T_UNKNOWN;
  if (piece === '<s>' || piece === '</s>') return T_CONTROL;
  if (BYTE_PIECE.test(piece)) return T_BYTE;
  return 1;
}
