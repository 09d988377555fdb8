// `tensor-scalpel spectra` end to end (through the worker pool) on the real fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { main } from '../../src/cli/main';

const SHARED = join(__dirname, '..', '..', '..', 'shared');
const ref = (m: string): Array<{ name: string; shape: number[]; singularValues: number[]; vonNeumannEntropy: number }> =>
  JSON.parse(readFileSync(join(SHARED, 'reference', `${m}.spectra.json`), 'utf8')).tensors;

async function run(args: string[]): Promise<{ code: number; out: string; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t), progress: (t) => err.push(t) });
  return { code, out: out.join('\n'), err };
}

/** llama.cpp's GGUF names -> the Hugging Face names of the reference (stories260K.safetensors). */
function hfName(gguf: string): string {
  if (gguf === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (gguf === 'output.weight') return 'lm_head.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(gguf);
  assert.ok(m, gguf);
  const part: Record<string, string> = {
    attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
    ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  };
  return `model.layers.${m[1]}.${part[m[2]]}.weight`;
}

function checkAgainst(json: { tensors: Array<Record<string, unknown>> }, refs: ReturnType<typeof ref>, rename: (n: string) => string) {
  assert.equal(json.tensors.length, refs.length);
  for (const t of json.tensors) {
    const r = refs.find((x) => x.name === rename(t.name as string));
    assert.ok(r, `${t.name} has a reference`);
    assert.deepEqual(t.shape, r.shape);
    const s = t.singularValues as number[];
    assert.equal(s.length, r.singularValues.length);
    s.forEach((v, i) => assert.ok(Math.abs(v - r.singularValues[i]) <= 1e-5 * r.singularValues[0], `${t.name} s_${i}: ${v} vs ${r.singularValues[i]}`));
    assert.ok(Math.abs((t.vonNeumannEntropy as number) - r.vonNeumannEntropy) <= 1e-5 * r.vonNeumannEntropy);
    for (const key of ['normalizedEntropy', 'renyi2Entropy', 'effectiveRank', 'stableRank', 'spectralNorm', 'frobeniusNorm', 'numericalRank', 'mpEdge', 'outliers', 'alpha']) {
      assert.ok(key in t, `${t.name} has ${key}`);
    }
  }
}

test('spectra --json on pico.safetensors: singular values match the reference to 1e-5 of s_1', async () => {
  const { code, out, err } = await run(['spectra', join(SHARED, 'fixtures/pico/pico.safetensors'), '--json', '--no-cache', '--mode', 'exact', '--workers', '2']);
  assert.equal(code, 0, err.join('\n'));
  const json = JSON.parse(out);
  assert.equal(json.mode, 'exact');
  assert.match(json.backend, /^(native|portable)$/);
  assert.ok(typeof json.seconds === 'number');
  checkAgainst(json, ref('pico'), (n) => n);
  assert.ok(err.some((l) => /^\[18\/18\] /.test(l)), 'progress lines go to stderr');
});

test('spectra --json on the real stories260K.gguf matches the safetensors reference (llama.cpp names mapped)', async () => {
  const { code, out, err } = await run(['spectra', join(SHARED, 'fixtures/real/stories260K.gguf'), '--json', '--no-cache']);
  assert.equal(code, 0, err.join('\n'));
  const json = JSON.parse(out);
  assert.equal(json.mode, 'auto');
  assert.ok(json.tensors.every((t: { mode: string }) => t.mode === 'exact'), 'small matrices run exact in auto mode');
  checkAgainst(json, ref('stories260k'), hfName);
});

test('spectra --tensors GLOB --mode estimate: only the matching tensors, each with a 95% interval', async () => {
  const { code, out, err } = await run(['spectra', join(SHARED, 'fixtures/pico/pico.safetensors'), '--json', '--no-cache', '--mode', 'estimate', '--tensors', 'h.*.mlp.c_fc.weight']);
  assert.equal(code, 0, err.join('\n'));
  const json = JSON.parse(out);
  assert.deepEqual(json.tensors.map((t: { name: string }) => t.name), ['h.0.mlp.c_fc.weight', 'h.1.mlp.c_fc.weight', 'h.2.mlp.c_fc.weight', 'h.3.mlp.c_fc.weight']);
  const refs = ref('pico');
  for (const t of json.tensors) {
    assert.equal(t.mode, 'estimate');
    assert.equal(t.singularValues, undefined);
    assert.equal(t.topSingularValues.length, 32);
    const [lo, hi] = t.confidence.vonNeumannEntropy;
    assert.ok(lo <= t.vonNeumannEntropy && t.vonNeumannEntropy <= hi);
    const r = refs.find((x) => x.name === t.name)!;
    assert.ok(Math.abs(t.vonNeumannEntropy / r.vonNeumannEntropy - 1) < 0.02);
    // The top values are exact to the stated tolerance, and the reported bound covers the truth.
    assert.equal(t.estimate.topKConverged, true);
    const s1 = r.singularValues[0];
    const worst = Math.max(...t.topSingularValues.map((s: number, i: number) => Math.abs(s - r.singularValues[i]) / s1));
    assert.ok(worst <= 1e-4, `top-32 error ${worst} / s_1`);
    assert.ok(worst <= t.estimate.topKResidual + 1e-6, `error ${worst} within the reported bound ${t.estimate.topKResidual}`);
  }
});

test('spectra without --json prints a table; bad options are usage errors', async () => {
  const { code, out } = await run(['spectra', join(SHARED, 'fixtures/pico/pico.safetensors'), '--no-cache', '--tensors', 'wte.weight']);
  assert.equal(code, 0);
  assert.match(out, /wte\.weight\s+\[65, 128\]\s+exact\s+3\.350/);
  assert.equal((await run(['spectra', 'x.safetensors', '--mode', 'fast'])).code, 2);
  assert.equal((await run(['spectra', 'x.safetensors', '--workers', '0'])).code, 2);
  const missing = await run(['spectra', join(SHARED, 'fixtures/nope.safetensors')]);
  assert.notEqual(missing.code, 0);
});

test('the bundled CLI (out/cli.js) runs its scans on the bundled worker (out/worker.js)', async (t) => {
  const root = join(__dirname, '..', '..');
  const cli = join(root, 'out', 'cli.js'), worker = join(root, 'out', 'worker.js');
  if (!existsSync(cli) || !existsSync(worker)) return t.skip('no build in out/ (run `npm run build` first; `npm test` does)');
  const r = spawnSync(process.execPath, [cli, 'spectra', join(SHARED, 'fixtures/pico/pico.safetensors'), '--json', '--no-cache', '--tensors', 'wte.weight', '--workers', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  const wte = ref('pico').find((x) => x.name === 'wte.weight')!;
  json.tensors[0].singularValues.forEach((v: number, i: number) => assert.ok(Math.abs(v - wte.singularValues[i]) <= 1e-5 * wte.singularValues[0]));
});
