import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { compressCommand } from '../../src/cli/commands/compress';
import { UsageError } from '../../src/cli/args';
import { open } from '../../src/core/checkpoint';
import { PICO, tempDir } from '../core/surgery/surgeryTestUtil';
import { capture } from './surgeryCliUtil';

test('compress --method mpo --chi 8 --json: per-tensor params and errors, totals, a readable output', async () => {
  const { dir, cleanup } = await tempDir('cli-compress-');
  try {
    const out = path.join(dir, 'pico_mpo8.safetensors');
    const c = capture();
    assert.equal(await compressCommand.run([PICO, '--out', out, '--method', 'mpo', '--chi', '8', '--json'], c.io), 0);
    assert.equal(c.out.length, 1);
    const j = JSON.parse(c.out[0]);
    assert.equal(j.tensors.length, 16);
    for (const t of j.tensors) {
      for (const k of ['name', 'params', 'denseParams', 'relativeError']) assert.ok(k in t, k);
      assert.ok(t.params < t.denseParams && t.relativeError > 0 && t.relativeError < 1);
    }
    assert.deepEqual(Object.keys(j.totals).sort(), ['originalParams', 'out', 'ratio', 'totalParams']);
    assert.equal(j.totals.out, out);
    assert.equal(j.totals.originalParams, 818048);
    assert.ok(Math.abs(j.totals.ratio - j.totals.totalParams / j.totals.originalParams) < 1e-15);
    const [ck, orig] = [await open(out), await open(PICO)];
    try {
      assert.deepEqual(ck.tensors.map((t) => [t.name, t.shape]), orig.tensors.map((t) => [t.name, t.shape]), 'dense output: same names and shapes');
    } finally { await ck.close(); await orig.close(); }

    const t = capture();
    assert.equal(await compressCommand.run([PICO, '--out', path.join(dir, 'b.safetensors'), '--method', 'svd', '--ratio', '0.3', '--factorized'], t.io), 0);
    const text = t.out.join('\n');
    assert.match(text, /h\.3\.mlp\.c_proj\.weight\s+svd rank=\d+/);
    assert.match(text, /budget: target \d{3},\d{3}, allocated/);
    assert.match(text, /input sha256 [0-9a-f]{64}/);
  } finally { await cleanup(); }
});

test('compress: usage errors name the flag', async () => {
  const c = capture();
  await assert.rejects(compressCommand.run([PICO, '--out', '/tmp/x.safetensors', '--method', 'mpo', '--chi', '8', '--rank', '4'], c.io), (e: Error) => e instanceof UsageError && /exactly one of --chi, --rank, --error, --ratio \(got --chi, --rank\)/.test(e.message));
  await assert.rejects(compressCommand.run([PICO, '--out', '/tmp/x.safetensors', '--method', 'svd', '--chi', '8'], c.io), /--chi is for --method mpo/);
  await assert.rejects(compressCommand.run([PICO, '--method', 'svd', '--rank', '8'], c.io), /--out <file> is required/);
  await assert.rejects(compressCommand.run([PICO, '--out', '/tmp/x.safetensors', '--method', 'mpo', '--chi', '8', '--tensors', 'nothing.*'], c.io), (e: Error) => e instanceof UsageError && /recipe\.compress\[0\]\.tensors: "nothing\.\*" matches no tensor/.test(e.message));
  await assert.rejects(compressCommand.run([PICO, '--out', '/tmp/x.safetensors', '--method', 'svd', '--ratio', '0.01', '--floor', '0.5'], c.io), /recipe\.budget: cannot meet/);
});
