// Large-file behaviour on sparse files: only headers (and a few bytes) are ever written, the rest is
// a hole, so these cost no disk space and run in milliseconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { openSafetensors } from '../../../src/core/checkpoint/safetensors';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { frameHeader, tempDir } from './safetensorsTestUtil';

let dir: string;
before(async () => { dir = await tempDir('st-large'); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

const GiB = 2 ** 30;

// First in this file so the process's peak RSS is still close to its current RSS: reading the
// 100 MB header would raise the peak by about 100 MB.
test('an actual ~100 MB header fails on the length check before anything is read (bounded memory)', async () => {
  const file = path.join(dir, 'huge-header.safetensors');
  const claimed = 100_000_008;
  const fh = await fsp.open(file, 'w');
  const prefix = new Uint8Array(9);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(claimed), true);
  prefix[8] = 0x7b; // '{'
  await fh.write(prefix, 0, 9, 0);
  await fh.truncate(8 + claimed + 1024);
  await fh.close();

  const peakBefore = process.resourceUsage().maxRSS; // KiB
  const t0 = performance.now();
  const err = await openSafetensors(file).then(() => undefined, (e: unknown) => e);
  const ms = performance.now() - t0;
  const grownMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024;
  assert.ok(grownMiB < 40, `peak RSS grew by ${grownMiB.toFixed(1)} MiB: the header was read`);
  assert.ok(err instanceof CheckpointError, `expected CheckpointError, got ${err}`);
  assert.equal(err.offset, 0);
  assert.match(err.message, /header length 100,000,008 exceeds the limit of 100,000,000 bytes/);
  // Generous bound (shared 2-core machine); reading 100 MB would still fit, the RSS check is the real one.
  assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
});

test('a 2.5 GiB tensor at a >4 GiB offset in a ~6.5 GiB sparse file is indexed exactly', async () => {
  const file = path.join(dir, 'sparse.safetensors');
  const bigElems = (2.5 * GiB) / 4; // F32
  const bigBegin = 4 * GiB + 64;
  const bigEnd = bigBegin + 2.5 * GiB;
  const header = {
    __metadata__: { note: 'sparse' },
    small: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    big: { dtype: 'F32', shape: [bigElems], data_offsets: [bigBegin, bigEnd] },
    tail: { dtype: 'F32', shape: [2, 2], data_offsets: [bigEnd, bigEnd + 16] },
  };
  const framed = frameHeader(JSON.stringify(header));
  const dataStart = framed.length;
  const fileSize = dataStart + bigEnd + 16;
  const fh = await fsp.open(file, 'w');
  try {
    await fh.write(framed, 0, framed.length, 0);
    // A few real bytes beyond 6 GiB, to prove positional reads past 2^32 land where they should.
    const tailValues = new Float32Array([1.5, -2, 3.25, 1e-3]);
    await fh.write(new Uint8Array(tailValues.buffer), 0, 16, dataStart + bigEnd);
    await fh.truncate(fileSize);
  } finally {
    await fh.close();
  }
  const c = await openSafetensors(file);
  try {
    assert.equal(c.sizeOnDisk, fileSize);
    assert.ok(c.sizeOnDisk > 6 * GiB);
    const big = c.get('big')!;
    assert.equal(big.byteOffset, dataStart + bigBegin);
    assert.equal(big.byteLength, 2.5 * GiB);
    assert.equal(big.params, bigElems);
    assert.deepEqual(big.shape, [bigElems]);
    const tail = c.get('tail')!;
    assert.equal(tail.byteOffset, dataStart + bigEnd);
    assert.deepEqual(Array.from(await tail.read()), [1.5, -2, 3.25, Math.fround(1e-3)]);
    assert.deepEqual(Array.from(await c.get('small')!.read()), [0, 0, 0, 0]);
    // read() of `big` is deliberately not attempted: it would allocate 2.5 GiB.
  } finally {
    await c.close();
  }

  // The same header one byte short of the data: the big tensor's end is checked against the file.
  await fsp.truncate(file, dataStart + bigEnd + 15);
  await assert.rejects(openSafetensors(file), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.equal(e.tensor, 'tail');
    assert.equal(e.offset, dataStart + bigEnd);
    assert.match(e.message, new RegExp(`data ends at byte ${(dataStart + bigEnd + 16).toLocaleString('en-US')}`));
    return true;
  });
});
