import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { tokenizerFromFile } from '../../src/core/evaluate';
import { tokenPieces } from '../../src/extension/evaluateTokens';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');

test('tokenPieces: the pieces of a SentencePiece continuation concatenate to its decoded text (stories260K GGUF vocabulary)', async () => {
  const tok = await tokenizerFromFile(path.join(ROOT, 'media/sample/stories260K.gguf'));
  const prompt = tok.encode('Once upon a time,', { bos: true });
  const ids = tok.encode(' there was a little girl named Lily.\nShe said "hi" ü', { bos: false });
  const pieces = tokenPieces(tok, prompt, ids);
  assert.equal(pieces.length, ids.length);
  const whole = tok.decode([...prompt, ...ids]);
  assert.equal(tok.decode(prompt) + pieces.join(''), whole);
  assert.ok(whole.includes('Lily.\nShe'), whole);
  // Empty prompt (BOS alone) as the panel's default.
  const bos = tok.encode('', { bos: true });
  const p2 = tokenPieces(tok, bos, ids.slice(0, 5));
  assert.equal(tok.decode(bos) + p2.join(''), tok.decode([...bos, ...ids.slice(0, 5)]));
});

test('tokenPieces: one character per piece for the PicoGPT character vocabulary', async () => {
  const tok = await tokenizerFromFile(path.join(FIX, 'pico/meta.json'));
  const ids = tok.encode('ROMEO:\nhi', {});
  assert.deepEqual(tokenPieces(tok, ids.slice(0, 2), ids.slice(2)), [...'MEO:\nhi']);
});
