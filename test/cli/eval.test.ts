import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { evalCommand } from '../../src/cli/commands/eval';
import { UsageError, type CliIO } from '../../src/cli/args';
import { CheckpointError } from '../../src/core/checkpoint';

const SHARED = path.resolve(__dirname, '../../../shared');
const PICO = path.join(SHARED, 'fixtures/pico');
const STORIES_GGUF = path.join(SHARED, 'fixtures/real/stories260K.gguf');

function capture(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), progress: (t) => err.push(t), signal: new AbortController().signal }, out, err };
}

async function runJson(argv: string[]) {
  const c = capture();
  const code = await evalCommand.run([...argv, '--json'], c.io);
  assert.equal(code, 0, c.err.join('\n'));
  assert.equal(c.out.length, 1, 'stdout is one JSON document');
  return JSON.parse(c.out[0]);
}

test('eval --json --against the same model: the documented keys, KL 0, top-1 agreement 1, side-by-side samples', async () => {
  const r = await runJson([path.join(PICO, 'pico.safetensors'), '--against', path.join(PICO, 'pico.onnx'), '--tokens', '300', '--sample-tokens', '20']);
  for (const k of ['perplexity', 'accuracy', 'klDivergence', 'top1Agreement', 'tokensPerSecond', 'samples']) assert.ok(k in r, `missing ${k}`);
  assert.equal(r.tokens, 300);
  assert.equal(r.window, 128);
  assert.ok(r.klDivergence >= 0 && r.klDivergence < 1e-9, `our graph vs the exported ONNX: KL ${r.klDivergence}`);
  assert.equal(r.top1Agreement, 1);
  assert.ok(Math.abs(r.perplexity - r.againstMetrics.perplexity) < 1e-4 * r.perplexity);
  assert.ok(r.tokensPerSecond > 0);
  assert.equal(r.text.source, 'bundled Shakespeare excerpt');
  assert.ok(r.samples.length >= 1);
  for (const s of r.samples) {
    assert.equal(s.model, s.against, 'identical models generate identical greedy text');
    assert.ok(s.model.startsWith(s.prompt));
  }
});

test('eval on a text file (stories260K GGUF): perplexity over the file, KL null without --against', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-cli-'));
  try {
    const text = path.join(dir, 'story.txt');
    await fsp.writeFile(text, 'Once upon a time, there was a little dog named Max. Max liked to run in the park. One day, Max saw a big ball.');
    const r = await runJson([STORIES_GGUF, '--text', text, '--sample-tokens', '0']);
    assert.equal(r.text.source, text);
    assert.equal(r.klDivergence, null);
    assert.equal(r.top1Agreement, null);
    assert.deepEqual(r.samples, []);
    assert.equal(r.tokens, r.text.tokens - 1);
    assert.ok(r.perplexity > 1 && r.perplexity < 20, `a TinyStories sentence should be easy for the model: ${r.perplexity}`);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('eval: plain output is a readable table; bad input gives usage / checkpoint errors', async () => {
  const c = capture();
  assert.equal(await evalCommand.run([path.join(PICO, 'pico_q8_0.gguf'), '--against', path.join(PICO, 'pico.safetensors'), '--tokens', '200', '--sample-tokens', '8'], c.io), 0);
  const text = c.out.join('\n');
  assert.match(text, /perplexity/);
  assert.match(text, /KL\(against \|\| model\)/);
  assert.match(text, /top-1 agreement/);
  await assert.rejects(evalCommand.run([], capture().io), UsageError);
  await assert.rejects(evalCommand.run([STORIES_GGUF, '--window', '8', '--stride', '9'], capture().io), UsageError);
  await assert.rejects(evalCommand.run([STORIES_GGUF, '--text', '/nonexistent/x.txt'], capture().io), CheckpointError);
  await assert.rejects(evalCommand.run([STORIES_GGUF, '--against', path.join(PICO, 'pico.onnx'), '--tokens', '10'], capture().io), (e: unknown) => e instanceof CheckpointError && /vocabulary has 512 tokens/.test(e.message));
});

test('eval: a character a char-level model cannot encode is reported (exit 1), not a crash', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-cli-'));
  try {
    const text = path.join(dir, 'x.txt');
    await fsp.writeFile(text, 'Ça va?');
    const c = capture();
    assert.equal(await evalCommand.run([path.join(PICO, 'pico.onnx'), '--text', text], c.io), 1);
    assert.match(c.err.join('\n'), /"Ç".*not in the 65-character vocabulary/);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});
