/** `tensor-scalpel inspect` and `export` through the CLI entry point, on the real fixtures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { open } from '../../src/core/checkpoint';

const FIX = path.resolve(__dirname, '../../../shared/fixtures');

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => { out += t + '\n'; }, err: (t) => { err += t + '\n'; }, progress: () => undefined });
  return { code, out, err };
}

test('inspect --json lists every tensor of stories260K.gguf with row-major shapes and groups', async () => {
  const r = await run(['inspect', path.join(FIX, 'real/stories260K.gguf'), '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.format, 'gguf');
  assert.equal(j.tensors.length, 48);
  assert.equal(j.tensors.filter((t: { shape: number[] }) => t.shape.length === 2).length, 37);
  const down = j.tensors.find((t: { name: string }) => t.name === 'blk.0.ffn_down.weight');
  assert.deepEqual(down, { name: 'blk.0.ffn_down.weight', shape: [64, 172], dtype: 'F32', params: 64 * 172, group: 'block 0' });
  assert.equal(j.tensors.find((t: { name: string }) => t.name === 'token_embd.weight').group, 'embedding');
  assert.equal(j.tensors.find((t: { name: string }) => t.name === 'output.weight').group, 'head');
  assert.equal(j.totalParams, j.tensors.reduce((s: number, t: { params: number }) => s + t.params, 0));
  assert.equal(j.metadata['general.architecture'], 'llama');
  assert.equal(j.metadata['llama.block_count'], 5);
});

test('inspect without --json prints a readable table', async () => {
  const r = await run(['inspect', path.join(FIX, 'pico/pico.safetensors')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /safetensors/);
  assert.match(r.out, /h\.0\.attn\.c_attn\.weight\s+\[384, 128\]\s+F32\s+49,152\s+block 0/);
});

test('inspect of every fixture succeeds (every format opens through the CLI)', async () => {
  const files = ['real/stories260K.gguf', 'real/llama-2-tiny-random.gguf', 'stories260k/stories260K.safetensors', 'stories260k/stories260K.pt',
    'stories260k/stories260K.onnx', 'stories260k/stories260K_ext.onnx', 'stories260k/stories260K_q8_0.gguf', 'pico/pico.safetensors',
    'pico/pico_f16.safetensors', 'pico/pico.pt', 'pico/pico.onnx', 'pico/pico_ext.onnx', 'pico/pico_f32.gguf', 'pico/pico_f16.gguf',
    'pico/pico_q8_0.gguf', 'pico/pico_q4_k.gguf'];
  for (const f of files) {
    const r = await run(['inspect', path.join(FIX, f), '--json']);
    assert.equal(r.code, 0, `${f}: ${r.err}`);
    assert.ok(JSON.parse(r.out).tensors.length > 0, f);
  }
});

test('export writes one tensor as float32 .npy that reads back identically (Q8_0 dequantised)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-export-'));
  try {
    const out = path.join(dir, 'w.npy');
    const src = path.join(FIX, 'pico/pico_q8_0.gguf');
    const r = await run(['export', src, '--tensor', 'blk.1.ffn_up.weight', '--out', out, '--json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).shape, [512, 128]);
    const npy = await open(out);
    const g = await open(src);
    try {
      assert.deepEqual(npy.tensors[0].shape, [512, 128]);
      assert.deepEqual(await npy.tensors[0].read(), await g.get('blk.1.ffn_up.weight')!.read());
    } finally {
      await npy.close();
      await g.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input: a truncated file is a specific error with exit code 1; usage errors exit 2', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-inspect-'));
  try {
    const bad = path.join(dir, 'cut.gguf');
    const bytes = fs.readFileSync(path.join(FIX, 'real/stories260K.gguf'));
    fs.writeFileSync(bad, bytes.subarray(0, 5000));
    const r = await run(['inspect', bad]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cut\.gguf/);
    assert.match(r.err, /byte [\d,]+/);
    assert.equal((await run(['inspect'])).code, 2);
    assert.equal((await run(['export', bad, '--out', bad, '--tensor', 'x'])).code, 2);
    assert.equal((await run(['nonsense'])).code, 2);
    const missing = await run(['export', path.join(FIX, 'pico/pico.safetensors'), '--tensor', 'nope', '--out', path.join(dir, 'x.npy')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /no tensor named "nope"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
