import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { generateCommand } from '../../src/cli/commands/generate';
import { UsageError, type CliIO } from '../../src/cli/args';

const SHARED = path.resolve(__dirname, '../../../shared');
const STORIES = path.join(SHARED, 'fixtures/stories260k');
const STORIES_GGUF = path.join(SHARED, 'fixtures/real/stories260K.gguf');
const PICO = path.join(SHARED, 'fixtures/pico');

function capture(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), progress: (t) => err.push(t), signal: new AbortController().signal }, out, err };
}

async function runJson(argv: string[]) {
  const c = capture();
  assert.equal(await generateCommand.run([...argv, '--json'], c.io), 0, c.err.join('\n'));
  return JSON.parse(c.out[0]);
}

test('generate --json greedily from BOS (no prompt) reproduces the start of the recorded greedy sample', async () => {
  const sample: string = JSON.parse(readFileSync(path.join(STORIES, 'meta.json'), 'utf8')).greedy_sample;
  const r = await runJson([STORIES_GGUF, '--tokens', '20']);
  assert.equal(r.tokens.length, 20);
  assert.deepEqual(r.promptTokens, [1]);
  assert.ok(sample.replace(/^ /, '').startsWith(r.text), r.text);
  for (const k of ['text', 'completion', 'tokens', 'stop', 'msPerToken', 'tokensPerSecond']) assert.ok(k in r, k);
});

test('generate: sampling is repeatable with --seed, and differs with another seed', async () => {
  const args = [path.join(STORIES, 'stories260K.safetensors'), '--prompt', 'The dog', '--tokens', '30', '--temperature', '1.0', '--top-k', '50'];
  const a = await runJson([...args, '--seed', '11']);
  const b = await runJson([...args, '--seed', '11']);
  const c = await runJson([...args, '--seed', '12']);
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  assert.ok(a.text.startsWith('The dog'));
});

test('generate: plain output prints the text; --rope-order is checked; a char model needs a prompt', async () => {
  const c = capture();
  assert.equal(await generateCommand.run([path.join(PICO, 'pico.onnx'), '--prompt', 'KING:\n', '--tokens', '30'], c.io), 0);
  assert.ok(c.out[0].startsWith('KING:\n'));
  assert.equal(c.out[0].length, 'KING:\n'.length + 30);
  await assert.rejects(generateCommand.run([STORIES_GGUF, '--rope-order', 'sideways'], capture().io), UsageError);
  await assert.rejects(generateCommand.run([STORIES_GGUF, '--temperature', '-1'], capture().io), UsageError);
  const e = capture();
  assert.equal(await generateCommand.run([path.join(PICO, 'pico.onnx')], e.io), 1);
  assert.match(e.err.join('\n'), /give a prompt/);
});
