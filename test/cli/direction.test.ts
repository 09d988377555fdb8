import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { directionCommand } from '../../src/cli/commands/direction';
import { UsageError } from '../../src/cli/args';
import { loadDirection } from '../../src/core/surgery/ablate';
import { capture } from './surgeryCliUtil';

const SHARED = path.resolve(__dirname, '../../../shared');
const PROMPTS = path.resolve(__dirname, '../../media/sample/prompts');

test('direction --json on stories260K: per-layer norms and separations, default = largest separation, the .npy reads back as a unit vector', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-cli-dir-'));
  try {
    const out = path.join(dir, 'r.npy');
    const c = capture();
    const code = await directionCommand.run([path.join(SHARED, 'fixtures/real/stories260K.gguf'), '--a', path.join(PROMPTS, 'a.txt'), '--b', path.join(PROMPTS, 'b.txt'), '--out', out, '--json'], c.io);
    assert.equal(code, 0, c.err.join('\n'));
    const r = JSON.parse(c.out.join('\n'));
    assert.equal(r.dim, 64);
    assert.equal(r.layers.length, 6);
    for (const l of r.layers) for (const k of ['layer', 'norm', 'separation']) assert.equal(typeof l[k], 'number');
    const best = r.layers.reduce((x: { separation: number }, y: { separation: number }) => (y.separation > x.separation ? y : x));
    assert.equal(r.chosenLayer, best.layer);
    assert.equal(r.out, out);
    const back = await loadDirection(out);
    assert.equal(back.r.length, 64);
    assert.ok(Math.abs(back.norm - 1) < 1e-6);

    const c2 = capture();
    assert.equal(await directionCommand.run([path.join(SHARED, 'fixtures/real/stories260K.gguf'), '--a', path.join(PROMPTS, 'a.txt'), '--b', path.join(PROMPTS, 'b.txt'), '--out', out, '--layer', '2', '--raw', '--json'], c2.io), 0);
    const r2 = JSON.parse(c2.out.join('\n'));
    assert.equal(r2.chosenLayer, 2);
    assert.ok(Math.abs((await loadDirection(out)).norm - r2.layers[2].norm) < 1e-5, 'raw: the saved vector has norm ||r_2||');
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('direction on PicoGPT (GPT-2 layout, char vocabulary): speaker-name lines vs lowercase lines', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-cli-dir-pico-'));
  try {
    const a = path.join(dir, 'a.txt'), b = path.join(dir, 'b.txt');
    await fsp.writeFile(a, ['ROMEO', 'JULIET', 'KING HENRY', 'MENENIUS', 'BIANCA', 'GLOUCESTER'].join('\n'));
    await fsp.writeFile(b, ['and then he', 'what say you', 'my lord, i', 'the king is', 'good morrow', 'so shall we'].join('\n'));
    const c = capture();
    assert.equal(await directionCommand.run([path.join(SHARED, 'fixtures/pico/pico.safetensors'), '--a', a, '--b', b, '--out', path.join(dir, 'r.npy'), '--json'], c.io), 0, c.err.join('\n'));
    const r = JSON.parse(c.out.join('\n'));
    assert.equal(r.dim, 128);
    assert.equal(r.layers.length, 5);
    assert.ok(r.layers[r.chosenLayer].separation > 1, `upper-case names vs lowercase text separate clearly (${r.layers[r.chosenLayer].separation})`);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('direction: missing --a/--out and an out-of-range --layer are usage errors', async () => {
  const m = path.join(SHARED, 'fixtures/real/stories260K.gguf');
  await assert.rejects(directionCommand.run([m, '--out', '/tmp/x.npy'], capture().io), UsageError);
  await assert.rejects(directionCommand.run([m, '--a', path.join(PROMPTS, 'a.txt'), '--b', path.join(PROMPTS, 'b.txt')], capture().io), UsageError);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-cli-dir-bad-'));
  try {
    await assert.rejects(directionCommand.run([m, '--a', path.join(PROMPTS, 'a.txt'), '--b', path.join(PROMPTS, 'b.txt'), '--out', path.join(dir, 'r.npy'), '--layer', '9'], capture().io), UsageError);
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});
