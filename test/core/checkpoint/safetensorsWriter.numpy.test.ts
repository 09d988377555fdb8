/**
 * An independent parser reads what our safetensors writer wrote: Debian's /usr/bin/python3 with numpy
 * parses the 8-byte length + header JSON itself and decodes every tensor with np.frombuffer (BF16 by
 * shifting the 16 bits into the top of a float32). Skipped with a message when numpy is unavailable.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { writeSafetensors, sourcesFromCheckpoint, type SafetensorsFloatDtype } from '../../../src/core/checkpoint/safetensorsWriter';
import { open } from '../../../src/core/checkpoint/open';
import { floatToHalf, halfToFloat, floatToBf16, bf16ToFloat } from '../../../src/core/checkpoint/dtype';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `${PY} with numpy is not available (${(probe.error?.message ?? probe.stderr ?? '').trim().split('\n').pop()}); numpy cross-check skipped`;

const PICO = path.resolve(__dirname, '../../../../shared/fixtures/pico/pico.safetensors');

let dir: string;
before(async () => { dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-stwriter-np-')); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

// Prints, per tensor: dtype, shape, and the sha256 of the values as little-endian float32; plus the
// metadata and the layout facts numpy's side sees.
const READ = `
import json, sys, hashlib, numpy as np
buf = open(sys.argv[1], 'rb').read()
n = int.from_bytes(buf[:8], 'little')
header = json.loads(buf[8:8 + n].decode('utf-8'))
data = buf[8 + n:]
meta = header.pop('__metadata__', {})
out = {'headerLength': n, 'dataLength': len(data), 'metadata': meta, 'tensors': {}}
for name, e in header.items():
    b, end = e['data_offsets']
    raw = data[b:end]
    if e['dtype'] == 'F32':
        x = np.frombuffer(raw, dtype='<f4')
    elif e['dtype'] == 'F16':
        x = np.frombuffer(raw, dtype='<f2').astype('<f4')
    elif e['dtype'] == 'BF16':
        x = (np.frombuffer(raw, dtype='<u2').astype('<u4') << 16).view('<f4')
    else:
        raise SystemExit('unexpected dtype ' + e['dtype'])
    x = x.reshape(e['shape'])
    out['tensors'][name] = {'dtype': e['dtype'], 'shape': list(x.shape), 'sha256': hashlib.sha256(x.astype('<f4').tobytes()).hexdigest(), 'end': end}
print(json.dumps(out))
`;

function sha(x: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).digest('hex');
}

test('numpy parses our F32, F16 and BF16 files and decodes the same values', { skip }, async () => {
  const ck = await open(PICO);
  try {
    for (const dtype of ['F32', 'F16', 'BF16'] as SafetensorsFloatDtype[]) {
      const target = path.join(dir, `pico_${dtype}.safetensors`);
      const metadata = { recipe: '{"compress": {"chi": 8}}', sha256: 'abc' };
      await writeSafetensors(target, sourcesFromCheckpoint(ck, { dtype }), { inputs: ck.files, metadata });
      const r = spawnSync(PY, ['-c', READ, target], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      assert.equal(r.status, 0, `python failed: ${r.stderr}`);
      const theirs = JSON.parse(r.stdout) as { headerLength: number; dataLength: number; metadata: Record<string, string>; tensors: Record<string, { dtype: string; shape: number[]; sha256: string; end: number }> };
      assert.deepEqual(theirs.metadata, { format: 'pt', ...metadata });
      assert.equal(theirs.headerLength % 8, 0);
      assert.deepEqual(Object.keys(theirs.tensors).sort(), ck.tensors.map((t) => t.name).sort());
      assert.equal(Math.max(...Object.values(theirs.tensors).map((t) => t.end)), theirs.dataLength, 'data region exactly used');
      for (const t of ck.tensors) {
        const src = await t.read();
        // What the stored values must be: the source rounded to the dtype (nearest even).
        const expect = dtype === 'F32' ? src
          : dtype === 'F16' ? src.map((v) => halfToFloat(floatToHalf(v)))
          : src.map((v) => bf16ToFloat(floatToBf16(v)));
        const e = theirs.tensors[t.name];
        assert.equal(e.dtype, dtype);
        assert.deepEqual(e.shape, t.shape, `${t.name} shape`);
        assert.equal(e.sha256, sha(expect), `${dtype} ${t.name}: numpy's values equal the expected values`);
      }
    }
  } finally {
    await ck.close();
  }
});
