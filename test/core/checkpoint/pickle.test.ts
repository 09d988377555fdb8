import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { CheckpointError } from '../../../src/core/checkpoint/errors';
import {
  unpickle, PickleDict, PickleTuple, PickledTensor, PickledPersistent, PickleGlobal, PickleObject, type PickleValue,
} from '../../../src/core/checkpoint/pickle';
import { openPytorch } from '../../../src/core/checkpoint/pytorch';
import { PickleWriter, buildTorchZip, f32bytes } from './zipTestUtil';

const SOURCE = 'archive/data.pkl';
const opts = { file: 'test.pt', source: SOURCE, persistentLoad: (pid: PickleValue) => pid };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-pickle-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Plain-JS view of an unpickled value, for deep comparison. */
function plain(v: PickleValue): unknown {
  if (v instanceof PickleDict) return Object.fromEntries([...v.map].map(([k, c]) => [String(k), plain(c)]));
  if (v instanceof PickleTuple) return { tuple: v.items.map(plain) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof PickleGlobal) return { global: v.qualified };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === 'bigint') return { bigint: v.toString() };
  return v;
}

function refused(bytes: Uint8Array, qualified: string, offset: number): void {
  assert.throws(() => unpickle(bytes, opts), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.ok(
      e.message.includes(`pickle asks for ${qualified} at byte ${offset} of ${SOURCE}: only state-dict globals are allowed — refusing to execute code from the file`),
      e.message,
    );
    return true;
  });
}

test('a hand-assembled state dict becomes tensors, dicts and tuples without running anything', () => {
  const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce();
  w.mark().str('layer.weight').tensor('FloatStorage', '0', 12, 2, [2, 5], [1, 2]);
  w.str('epoch').int(70000).str('lr').op(0x47, 0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc); // 0.001 as big-endian double
  w.str('neg').op(0x8a, 2, 0x00, 0xff); // LONG1 -256
  w.str('big').op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1); // 2^64, beyond safe integers
  w.str('flags').op(0x88, 0x89, 0x4e).op(0x87); // (True, False, None)
  w.setitems().stop();
  const root = unpickle(w.build(), opts);
  assert.ok(root instanceof PickleDict);
  const t = root.map.get('layer.weight');
  assert.ok(t instanceof PickledTensor);
  assert.deepEqual([t.storageOffset, t.size, t.stride], [2, [2, 5], [1, 2]]);
  assert.ok(t.storage instanceof PickledPersistent);
  assert.deepEqual(plain(t.storage.value as PickleValue), { tuple: ['storage', { global: 'torch.FloatStorage' }, '0', 'cpu', 12] });
  assert.equal(root.map.get('epoch'), 70000);
  assert.equal(root.map.get('lr'), 0.001);
  assert.equal(root.map.get('neg'), -256);
  assert.equal(root.map.get('big'), 2n ** 64n);
  assert.deepEqual(plain(root.map.get('flags')!), { tuple: [true, false, null] });
});

test('pickles written by CPython (protocols 2-5) decode to the same values', (t) => {
  const py = '/usr/bin/python3';
  if (!fs.existsSync(py)) { t.skip('no /usr/bin/python3: cannot generate CPython pickles'); return; }
  const script = `
import pickle, sys, collections, json
obj = {"a": 1, "b": [1, 2, 3, -7, 300, 70000, -2**31, 2**40, -2**70], "c": ("x", 2.5, None, True, False),
       "d": collections.OrderedDict([("k", "v"), ("n", {"deep": [[], (), {}]})]), "e": "ünïcödé €", "f": b"\\x00\\x01bytes",
       "shared": None}
lst = [1, 2]
obj["shared"] = [lst, lst]
for proto in (2, 3, 4, 5):
    # protocol 2 has no bytes opcode (CPython pickles bytes through _codecs.encode, which we refuse)
    o = dict(obj, f=None) if proto == 2 else obj
    sys.stdout.write(pickle.dumps(o, protocol=proto).hex() + "\\n")
`;
  const r = spawnSync(py, ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  const expected = {
    a: 1, b: [1, 2, 3, -7, 300, 70000, -(2 ** 31), 2 ** 40, { bigint: (-(2n ** 70n)).toString() }],
    c: { tuple: ['x', 2.5, null, true, false] },
    d: { k: 'v', n: { deep: [[], { tuple: [] }, {}] } }, e: 'ünïcödé €', f: { bytes: [0, 1, ...new TextEncoder().encode('bytes')] },
    shared: [[1, 2], [1, 2]],
  };
  for (const [i, hex] of lines.entries()) {
    const value = unpickle(Uint8Array.from(Buffer.from(hex, 'hex')), opts);
    assert.deepEqual(plain(value), i === 0 ? { ...expected, f: null } : expected);
  }
});

test('malicious globals are refused by name and byte offset, and nothing runs', () => {
  const marker = path.join(tmp, 'pwned');
  // GLOBAL 'os system' + ('touch <marker>',) + REDUCE: what a real exploit pickle looks like.
  const osSystem = new PickleWriter().proto(2).global('os', 'system').str(`touch ${marker}`).tuple1().reduce().stop().build();
  refused(osSystem, 'os.system', 2);
  refused(new PickleWriter().proto(2).global('builtins', 'eval').str(`open(${JSON.stringify(marker)},'w')`).tuple1().reduce().stop().build(), 'builtins.eval', 2);
  refused(new PickleWriter().proto(2).global('__builtin__', 'exec').str('1').tuple1().reduce().stop().build(), '__builtin__.exec', 2);
  refused(new PickleWriter().proto(2).global('subprocess', 'Popen').mark().str('touch').str(marker).op(0x6c).tuple1().reduce().stop().build(), 'subprocess.Popen', 2);
  refused(new PickleWriter().proto(2).global('posix', 'system').str('true').tuple1().reduce().stop().build(), 'posix.system', 2);
  // STACK_GLOBAL (protocol 4): module and name come from the stack; the offset is the 0x93 opcode.
  const sg = new PickleWriter().proto(4);
  sg.shortStr('os').shortStr('system');
  const sgAt = sg.at();
  refused(sg.op(0x93).str(`touch ${marker}`).tuple1().reduce().stop().build(), 'os.system', sgAt);
  const sg2 = new PickleWriter().proto(4).shortStr('builtins').op(0x94).shortStr('getattr').op(0x94);
  const sg2At = sg2.at();
  refused(sg2.op(0x93).stop().build(), 'builtins.getattr', sg2At);
  // An allowed module with a name outside the allow-list.
  refused(new PickleWriter().proto(2).global('torch._utils', '_rebuild_qtensor').stop().build(), 'torch._utils._rebuild_qtensor', 2);
  refused(new PickleWriter().proto(2).global('torch', 'load').stop().build(), 'torch.load', 2);
  refused(new PickleWriter().proto(2).global('numpy.core.multiarray', '_reconstruct').stop().build(), 'numpy.core.multiarray._reconstruct', 2);
  // The refusal happens at the GLOBAL even after a valid tensor.
  const late = new PickleWriter().proto(2).emptyDict().str('w').tensor('FloatStorage', '0', 4, 0, [4], [1]).setitem().str('x');
  const lateAt = late.at();
  refused(late.global('os', 'system').str('true').tuple1().reduce().setitem().stop().build(), 'os.system', lateAt);
  assert.equal(fs.existsSync(marker), false, 'the pickle must not have run its command');
});

test('a malicious data.pkl inside a .pt archive is refused by openPytorch, naming the global', async () => {
  const marker = path.join(tmp, 'pwned-pt');
  const pkl = new PickleWriter().proto(2).emptyDict().str('w').tensor('FloatStorage', '0', 4, 0, [4], [1]).setitem()
    .str('evil').global('os', 'system').str(`touch ${marker}`).tuple1().reduce().setitem().stop().build();
  const file = path.join(tmp, 'evil.pt');
  fs.writeFileSync(file, buildTorchZip('evil', pkl, { 0: f32bytes([1, 2, 3, 4]) }));
  await assert.rejects(openPytorch(file), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /pickle asks for os\.system at byte \d+ of evil\/data\.pkl: only state-dict globals are allowed/);
    return true;
  });
  assert.equal(fs.existsSync(marker), false);
});

test('opcodes outside the state-dict subset are refused with their name and offset', () => {
  const cases: Array<[Uint8Array, RegExp]> = [
    [new PickleWriter().proto(2).mark().op(0x69, ...new TextEncoder().encode('os\nsystem\n')).stop().build(), /byte 3: unsupported pickle opcode 0x69 \(INST\)/],
    [new PickleWriter().proto(2).mark().global('collections', 'OrderedDict').op(0x6f).stop().build(), /unsupported pickle opcode 0x6f \(OBJ\)/],
    [new PickleWriter().proto(2).op(0x82, 1).stop().build(), /unsupported pickle opcode 0x82 \(EXT1\)/],
    [new PickleWriter().proto(5).op(0x97).stop().build(), /unsupported pickle opcode 0x97 \(NEXT_BUFFER\)/],
    [new PickleWriter().proto(2).op(0xff).build(), /byte 2: unsupported pickle opcode 0xff/],
    [new PickleWriter().proto(2).emptyDict().build(), /ends without a STOP/],
    [new PickleWriter().proto(2).op(0x68, 5).stop().build(), /memo key 5 was never stored/],
    [new PickleWriter().proto(2).str('a').op(0x73).stop().build(), /stack underflow/],
    [new PickleWriter().proto(2).op(0x58, 0xff, 0xff, 0xff, 0x7f).build(), /needs 2,147,483,647 bytes but the pickle ends/],
    [new PickleWriter().proto(2).global('collections', 'OrderedDict').str('x').tuple1().op(0x86).reduce().stop().build(), /stack underflow|not a tuple/],
    [new PickleWriter().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().int(1).int(2).tuple().reduce().stop().build(), /_rebuild_tensor_v2 needs at least 4 arguments/],
  ];
  for (const [bytes, pattern] of cases) {
    assert.throws(() => unpickle(bytes, opts), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  }
});

test('harmless torch values (device, layout) are kept as records', () => {
  const w = new PickleWriter().proto(2).global('torch', 'device').str('cpu').tuple1().reduce().stop();
  const v = unpickle(w.build(), opts);
  assert.ok(v instanceof PickleObject);
  assert.equal(v.global.qualified, 'torch.device');
  assert.deepEqual(v.args, ['cpu']);
});

const OPCODES = [
  0x80, 0x95, 0x2e, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x8b, 0x47, 0x58, 0x8c, 0x8d,
  0x54, 0x55, 0x42, 0x43, 0x8e, 0x96, 0x7d, 0x5d, 0x29, 0x8f, 0x64, 0x6c, 0x74, 0x91, 0x85, 0x86, 0x87, 0x73, 0x75,
  0x61, 0x65, 0x90, 0x71, 0x72, 0x94, 0x68, 0x6a, 0x63, 0x93, 0x52, 0x81, 0x62, 0x51, 0x69, 0x6f,
];

test('property: random opcode streams give a value or a CheckpointError, never another error or a hang', () => {
  const token = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...OPCODES).map((b) => [b]) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [b]) },
    { weight: 1, arbitrary: fc.constantFrom('torch\nFloatStorage\n', 'collections\nOrderedDict\n', 'os\nsystem\n', 'torch._utils\n_rebuild_tensor_v2\n').map((s) => [0x63, ...new TextEncoder().encode(s)]) },
    { weight: 1, arbitrary: fc.string({ maxLength: 6 }).map((s) => { const b = new TextEncoder().encode(s); return [0x8c, b.length, ...b]; }) },
  );
  fc.assert(
    fc.property(fc.array(token, { maxLength: 120 }), (tokens) => {
      const bytes = new Uint8Array([0x80, 2, ...tokens.flat(), 0x2e]);
      const started = Date.now();
      try {
        unpickle(bytes, { ...opts, maxStack: 10_000, maxMemo: 10_000 });
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw new Error(`non-CheckpointError for ${Buffer.from(bytes).toString('hex')}: ${String(e)}`);
      }
      assert.ok(Date.now() - started < 1000, 'one small pickle must decode in well under a second');
    }),
    { numRuns: 3000, seed: 20261123 },
  );
});
