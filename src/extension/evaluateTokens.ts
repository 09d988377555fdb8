/** Token-level views of generated text for the Evaluate panel (no VS Code API, so unit tests import it). */
import type { Tokenizer } from '../core/evaluate';

/**
 * The text each generated token adds: piece_i = decode(prompt + ids[..i]) minus decode(prompt + ids[..i-1]).
 * Decoding cumulatively (not token by token) keeps what a tokenizer renders from context — a
 * SentencePiece word-start space, byte-fallback pieces that only form a character together — so the
 * pieces concatenate to the decoded continuation. Where a decode is not a prefix extension (a
 * tokenizer that rewrites earlier text), the token decoded alone stands in. A token that starts an
 * unfinished multi-byte character gets '' (the one that completes it carries the character).
 */
export function tokenPieces(tok: Tokenizer, promptIds: readonly number[], ids: readonly number[]): string[] {
  const pieces: string[] = [];
  let prev = tok.decode([...promptIds]);
  for (let i = 0; i < ids.length; i++) {
    const cur = tok.decode([...promptIds, ...ids.slice(0, i + 1)]);
    // A byte-fallback token that starts a multi-byte character decodes to U+FFFD until the character
    // is complete: it adds nothing yet, and the token that completes it carries the character.
    if (cur.endsWith('\uFFFD') && i + 1 < ids.length) {
      pieces.push('');
      continue;
    }
    pieces.push(cur.startsWith(prev) ? cur.slice(prev.length) : tok.decode([ids[i]]));
    prev = cur;
  }
  return pieces;
}
