import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { injectCommand } from '../../src/cli/commands/inject';
import { ablateCommand } from '../../src/cli/commands/ablate';
import { open } from '../../src/core/checkpoint';
import { PICO, tempDir, norm } from '../core/surgery/surgeryTestUtil';
import { capture } from './surgeryCliUtil';

test('inject then ablate --remove-top 1 through the CLI: the virus is found and cut out again', async () => {
  const { dir, cleanup } = await tempDir('cli-inject-');
  try {
    const name = 'h.2.mlp.c_proj.weight';
    const infected = path.join(dir, 'infected.safetensors');
    const restored = path.join(dir, 'restored.safetensors');
    const a = capture();
    assert.equal(await injectCommand.run([PICO, '--out', infected, '--tensor', name, '--strength', '100', '--seed', '1', '--json'], a.io), 0);
    const ja = JSON.parse(a.out[0]);
    assert.deepEqual(ja.tensors.map((t: { name: string }) => t.name), [name]);
    assert.deepEqual(ja.tensors[0].operations, ['inject s=100']);
    const b = capture();
    assert.equal(await ablateCommand.run([infected, '--out', restored, '--remove-top', '1', '--tensors', name, '--json'], b.io), 0);
    const jb = JSON.parse(b.out[0]);
    assert.ok(Math.abs(jb.tensors[0].removedSingularValues[0] - 100) < 5, `the removed value ${jb.tensors[0].removedSingularValues[0]} is the virus`);
    const read = async (f: string) => { const c = await open(f); try { return await c.get(name)!.read(); } finally { await c.close(); } };
    const [w, w1, w2] = [await read(PICO), await read(infected), await read(restored)];
    const diff = (x: Float32Array, y: Float32Array) => norm(x.map((v, i) => v - y[i]));
    assert.ok(Math.abs(diff(w1, w) - 100) < 1e-3, '||s u v^T||_F = s');
    assert.ok(diff(w2, w) < 0.2 * norm(w), `restored within 20% of ||W|| (${diff(w2, w) / norm(w)})`);
    await assert.rejects(injectCommand.run([PICO, '--out', infected, '--tensor', 'ln_f.weight', '--strength', '1'], capture().io), /recipe\.inject\[0\]\.tensor: ln_f\.weight has shape \[128\]; injection needs a matrix/);
  } finally { await cleanup(); }
});
