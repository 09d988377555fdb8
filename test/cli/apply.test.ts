import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { applyCommand } from '../../src/cli/commands/apply';
import { UsageError } from '../../src/cli/args';
import { open } from '../../src/core/checkpoint';
import { PICO, tempDir } from '../core/surgery/surgeryTestUtil';
import { capture } from './surgeryCliUtil';

test('apply <recipe.json>: paths relative to the recipe, a mixed recipe, the sidecar next to the output', async () => {
  const { dir, cleanup } = await tempDir('cli-apply-');
  try {
    await fsp.copyFile(PICO, path.join(dir, 'model.safetensors'));
    const recipe = {
      version: 1,
      input: 'model.safetensors',
      output: { path: 'out/model_edit.safetensors', dtype: 'F16' },
      inject: [{ tensor: 'h.0.attn.c_proj.weight', strength: 10, seed: 2 }],
      compress: [{ tensors: ['h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.weight'], method: 'mpo', chi: 16 }, { tensors: 'h.2.attn.c_attn.weight', method: 'svd', rank: 32 }],
    };
    await fsp.mkdir(path.join(dir, 'out'));
    const rf = path.join(dir, 'recipe.json');
    await fsp.writeFile(rf, JSON.stringify(recipe));
    const c = capture();
    assert.equal(await applyCommand.run([rf, '--json'], c.io), 0);
    const j = JSON.parse(c.out[0]);
    const out = path.join(dir, 'out/model_edit.safetensors');
    assert.equal(j.totals.out, out);
    assert.deepEqual(j.tensors.map((t: { name: string }) => t.name), ['h.0.attn.c_proj.weight', 'h.1.mlp.c_fc.weight', 'h.1.mlp.c_proj.weight', 'h.2.attn.c_attn.weight']);
    assert.equal(j.tensors[3].params, 32 * (384 + 128));
    const side = JSON.parse(await fsp.readFile(`${out}.recipe.json`, 'utf8'));
    assert.equal(side.recipe.input, path.join(dir, 'model.safetensors'));
    const ck = await open(out);
    try {
      assert.equal(ck.get('h.1.mlp.c_fc.weight')!.dtype, 'F16');
      assert.equal(ck.get('ln_f.weight')!.dtype, 'F16', 'dtype applies to every float tensor of a safetensors output');
    } finally { await ck.close(); }
  } finally { await cleanup(); }
});

test('apply: an invalid recipe is a usage error with its JSON path', async () => {
  const { dir, cleanup } = await tempDir('cli-apply-');
  try {
    const rf = path.join(dir, 'bad.json');
    await fsp.writeFile(rf, JSON.stringify({ version: 1, input: PICO, output: { path: 'o.safetensors' }, compress: [{ method: 'mpo', chi: 4 }, { method: 'mpo', chi: -3 }] }));
    await assert.rejects(applyCommand.run([rf], capture().io), (e: Error) => e instanceof UsageError && e.message === `${rf}: recipe.compress[1].chi: expected a positive integer, got -3`);
    await fsp.writeFile(rf, JSON.stringify({ version: 1, input: PICO, output: { path: PICO } }));
    await assert.rejects(applyCommand.run([rf], capture().io), /pico\.safetensors/);
  } finally { await cleanup(); }
});
