import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ablateCommand } from '../../src/cli/commands/ablate';
import { UsageError } from '../../src/cli/args';
import { CheckpointError, open } from '../../src/core/checkpoint';
import { writeNpy } from '../../src/core/checkpoint/npy';
import { directionComponent, normalise } from '../../src/core/surgery/ablate';
import { PICO, STORIES_ST, tempDir, norm, seededVector } from '../core/surgery/surgeryTestUtil';
import { capture } from './surgeryCliUtil';

test('ablate --direction: lists the residual writers it used; --tensors narrows them', async () => {
  const { dir, cleanup } = await tempDir('cli-ablate-');
  try {
    const rf = path.join(dir, 'r.npy');
    const r = seededVector(64, 3);
    await writeNpy(rf, r, [64]);
    const out = path.join(dir, 'abl.safetensors');
    const c = capture();
    assert.equal(await ablateCommand.run([STORIES_ST, '--out', out, '--direction', rf, '--json'], c.io), 0);
    const j = JSON.parse(c.out[0]);
    assert.equal(j.residualWriters.length, 11);
    assert.equal(j.tensors.length, 11);
    const ru = normalise(r);
    const ck = await open(out);
    try {
      for (const w of j.residualWriters) {
        const t = ck.get(w.name)!;
        const v = await t.read();
        assert.ok(directionComponent(v, t.shape[0], t.shape[1], ru, w.residualAxis) < 1e-5 * norm(v), w.name);
      }
    } finally { await ck.close(); }

    const n = capture();
    assert.equal(await ablateCommand.run([STORIES_ST, '--out', path.join(dir, 'abl2.safetensors'), '--direction', rf, '--tensors', '*down_proj*', '--json'], n.io), 0);
    assert.equal(JSON.parse(n.out[0]).tensors.length, 5);
  } finally { await cleanup(); }
});

test('ablate: a direction of the wrong length names the model d_model and the direction length', async () => {
  const { dir, cleanup } = await tempDir('cli-ablate-');
  try {
    const rf = path.join(dir, 'r64.npy');
    await writeNpy(rf, seededVector(64, 1), [64]);
    await assert.rejects(ablateCommand.run([PICO, '--out', path.join(dir, 'x.safetensors'), '--direction', rf], capture().io),
      (e: Error) => e instanceof CheckpointError && /direction .* has length 64 but the model's d_model is 128/.test(e.message));
    await assert.rejects(ablateCommand.run([PICO, '--out', path.join(dir, 'x.safetensors'), '--direction', rf, '--writers', 'h.0.mlp.c_proj.weight'], capture().io),
      (e: Error) => e instanceof CheckpointError && /h\.0\.mlp\.c_proj\.weight: shape \[128, 512\] has no dimension equal to the direction's d_model = 64/.test(e.message));
    await assert.rejects(ablateCommand.run([PICO, '--out', path.join(dir, 'x.safetensors')], capture().io), (e: Error) => e instanceof UsageError && /exactly one of --direction FILE, --remove-top K/.test(e.message));
  } finally { await cleanup(); }
});

test('ablate --list-writers: the detected writers with their residual side, for the user to confirm', async () => {
  const c = capture();
  assert.equal(await ablateCommand.run([PICO, '--list-writers'], c.io), 0);
  const text = c.out.join('\n');
  assert.match(text, /^gpt2 \(hf names\), d_model 128, linear layout: 18 residual-stream writers/);
  assert.match(text, /h\.3\.mlp\.c_proj\.weight  \[128, 512\]  mlp-out, residual on axis 0/);
  assert.match(text, /wte\.weight  \[65, 128\]  embedding, residual on axis 1/);
  const j = capture();
  assert.equal(await ablateCommand.run([PICO, '--list-writers', '--json'], j.io), 0);
  assert.equal(JSON.parse(j.out[0]).writers.length, 18);
});
