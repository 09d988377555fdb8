import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import fc from 'fast-check';
import { openSafetensors, openSafetensorsIndex } from '../../../src/core/checkpoint/safetensors';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { FIXTURES, buildSafetensors, frameHeader, splitSafetensors, tempDir } from './safetensorsTestUtil';
import { readAllFailure, type Readable } from '../../support/checkpointErrors';

const STORIES = path.join(FIXTURES, 'stories260k', 'stories260K.safetensors');
let dir: string;
let n = 0;
before(async () => { dir = await tempDir('st-errors'); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function write(bytes: Uint8Array, name = `f${n++}.safetensors`): Promise<string> {
  const p = path.join(dir, name);
  await fsp.writeFile(p, bytes);
  return p;
}

/** A file whose header is `header` (serialised as given) followed by `dataBytes` zero bytes. */
function withHeader(header: unknown, dataBytes: number): Uint8Array {
  const framed = frameHeader(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(framed.length + dataBytes);
  out.set(framed);
  return out;
}

/** Opens and reads every tensor; returns the error, which must be a CheckpointError naming the file. */
async function failure(file: string, open: (p: string) => Promise<Readable> = openSafetensors): Promise<CheckpointError> {
  const e = await readAllFailure(file, open);
  assert.equal(e.file, file);
  return e;
}

test('truncated file: shorter than the length prefix, and cut inside the data', async () => {
  const whole = new Uint8Array(await fsp.readFile(STORIES));
  const e1 = await failure(await write(whole.subarray(0, 5)));
  assert.match(e1.message, /truncated: file has 5 bytes/);
  assert.equal(e1.offset, 0);

  const { headerLength, header } = await splitSafetensors(STORIES);
  const cut = 8 + headerLength + 1000;
  const e2 = await failure(await write(whole.subarray(0, cut)));
  // The first tensor (in header order) whose data runs past the cut is named, with its absolute offset.
  const first = Object.entries(header).find(([k, v]) => k !== '__metadata__' && v.data_offsets[1] > 1000)!;
  assert.equal(e2.tensor, first[0]);
  assert.equal(e2.offset, 8 + headerLength + first[1].data_offsets[0]);
  assert.match(e2.message, new RegExp(`file has ${cut.toLocaleString('en-US')}`));
});

test('header length beyond the file, and a truncated header', async () => {
  const whole = new Uint8Array(await fsp.readFile(STORIES));
  const bad = whole.slice(0, 4096);
  new DataView(bad.buffer).setBigUint64(0, 5000n, true);
  const e = await failure(await write(bad));
  assert.match(e.message, /header length 5,000 runs past the end of the file \(file has 4,096 bytes/);
  assert.equal(e.offset, 0);
  // The real header cut short: same check.
  const e2 = await failure(await write(whole.subarray(0, 2000)));
  assert.match(e2.message, /runs past the end of the file/);
});

test('a 100 MB header claim is refused by the limit, naming the length and the limit', async () => {
  const bad = new Uint8Array(64);
  new DataView(bad.buffer).setBigUint64(0, 100_000_001n, true);
  bad[8] = 0x7b;
  const e = await failure(await write(bad));
  assert.match(e.message, /header length 100,000,001 exceeds the limit of 100,000,000 bytes/);
  assert.equal(e.offset, 0);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
  const e2 = await failure(await write(huge));
  assert.match(e2.message, /exceeds the limit/);
});

test('invalid JSON, invalid UTF-8, non-object header', async () => {
  const { header } = await splitSafetensors(STORIES);
  const text = JSON.stringify(header);
  // Break the first ':' after a tensor key; the error points at that byte.
  const at = text.indexOf('":{"dtype"') + 1;
  const broken = text.slice(0, at) + '#' + text.slice(at + 1);
  const e = await failure(await write(withHeader(broken, 0)));
  assert.match(e.message, /header is not valid JSON/);
  assert.equal(e.offset, 8 + at);

  const utf = frameHeader('{"a":"\u00e9"}');
  utf[8 + 7] = 0xff; // breaks the two-byte sequence of é
  assert.match((await failure(await write(utf))).message, /not valid UTF-8/);
  assert.match((await failure(await write(withHeader('[1,2,3]', 0)))).message, /must be a JSON object starting with '\{'/);
  assert.match((await failure(await write(withHeader('{"__metadata__": {"n": 3}}', 0)))).message, /__metadata__ value for "n" must be a string/);
});

test('unknown dtype, bad shape, bad offsets', async () => {
  const e = await failure(await write(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, w: { dtype: 'F4', shape: [2], data_offsets: [8, 9] } }, 9)));
  assert.equal(e.tensor, 'w');
  assert.match(e.message, /unknown dtype "F4"; expected one of F64 F32/);
  // The offset points at the tensor's key inside the header.
  const headerText = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, w: 0 });
  assert.equal(e.offset, 8 + headerText.indexOf('"w"'));

  const e2 = await failure(await write(withHeader({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8)));
  assert.equal(e2.tensor, 'w');
  assert.match(e2.message, /shape \[2,-1\] must be an array of non-negative integers/);
  const e3 = await failure(await write(withHeader({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 2 ** 60] } }, 8)));
  assert.match(e3.message, /data_offsets .* safe integers/);
  const e4 = await failure(await write(withHeader({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8)));
  assert.match(e4.message, /end is before begin/);
});

test('size mismatch, offsets past the end, overlapping offsets', async () => {
  const mismatch = withHeader({ w: { dtype: 'F16', shape: [3, 4], data_offsets: [0, 48] } }, 48);
  const e = await failure(await write(mismatch));
  assert.equal(e.tensor, 'w');
  assert.match(e.message, /size mismatch: shape \[3,4\] of F16 needs 24 bytes, data_offsets \[0, 48\] span 48/);
  const headerLen = mismatch.length - 48 - 8;
  assert.equal(e.offset, 8 + headerLen);

  const past = withHeader({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [16, 32] } }, 20);
  const e2 = await failure(await write(past));
  assert.equal(e2.tensor, 'b');
  const start = past.length - 20;
  assert.equal(e2.offset, start + 16);
  assert.match(e2.message, new RegExp(`data ends at byte ${start + 32}, file has ${past.length}`));

  const overlap = withHeader({
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [2], data_offsets: [24, 32] },
    c: { dtype: 'F32', shape: [4], data_offsets: [12, 28] },
  }, 32);
  const e3 = await failure(await write(overlap));
  assert.equal(e3.tensor, 'c');
  assert.match(e3.message, /data_offsets \[12, 28\] overlap tensor a \[0, 16\]/);
  assert.equal(e3.offset, overlap.length - 32 + 12);
});

async function writeIndex(sub: string, weightMap: Record<string, string>): Promise<string> {
  const d = path.join(dir, sub);
  await fsp.mkdir(d, { recursive: true });
  const tensor = { name: 'w', dtype: 'F32', shape: [2], bytes: new Uint8Array(8) };
  await fsp.writeFile(path.join(d, 'shard1.safetensors'), buildSafetensors([tensor]));
  const p = path.join(d, 'model.safetensors.index.json');
  await fsp.writeFile(p, JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return p;
}

test('index: missing shard, missing tensor, escaping and absolute shard paths', async () => {
  const okIndex = await writeIndex('ok', { w: 'shard1.safetensors' });
  const ok = await openSafetensorsIndex(okIndex);
  assert.equal(ok.formatDetail, 'safetensors (1 shard)');
  await ok.close();

  const e1 = await failure(await writeIndex('missing-shard', { w: 'shard1.safetensors', v: 'shard2.safetensors' }), openSafetensorsIndex);
  assert.match(e1.message, /weight_map names shard "shard2.safetensors", which cannot be opened/);

  const e2 = await failure(await writeIndex('missing-tensor', { w: 'shard1.safetensors', v: 'shard1.safetensors' }), openSafetensorsIndex);
  assert.equal(e2.tensor, 'v');
  assert.match(e2.message, /places this tensor in shard "shard1.safetensors", but that shard's header has no such tensor/);

  // An escape must be refused even when the target exists.
  const e3 = await failure(await writeIndex('escape', { w: '../ok/shard1.safetensors' }), openSafetensorsIndex);
  assert.match(e3.message, /shard path "..\/ok\/shard1.safetensors" must be a relative path inside the index's folder/);
  const e4 = await failure(await writeIndex('absolute', { w: path.join(dir, 'ok', 'shard1.safetensors') }), openSafetensorsIndex);
  assert.match(e4.message, /must be a relative path/);
  const e5 = await failure(await writeIndex('backslash', { w: '..\\ok\\shard1.safetensors' }), openSafetensorsIndex);
  assert.match(e5.message, /must be a relative path/);

  const badJson = path.join(dir, 'bad.safetensors.index.json');
  await fsp.writeFile(badJson, '{"weight_map": {"w": }');
  assert.match((await failure(badJson, openSafetensorsIndex)).message, /index is not valid JSON/);
});

test('property: mutated or truncated real header bytes either open and read, or throw CheckpointError', async () => {
  const whole = new Uint8Array(await fsp.readFile(STORIES));
  const { headerLength } = await splitSafetensors(STORIES);
  const headerEnd = 8 + headerLength;
  const file = path.join(dir, 'mutated.safetensors');
  let succeeded = 0;
  let failed = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ at: fc.nat(headerEnd + 63), byte: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(whole.length), { freq: 3 }),
      async (mutations, truncateTo) => {
        const bytes = whole.slice(0, truncateTo ?? whole.length);
        for (const m of mutations) if (m.at < bytes.length) bytes[m.at] = m.byte;
        await fsp.writeFile(file, bytes);
        try {
          const c = await openSafetensors(file);
          try { for (const t of c.tensors) await t.read(); } finally { await c.close(); }
          succeeded++;
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
          failed++;
        }
      },
    ),
    { numRuns: 150, seed: 20261123 },
  );
  assert.ok(failed > 0);
  // Some single-byte changes (inside metadata strings, tensor names, data) leave a valid file.
  assert.ok(succeeded > 0, 'no mutation left a readable file');
});

test('property: header entries with arbitrary JSON values either open or throw CheckpointError', async () => {
  const { header, data } = await splitSafetensors(STORIES);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const file = path.join(dir, 'fuzzed.safetensors');
  await fc.assert(
    fc.asyncProperty(
      fc.nat(names.length - 1),
      fc.constantFrom('dtype', 'shape', 'data_offsets', '__entry__', '__metadata__'),
      fc.oneof(fc.jsonValue(), fc.array(fc.integer({ min: -5, max: 2 ** 40 }), { maxLength: 3 }), fc.constantFrom('F16', 'BF16', 'I8', 'BOOL', 'F8_E5M2')),
      async (which, field, value) => {
        const h = structuredClone(header);
        if (field === '__metadata__') h.__metadata__ = value;
        else if (field === '__entry__') h[names[which]] = value;
        else h[names[which]][field] = value;
        const framed = frameHeader(JSON.stringify(h));
        const bytes = new Uint8Array(framed.length + data.length);
        bytes.set(framed);
        bytes.set(data, framed.length);
        await fsp.writeFile(file, bytes);
        try {
          const c = await openSafetensors(file);
          try { for (const t of c.tensors) await t.read(); } finally { await c.close(); }
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
        }
      },
    ),
    { numRuns: 150, seed: 11 },
  );
});
