/**
 * A character vocabulary (PicoGPT's meta.json "vocab": the characters in id order): one token per
 * Unicode code point, no BOS/EOS, no merges.
 */
import type { EncodeOptions, Tokenizer } from './tokenizer';

/** Thrown when a text holds a character the vocabulary lacks (a character model cannot encode it). */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly bos = undefined;
  readonly eos = undefined;
  private readonly ids = new Map<string, number>();

  constructor(private readonly chars: readonly string[], readonly source: string) {
    chars.forEach((c, i) => { if (!this.ids.has(c)) this.ids.set(c, i); });
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string, _opts?: EncodeOptions): number[] {
    const out: number[] = [];
    let offset = 0;
    for (const c of text) {
      const id = this.ids.get(c);
      if (id === undefined) {
        throw new TokenizerError(`character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}) at offset ${offset} is not in the ${this.chars.length}-character vocabulary (${this.source})`);
      }
      out.push(id);
      offset += c.length;
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    return ids.map((i) => this.chars[i] ?? '').join('');
  }

  piece(id: number): string {
    return this.chars[id] ?? '';
  }
}
