/**
 * GPT-2's byte-level BPE (Radford et al. 2019; GGUF `tokenizer.ggml.model = "gpt2"` with
 * `tokenizer.ggml.merges`):
 *  1. Pre-tokenise with GPT-2's pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *  2. Write each chunk's UTF-8 bytes as printable characters through GPT-2's bytes_to_unicode table
 *     (printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards).
 *  3. Repeatedly merge the adjacent pair with the lowest merge rank (its line in the merges list)
 *     until no pair is in the list; each resulting symbol is a token.
 * Decoding joins the tokens' strings, maps the characters back to bytes and decodes UTF-8.
 */
import type { EncodeOptions, Tokenizer } from './tokenizer';

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: byte -> a printable character, and back. */
export function byteUnicodeTables(): { toChar: string[]; toByte: Map<string, number> } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const toChar: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) toChar[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  const toByte = new Map(toChar.map((c, b) => [c, b]));
  return { toChar, toByte };
}

export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly bos?: number;
  readonly eos?: number;
  readonly source: string;
  private readonly ids = new Map<string, number>();
  private readonly ranks = new Map<string, number>();
  private readonly tables = byteUnicodeTables();
  private readonly cache = new Map<string, number[]>();

  constructor(private readonly tokens: readonly string[], merges: readonly string[], opts: { bos?: number; eos?: number; source: string }) {
    tokens.forEach((t, i) => { if (!this.ids.has(t)) this.ids.set(t, i); });
    merges.forEach((m, i) => { if (!this.ranks.has(m)) this.ranks.set(m, i); });
    const eot = this.ids.get('<|endoftext|>');
    this.bos = opts.bos ?? eot;
    this.eos = opts.eos ?? eot;
    this.source = opts.source;
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  piece(id: number): string {
    return this.tokens[id] ?? '';
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.bos && this.bos !== undefined) out.push(this.bos);
    const enc = new TextEncoder();
    for (const m of text.matchAll(PRETOKENIZE)) {
      const chunk = m[0];
      let ids = this.cache.get(chunk);
      if (!ids) {
        const symbols = Array.from(enc.encode(chunk), (b) => this.tables.toChar[b]);
        ids = this.bpe(symbols).flatMap((s) => {
          const id = this.ids.get(s);
          if (id !== undefined) return [id];
          // A symbol with no token (an incomplete vocabulary): fall back to its single bytes.
          return [...s].map((c) => this.ids.get(c)).filter((x): x is number => x !== undefined);
        });
        if (this.cache.size < 50_000) this.cache.set(chunk, ids);
      }
      out.push(...ids);
    }
    return out;
  }

  /** Lowest-rank-first merging within one pre-token (words are short, so a linear scan suffices). */
  private bpe(symbols: string[]): string[] {
    const s = symbols.slice();
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.ranks.get(`${s[i]} ${s[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) return s;
      s.splice(best, 2, s[best] + s[best + 1]);
    }
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (id === this.bos || id === this.eos) continue;
      for (const c of this.tokens[id] ?? '') {
        const b = this.tables.toByte.get(c);
        if (b !== undefined) bytes.push(b);
        else bytes.push(...new TextEncoder().encode(c));
      }
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
  }
}
