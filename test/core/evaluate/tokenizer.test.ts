import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { open, CheckpointError } from '../../../src/core/checkpoint';
import {
  ByteLevelBpeTokenizer, CharTokenizer, generate, loadModel, loadTokenizer, requireTokenizer, SAMPLE_SHAKESPEARE, SAMPLE_STORY,
  SentencePieceTokenizer, tokenizerFromFile, TokenizerError,
} from '../../../src/core/evaluate';
import { byteUnicodeTables } from '../../../src/core/evaluate/tokenizerBpe';
import { LLAMA2_TINY, PICO, STORIES, STORIES_GGUF, picoMeta, storiesMeta } from './fixtures';

async function spmOf(file: string): Promise<SentencePieceTokenizer> {
  const t = await tokenizerFromFile(file);
  assert.ok(t instanceof SentencePieceTokenizer);
  return t;
}

const pieces = (t: SentencePieceTokenizer, text: string) => t.encode(text).map((i) => t.piece(i));

test('stories260K GGUF tokenizer: the greedy generation decodes and re-encodes to the same ids', async () => {
  const m = await loadModel(STORIES_GGUF);
  try {
    const tok = requireTokenizer(m) as SentencePieceTokenizer;
    assert.equal(tok.bos, 1);
    assert.equal(tok.eos, 2);
    const g = await generate(m, [tok.bos!], { maxTokens: 80 });
    const text = tok.decode(g.ids);
    assert.equal(text, storiesMeta().greedy_sample.replace(/<0x0A>/g, '\n').replace(/^ /, '').slice(0, text.length));
    assert.deepEqual(tok.encode(text), g.ids, 'encode(decode(ids)) = ids');
    assert.deepEqual(tok.encode(text, { bos: true }), [1, ...g.ids]);
  } finally { await m.close(); }
});

test('SentencePiece: the dummy-prefix space, spaces as ▁, decode removes the prefix space', async () => {
  const t = await spmOf(LLAMA2_TINY); // the real 32,000-piece Llama-2 vocabulary with scores
  assert.deepEqual(pieces(t, 'Hello world'), ['▁Hello', '▁world']);
  assert.deepEqual(pieces(t, 'Hello'), ['▁Hello'], 'a leading ▁ is added even to the first word');
  assert.equal(t.decode(t.encode('Hello world')), 'Hello world');
  const spaced = 'a  b   c';
  assert.equal(t.decode(t.encode(spaced)), spaced, 'runs of spaces survive');
  assert.deepEqual(t.encode(''), []);
  assert.deepEqual(t.encode('', { bos: true }), [t.bos]);
});

test('SentencePiece byte fallback: characters outside the vocabulary become <0xNN> pieces and decode back', async () => {
  const stories = await spmOf(STORIES_GGUF); // 512 pieces: no "ß", no emoji
  assert.ok(!stories.encode('ß').some((i) => stories.piece(i) === 'ß'));
  assert.deepEqual(pieces(stories, 'ß').slice(-2), ['<0xC3>', '<0x9F>']);
  assert.equal(stories.decode(stories.encode('café 🦙!')), 'café 🦙!');
  assert.deepEqual(pieces(stories, 'a\nb').filter((p) => p.startsWith('<0x')), ['<0x0A>'], 'newline is the byte piece <0x0A>');
  const llama2 = await spmOf(LLAMA2_TINY);
  assert.deepEqual(pieces(llama2, '🦙').filter((p) => p.startsWith('<0x')), ['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
  assert.equal(llama2.decode(llama2.encode('naïve 🦙 über\ttab')), 'naïve 🦙 über\ttab');
});

test('SentencePiece merges by highest score: a merged piece wins over its parts', async () => {
  const t = await spmOf(STORIES_GGUF);
  // "▁the" is a piece, and its merge chain ("▁t" + "he") wins, so the word is one piece.
  assert.deepEqual(pieces(t, 'the'), ['▁the']);
  for (const text of [SAMPLE_STORY, SAMPLE_SHAKESPEARE]) assert.equal(t.decode(t.encode(text)), text);
});

test('SentencePiece word-by-word encoding (memoised) equals merging over the whole text at once', async () => {
  for (const file of [STORIES_GGUF, LLAMA2_TINY]) {
    const t = await spmOf(file);
    for (const text of [SAMPLE_STORY, SAMPLE_SHAKESPEARE, '  two  spaces\n\nand  ünïcödé 🦙 ', 'x']) {
      const whole: number[] = [];
      // The reference: the merge loop over the full normalised string, no splitting.
      (t as unknown as { encodeSymbols(s: string, out: number[]): void }).encodeSymbols((' ' + text).replace(/ /g, '\u2581'), whole);
      assert.deepEqual(t.encode(text), whole, `${path.basename(file)}: ${JSON.stringify(text.slice(0, 30))}`);
    }
  }
});

test('vocab.json (pieces without scores, ranked by id) tokenizes exactly like the GGUF tokenizer', async () => {
  const fromJson = await spmOf(path.join(STORIES, 'vocab.json'));
  const fromGguf = await spmOf(STORIES_GGUF);
  assert.equal(fromJson.vocabSize, 512);
  for (const text of [SAMPLE_STORY, SAMPLE_SHAKESPEARE, 'The quick brown fox — jumps!']) {
    assert.deepEqual(fromJson.encode(text, { bos: true }), fromGguf.encode(text, { bos: true }));
  }
});

test('character vocabulary (PicoGPT meta.json): round trip, and a clear error for a foreign character', async () => {
  const t = await tokenizerFromFile(path.join(PICO, 'meta.json'));
  assert.ok(t instanceof CharTokenizer);
  assert.equal(t.vocabSize, picoMeta().vocab.length);
  assert.equal(t.decode(t.encode(SAMPLE_SHAKESPEARE)), SAMPLE_SHAKESPEARE);
  assert.deepEqual(t.encode('\n a'), [0, 1, picoMeta().vocab.indexOf('a')]);
  assert.throws(() => t.encode('ok é'), (e: unknown) => e instanceof TokenizerError && /"é".*offset 3/.test(e.message));
  // The same vocabulary from pico.safetensors' __metadata__ and from pico_f32.gguf's token list.
  for (const f of ['pico.safetensors', 'pico_f32.gguf']) {
    const ckpt = await open(path.join(PICO, f));
    try {
      const u = await loadTokenizer(ckpt.path, ckpt);
      assert.ok(u instanceof CharTokenizer, f);
      assert.deepEqual(u.encode(SAMPLE_SHAKESPEARE), t.encode(SAMPLE_SHAKESPEARE));
    } finally { await ckpt.close(); }
  }
});

test('GPT-2 byte-level BPE: bytes_to_unicode, lowest-rank merges, pre-tokenised words, byte-exact round trip', () => {
  const { toChar } = byteUnicodeTables();
  assert.equal(new Set(toChar).size, 256);
  assert.equal(toChar[0x20], 'Ġ');
  assert.equal(toChar[0x0a], 'Ċ');
  assert.equal(toChar[0x41], 'A');
  const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ t', 'Ġt he', "t '"];
  const vocab = [...toChar, 'he', 'll', 'hell', 'hello', 'Ġt', 'Ġthe', "t'", '<|endoftext|>'];
  const t = new ByteLevelBpeTokenizer(vocab, merges, { source: 'test' });
  assert.equal(t.eos, vocab.length - 1);
  const enc = (s: string) => t.encode(s).map((i) => t.piece(i));
  // h e l l o -> he l l o (rank 0) -> he ll o (1) -> hell o (2) -> hello (3);  Ġ t h e -> Ġ t he -> Ġt he -> Ġthe.
  assert.deepEqual(enc('hello the'), ['hello', 'Ġthe']);
  assert.deepEqual(enc('hell'), ['hell']);
  // The pre-tokeniser splits "it's" into "it" + "'s", so the merge "t '" never applies across them.
  assert.deepEqual(enc("it's"), ['i', 't', "'", 's']);
  assert.deepEqual(enc('hello\n'), ['hello', 'Ċ']);
  for (const s of ['hello  the\nthe', 'café 🦙 日本', '   ']) assert.equal(t.decode(t.encode(s)), s);
});

test('a model without any tokenizer: the load works, and using it says "<file> has no tokenizer: pass --vocab"', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-notok-'));
  try {
    const copy = path.join(dir, 'stories.pt');
    await fsp.copyFile(path.join(STORIES, 'stories260K.pt'), copy);
    const m = await loadModel(copy, { nHead: 8, ropeOrder: 'interleaved' });
    try {
      assert.equal(m.tokenizer, undefined);
      assert.throws(() => requireTokenizer(m), (e: unknown) => e instanceof CheckpointError && e.message.includes(copy) && /has no tokenizer: pass --vocab/.test(e.message));
    } finally { await m.close(); }
    const withVocab = await loadModel(copy, { nHead: 8, ropeOrder: 'interleaved', vocabPath: STORIES_GGUF });
    try {
      assert.equal(requireTokenizer(withVocab).kind, 'sentencepiece', 'a GGUF file lends its tokenizer');
    } finally { await withVocab.close(); }
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});
