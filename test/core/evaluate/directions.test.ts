import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { open } from '../../../src/core/checkpoint';
import { loadModel } from '../../../src/core/evaluate';
import { captureResiduals, readPromptFile } from '../../../src/core/evaluate/activations';
import { directionsBetween, writeDirection } from '../../../src/core/evaluate/directions';
import { ablateDirection, loadDirection, residualWriters } from '../../../src/core/surgery/ablate';
import { STORIES_GGUF } from './fixtures';

const PROMPTS = path.resolve(__dirname, '../../../media/sample/prompts');

test('directions on stories260K: r_l = mean_A - mean_B of the captures, Cohen-d separation, best layer, .npy round trip, ablation removes r from the stream', async () => {
  const a = await readPromptFile(path.join(PROMPTS, 'a.txt'));
  const b = await readPromptFile(path.join(PROMPTS, 'b.txt'));
  assert.equal(a.length, 20);
  assert.equal(b.length, 20);
  const model = await loadModel(STORIES_GGUF, { captureResiduals: true });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-dir-'));
  let ca, cb, set;
  try {
    ca = await captureResiduals(model, a);
    cb = await captureResiduals(model, b);
    set = directionsBetween(ca, cb);
  } finally { await model.close(); }
  try {
    const d = set.dModel;
    assert.equal(set.layers.length, 6);
    for (let l = 0; l < set.layers.length; l++) {
      // Independent: the means straight from the captured rows.
      let sq = 0;
      for (let j = 0; j < d; j++) {
        let ma = 0, mb = 0;
        for (let p = 0; p < a.length; p++) ma += ca.activations[l][p * d + j];
        for (let p = 0; p < b.length; p++) mb += cb.activations[l][p * d + j];
        const rj = ma / a.length - mb / b.length;
        assert.ok(Math.abs(set.directions[l][j] - rj) < 1e-6, `r_${l}[${j}]`);
        sq += rj * rj;
      }
      assert.ok(Math.abs(set.layers[l].norm - Math.sqrt(sq)) < 1e-6);
      // mean_A p - mean_B p = ||r|| (projection on the unit direction).
      assert.ok(Math.abs(set.layers[l].meanProjectionA - set.layers[l].meanProjectionB - set.layers[l].norm) < 1e-6 * (1 + set.layers[l].norm));
      assert.ok(set.layers[l].separation > 0 && Number.isFinite(set.layers[l].separation));
      assert.ok(Math.abs(set.layers[l].separation - set.layers[l].norm / set.layers[l].pooledStd) < 1e-9 * set.layers[l].separation);
    }
    const best = set.layers.reduce((x, y) => (y.separation > x.separation ? y : x));
    assert.equal(set.bestLayer, best.layer);

    const out = path.join(dir, 'r.npy');
    await writeDirection(out, set.directions[set.bestLayer]);
    const back = await loadDirection(out);
    assert.ok(Math.abs(back.norm - 1) < 1e-6, 'the unit direction is saved');
    for (let j = 0; j < d; j++) assert.ok(Math.abs(back.r[j] - set.directions[set.bestLayer][j] / set.layers[set.bestLayer].norm) < 1e-6);
    const raw = path.join(dir, 'raw.npy');
    await writeDirection(raw, set.directions[set.bestLayer], 'raw');
    assert.ok(Math.abs((await loadDirection(raw)).norm - set.layers[set.bestLayer].norm) < 1e-5);

    // Weight orthogonalisation (surgery's ablateDirection on every residual writer): afterwards no
    // writer has a component along r, so neither has the stream at any later layer.
    const ckpt = await open(STORIES_GGUF);
    const overrides = new Map<string, Float32Array>();
    try {
      const writers = residualWriters(ckpt);
      assert.ok(writers.writers.length >= 11, 'embedding + 5 attention outputs + 5 FFN downs');
      for (const w of writers.writers) {
        const t = ckpt.get(w.name)!;
        const data = await t.read();
        ablateDirection(data, t.shape[0], t.shape.length === 2 ? t.shape[1] : 1, back.r, w.residualAxis, w.name);
        overrides.set(w.name, data);
      }
    } finally { await ckpt.close(); }
    const ablated = await loadModel(STORIES_GGUF, { captureResiduals: true, overrides });
    let after;
    try { after = await captureResiduals(ablated, a); } finally { await ablated.close(); }
    const meanAbsProj = (acts: Float32Array) => {
      let s = 0;
      for (let p = 0; p < a.length; p++) { let q = 0; for (let j = 0; j < d; j++) q += acts[p * d + j] * back.r[j]; s += Math.abs(q); }
      return s / a.length;
    };
    for (let l = set.bestLayer; l < set.layers.length; l++) {
      const before = meanAbsProj(ca.activations[l]), now = meanAbsProj(after.activations[l]);
      assert.ok(now < 1e-3 * before, `layer ${l}: mean |x . r| ${before.toExponential(3)} -> ${now.toExponential(3)}`);
    }
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});
