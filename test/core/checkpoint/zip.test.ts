import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileAccessor } from '../../../src/core/checkpoint/fileAccessor';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import { ZipArchive, crc32 } from '../../../src/core/checkpoint/zip';
import { buildZip, type BuildEntry } from './zipTestUtil';

const FIXTURES = path.resolve(__dirname, '../../../../shared/fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-zip-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

function writeTemp(bytes: Uint8Array, ext = '.zip'): string {
  const p = path.join(tmp, `z${counter++}${ext}`);
  fs.writeFileSync(p, bytes);
  return p;
}

async function withZip<T>(bytes: Uint8Array, fn: (zip: ZipArchive) => Promise<T>): Promise<T> {
  const fa = await FileAccessor.open(writeTemp(bytes));
  try {
    return await fn(await ZipArchive.open(fa));
  } finally {
    await fa.close();
  }
}

async function rejectsCheckpoint(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

const enc = new TextEncoder();
const payload = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);

test('crc32 matches the standard check value of "123456789"', () => {
  assert.equal(crc32(enc.encode('123456789')), 0xcbf43926);
});

for (const zip64 of [false, true]) {
  test(`stored and deflated entries round-trip (zip64 ${zip64}), data offset taken from the local header`, async () => {
    const entries: BuildEntry[] = [
      { name: 'a/data.pkl', data: payload(100, 1) },
      { name: 'a/data/0', data: payload(4096, 2), localExtra: new Uint8Array(40) /* like torch's alignment padding */ },
      { name: 'a/data/1', data: payload(5000, 3), method: 8 },
      { name: 'a/empty', data: new Uint8Array(0) },
    ];
    await withZip(buildZip(entries, { zip64, comment: 'hello' }), async (zip) => {
      assert.equal(zip.zip64, zip64);
      assert.deepEqual(zip.entries.map((e) => e.name), entries.map((e) => e.name));
      for (const e of entries) {
        const entry = zip.get(e.name)!;
        assert.equal(entry.uncompressedSize, e.data.length);
        assert.deepEqual(await zip.readEntry(entry), e.data);
      }
      const stored = zip.get('a/data/0')!;
      assert.deepEqual(await zip.readStoredRange(stored, 1000, 24), entries[1].data.subarray(1000, 1024));
      const deflated = zip.get('a/data/1')!;
      assert.deepEqual(await zip.readPrefix(deflated, 12), entries[2].data.subarray(0, 12));
      await rejectsCheckpoint(zip.readEntry(deflated, { maxBytes: 100 }), /a\/data\/1.*more than the limit/);
    });
  });
}

test('the real torch.save archives are Zip64 and every entry is stored', async () => {
  const fa = await FileAccessor.open(path.join(FIXTURES, 'pico/pico.pt'));
  try {
    const zip = await ZipArchive.open(fa);
    assert.equal(zip.zip64, true);
    assert.equal(zip.entries.length, 54);
    assert.ok(zip.entries.every((e) => e.method === 0));
    const pkl = await zip.readEntry(zip.get('pico/data.pkl')!);
    assert.equal(pkl[0], 0x80); // PROTO
    assert.equal(pkl[pkl.length - 1], 0x2e); // STOP
    // torch aligns storage data to 64 bytes through the local extra field
    for (const e of zip.entries.filter((x) => x.name.startsWith('pico/data/'))) assert.equal((await zip.dataOffset(e)) % 64, 0);
  } finally {
    await fa.close();
  }
});

for (const bad of ['../evil', '/etc/passwd', 'archive/../../evil', 'a\\..\\b', 'C:/windows/x', 'nul\0byte']) {
  test(`path traversal entry name ${JSON.stringify(bad)} is refused, naming the entry`, async () => {
    const bytes = buildZip([{ name: 'ok/data.pkl', data: payload(10, 1) }, { name: bad, data: payload(10, 2) }]);
    const shown = bad.replace(/\0/g, '\\0').replace(/[\\.^$|?*+()[\]{}]/g, (c) => `\\${c}`);
    await rejectsCheckpoint(withZip(bytes, async () => undefined), new RegExp(`zip entry "${shown}".*path-traversal`));
  });
}

test('truncated archives are refused at every cut', async () => {
  const bytes = buildZip([{ name: 'x/data.pkl', data: payload(300, 1) }, { name: 'x/data/0', data: payload(700, 2) }], { zip64: true });
  for (const cut of [1, 10, 21, 22, 60, 100, 500, bytes.length - 30]) {
    await rejectsCheckpoint(withZip(bytes.subarray(0, bytes.length - cut), async (zip) => {
      for (const e of zip.entries) await zip.readEntry(e);
    }), /zip|central|end of central|local header|truncated/i);
  }
});

test('a file with no End Of Central Directory record is refused', async () => {
  await rejectsCheckpoint(withZip(payload(5000, 9), async () => undefined), /no End Of Central Directory/);
  await rejectsCheckpoint(withZip(new Uint8Array(5), async () => undefined), /too small/);
});

test('an EOCD whose central directory lies beyond the file is refused', async () => {
  const bytes = buildZip([{ name: 'x/a', data: payload(50, 1) }]);
  const dv = new DataView(bytes.buffer);
  const eocd = bytes.length - 22;
  dv.setUint32(eocd + 16, 1_000_000, true); // central directory offset
  await rejectsCheckpoint(withZip(bytes, async () => undefined), /central directory .*does not end before/);
});

test('an entry count that cannot fit the central directory is refused before allocating', async () => {
  const bytes = buildZip([{ name: 'x/a', data: payload(50, 1) }]);
  new DataView(bytes.buffer).setUint16(bytes.length - 22 + 8, 60000, true);
  new DataView(bytes.buffer).setUint16(bytes.length - 22 + 10, 60000, true);
  await rejectsCheckpoint(withZip(bytes, async () => undefined), /claims 60,000 entries/);
});

test('an entry whose local header offset or size runs past the data is refused', async () => {
  const bytes = buildZip([{ name: 'x/a', data: payload(50, 1) }, { name: 'x/b', data: payload(50, 2) }]);
  const dv = new DataView(bytes.buffer);
  const cdOffset = dv.getUint32(bytes.length - 22 + 16, true);
  const far = bytes.slice();
  new DataView(far.buffer).setUint32(cdOffset + 42, 0x7fff0000, true);
  await rejectsCheckpoint(withZip(far, async () => undefined), /zip entry "x\/a": local header at byte 2,147,418,112/);
  const long = bytes.slice();
  new DataView(long.buffer).setUint32(cdOffset + 20, 0x10000, true);
  new DataView(long.buffer).setUint32(cdOffset + 24, 0x10000, true);
  await rejectsCheckpoint(withZip(long, async () => undefined), /zip entry "x\/a": 65,536 bytes of data .* run past/);
});

test('encrypted entries, unknown methods and lying sizes are refused on read', async () => {
  await withZip(buildZip([{ name: 'x/secret', data: payload(10, 1), flags: 1 }]), async (zip) => {
    await rejectsCheckpoint(zip.readEntry(zip.entries[0]), /"x\/secret" is encrypted/);
  });
  const bz = buildZip([{ name: 'x/bz', data: payload(10, 1) }]);
  const cdOffset = new DataView(bz.buffer).getUint32(bz.length - 22 + 16, true);
  new DataView(bz.buffer).setUint16(cdOffset + 10, 12, true);
  await withZip(bz, async (zip) => {
    await rejectsCheckpoint(zip.readEntry(zip.entries[0]), /"x\/bz" uses compression method 12/);
  });
  // A deflated entry whose header claims a different size, or whose CRC does not match.
  const data = payload(3000, 4);
  const d = buildZip([{ name: 'x/d', data, method: 8 }]);
  const cd = new DataView(d.buffer).getUint32(d.length - 22 + 16, true);
  const shortSize = d.slice();
  new DataView(shortSize.buffer).setUint32(cd + 24, 2000, true);
  await withZip(shortSize, async (zip) => rejectsCheckpoint(zip.readEntry(zip.entries[0]), /"x\/d" inflates to more than the 2,000 bytes/));
  const badCrc = d.slice();
  new DataView(badCrc.buffer).setUint32(cd + 16, 12345, true);
  await withZip(badCrc, async (zip) => rejectsCheckpoint(zip.readEntry(zip.entries[0]), /"x\/d": CRC-32 mismatch/));
  const bomb = d.slice();
  new DataView(bomb.buffer).setUint32(cd + 24, 0x7fffffff, true);
  await withZip(bomb, async (zip) => rejectsCheckpoint(zip.readEntry(zip.entries[0]), /beyond what deflate can produce/));
});

test('duplicate entry names are refused as ambiguous', async () => {
  const bytes = buildZip([{ name: 'x/a', data: payload(5, 1) }, { name: 'x/a', data: payload(5, 2) }]);
  await rejectsCheckpoint(withZip(bytes, async () => undefined), /two entries named "x\/a"/);
});

test('a local header that disagrees with the central directory is refused', async () => {
  const bytes = buildZip([{ name: 'x/a', data: payload(50, 1) }]);
  bytes[30] = 'y'.charCodeAt(0); // first byte of the local name
  await withZip(bytes, async (zip) => rejectsCheckpoint(zip.readEntry(zip.entries[0]), /local header names it "y\/a"/));
});
