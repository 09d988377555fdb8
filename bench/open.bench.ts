/**
 * Time-to-index and peak memory of `open()` on big checkpoints, without needing big files on disk:
 * an ~8 GB safetensors (Llama-3-8B tensor list, FP8 linear weights with their scales, BF16
 * embeddings and norms) and a ~2 GB GGUF v3 (a 32-block, 2048-wide Llama with F16 and Q4_K tensors
 * and a 32,000-token tokenizer in the metadata) are written as their real headers followed by a
 * hole (ftruncate), so the data region costs no disk space and is never read.
 *
 *   npx tsx bench/open.bench.ts            # 5 runs per file (median reported)
 *   npx tsx bench/open.bench.ts --runs 9
 *
 * Time-to-index: `open()` until the tensor list is available, in this process; the header is in the
 * page cache (we just wrote it), so this measures parsing and validation, not disk seeks.
 * Peak RSS: each open runs in a fresh child process that reports `process.resourceUsage().maxRSS`;
 * a child that loads the same modules but opens nothing gives the baseline.
 * Targets: < 50 ms to index, < 100 MB peak RSS attributable to the open.
 * Not part of `npm test`.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { open } from '../src/core/checkpoint/open';

const TARGET_MS = 50;
const TARGET_MB = 100;

// ---------------------------------------------------------------------------------------------
// Synthetic headers

interface StTensor { name: string; dtype: string; shape: number[] }
const ST_BYTES: Record<string, number> = { BF16: 2, F8_E4M3: 1, F32: 4 };

/** Llama-3-8B (hidden 4096, 32 layers, FFN 14336, 8 KV heads of 128, vocab 128,256), FP8 weights, tied head. */
function llama8bTensors(): StTensor[] {
  const H = 4096, F = 14336, KV = 1024, V = 128256, L = 32;
  const out: StTensor[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [V, H] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    out.push({ name: `${p}.input_layernorm.weight`, dtype: 'BF16', shape: [H] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, dtype: 'BF16', shape: [H] });
    const linears: Array<[string, number, number]> = [
      ['self_attn.q_proj', H, H], ['self_attn.k_proj', KV, H], ['self_attn.v_proj', KV, H], ['self_attn.o_proj', H, H],
      ['mlp.gate_proj', F, H], ['mlp.up_proj', F, H], ['mlp.down_proj', H, F],
    ];
    for (const [n, rows, cols] of linears) {
      out.push({ name: `${p}.${n}.weight`, dtype: 'F8_E4M3', shape: [rows, cols] });
      out.push({ name: `${p}.${n}.weight_scale`, dtype: 'F32', shape: [] });
      out.push({ name: `${p}.${n}.input_scale`, dtype: 'F32', shape: [] });
    }
  }
  out.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [H] });
  return out;
}

/** Writes the header of a safetensors file holding `tensors` and extends it with a hole. Returns the file size. */
async function writeSparseSafetensors(file: string, tensors: StTensor[]): Promise<number> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', quant_method: 'fp8' } };
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * ST_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const body = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(body.length));
  const fh = await fsp.open(file, 'w');
  try {
    await fh.write(Buffer.concat([prefix, body]), 0, 8 + body.length, 0);
    await fh.truncate(8 + body.length + off);
  } finally {
    await fh.close();
  }
  return 8 + body.length + off;
}

/** A little-endian byte builder for the GGUF header. */
class Bytes {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer) { this.chunks.push(b); this.length += b.length; }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number | bigint) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v: number) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s: string) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  raw(b: Buffer) { this.push(b); }
  concat() { return Buffer.concat(this.chunks); }
}

// GGUF v3 metadata value types and ggml tensor types used here.
const GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_STRING = 8, GGUF_ARRAY = 9;
const GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_K = 12;
/** Bytes per block and elements per block: Q4_K packs 256 weights into 144 bytes (d, dmin, 12 scale bytes, 128 nibble bytes). */
const GGML_BLOCK: Record<number, [number, number]> = { [GGML_F32]: [4, 1], [GGML_F16]: [2, 1], [GGML_Q4_K]: [144, 256] };

interface GgufTensor { name: string; type: number; /** ggml order: ne0 = columns (fastest varying) */ ne: number[] }

/** A TinyLlama-like GGUF: hidden 2048, 32 blocks, FFN 5632, 4 KV heads of 64, vocab 32,000. */
function tinyLlamaTensors(): GgufTensor[] {
  const H = 2048, F = 5632, KV = 256, V = 32000, L = 32;
  const out: GgufTensor[] = [{ name: 'token_embd.weight', type: GGML_F16, ne: [H, V] }];
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}`;
    out.push(
      { name: `${b}.attn_norm.weight`, type: GGML_F32, ne: [H] },
      { name: `${b}.attn_q.weight`, type: GGML_F16, ne: [H, H] },
      { name: `${b}.attn_k.weight`, type: GGML_F16, ne: [H, KV] },
      { name: `${b}.attn_v.weight`, type: GGML_F16, ne: [H, KV] },
      { name: `${b}.attn_output.weight`, type: GGML_F16, ne: [H, H] },
      { name: `${b}.ffn_norm.weight`, type: GGML_F32, ne: [H] },
      { name: `${b}.ffn_gate.weight`, type: GGML_Q4_K, ne: [H, F] },
      { name: `${b}.ffn_up.weight`, type: GGML_Q4_K, ne: [H, F] },
      { name: `${b}.ffn_down.weight`, type: GGML_F16, ne: [F, H] },
    );
  }
  out.push({ name: 'output_norm.weight', type: GGML_F32, ne: [H] }, { name: 'output.weight', type: GGML_Q4_K, ne: [H, V] });
  return out;
}

/**
 * GGUF v3: magic "GGUF", u32 version, u64 tensor count, u64 KV count, the KV pairs (key string,
 * u32 type, value), the tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset
 * relative to the data region), padding to general.alignment (32); then the data, here a hole.
 */
async function writeSparseGguf(file: string, tensors: GgufTensor[]): Promise<number> {
  const V = 32000;
  const b = new Bytes();
  const kvs: Array<(b: Bytes) => void> = [];
  const kvStr = (k: string, v: string) => kvs.push((b) => { b.str(k); b.u32(GGUF_STRING); b.str(v); });
  const kvU32 = (k: string, v: number) => kvs.push((b) => { b.str(k); b.u32(GGUF_UINT32); b.u32(v); });
  const kvF32 = (k: string, v: number) => kvs.push((b) => { b.str(k); b.u32(GGUF_FLOAT32); b.f32(v); });
  kvStr('general.architecture', 'llama');
  kvStr('general.name', 'bench-tinyllama-2048x32');
  kvU32('general.alignment', 32);
  kvU32('llama.context_length', 2048);
  kvU32('llama.embedding_length', 2048);
  kvU32('llama.block_count', 32);
  kvU32('llama.feed_forward_length', 5632);
  kvU32('llama.rope.dimension_count', 64);
  kvU32('llama.attention.head_count', 32);
  kvU32('llama.attention.head_count_kv', 4);
  kvF32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  kvStr('tokenizer.ggml.model', 'llama');
  // A realistic tokenizer: the header parse cost of a GGUF is mostly these three arrays.
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  for (let i = 0; i < 256; i++) tokens.push(`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`);
  while (tokens.length < V) tokens.push(`\u2581tok${tokens.length.toString(36)}`);
  kvs.push((b) => { b.str('tokenizer.ggml.tokens'); b.u32(GGUF_ARRAY); b.u32(GGUF_STRING); b.u64(V); for (const t of tokens) b.str(t); });
  kvs.push((b) => { b.str('tokenizer.ggml.scores'); b.u32(GGUF_ARRAY); b.u32(GGUF_FLOAT32); b.u64(V); for (let i = 0; i < V; i++) b.f32(-i); });
  kvs.push((b) => { b.str('tokenizer.ggml.token_type'); b.u32(GGUF_ARRAY); b.u32(GGUF_INT32); b.u64(V); for (let i = 0; i < V; i++) b.i32(i < 3 ? 3 : i < 259 ? 6 : 1); });
  kvU32('tokenizer.ggml.bos_token_id', 1);
  kvU32('tokenizer.ggml.eos_token_id', 2);

  b.raw(Buffer.from('GGUF', 'ascii'));
  b.u32(3);
  b.u64(tensors.length);
  b.u64(kvs.length);
  for (const kv of kvs) kv(b);
  let off = 0;
  for (const t of tensors) {
    b.str(t.name);
    b.u32(t.ne.length);
    for (const d of t.ne) b.u64(d);
    b.u32(t.type);
    b.u64(off);
    const [bytes, per] = GGML_BLOCK[t.type];
    const n = t.ne.reduce((a, c) => a * c, 1);
    off += Math.ceil((n / per) * bytes / 32) * 32;
  }
  const dataStart = Math.ceil(b.length / 32) * 32;
  const head = b.concat();
  const fh = await fsp.open(file, 'w');
  try {
    await fh.write(head, 0, head.length, 0);
    await fh.truncate(dataStart + off);
  } finally {
    await fh.close();
  }
  return dataStart + off;
}

// ---------------------------------------------------------------------------------------------
// Measurement

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Timing { ok: true; times: number[]; tensors: number; formatDetail: string }
interface Failure { ok: false; error: string }

async function timeOpen(file: string, runs: number): Promise<Timing | Failure> {
  const times: number[] = [];
  let tensors = 0;
  let formatDetail = '';
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    let c;
    try {
      c = await open(file);
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
    tensors = c.tensors.length; // the index is complete once open() resolves
    times.push(performance.now() - t0);
    formatDetail = c.formatDetail;
    await c.close();
  }
  return { ok: true, times, tensors, formatDetail };
}

/** Runs this script as `--child <file>` (or `--child-baseline`) in a fresh process; returns its peak RSS in MiB. */
function childPeakRss(arg: string[]): { mib: number; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1], ...arg], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { mib: j.maxRssKiB / 1024, out: j.detail };
}

async function child(): Promise<void> {
  const i = process.argv.indexOf('--child');
  let detail = 'baseline';
  if (i >= 0) {
    const c = await open(process.argv[i + 1]);
    detail = `${c.tensors.length} tensors`;
    await c.close();
  }
  process.stdout.write(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, detail }) + '\n');
}

/** The peer: Python reading the 8-byte length and json.loads of the header (what safe_open does first). */
function pythonSafetensorsHeader(file: string, runs: number): number | undefined {
  const r = spawnSync('/usr/bin/python3', ['-c', `
import json, struct, sys, time
ts = []
for _ in range(${runs}):
    t0 = time.perf_counter()
    with open(sys.argv[1], 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
    ts.append((time.perf_counter() - t0) * 1000)
ts.sort()
print(ts[len(ts) // 2])
`, file], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/** Cross-check of the hand-written GGUF with an independent parser (@huggingface/gguf). */
async function hfGguf(file: string, runs: number): Promise<{ tensors: number; ms: number } | string> {
  try {
    const { gguf } = await import('@huggingface/gguf');
    const times: number[] = [];
    let tensors = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await gguf(file, { allowLocalFile: true });
      times.push(performance.now() - t0);
      tensors = r.tensorInfos.length;
    }
    return { tensors, ms: median(times) };
  } catch (e) {
    return (e as Error).message;
  }
}

async function main(): Promise<void> {
  const ri = process.argv.indexOf('--runs');
  const runs = ri >= 0 ? Math.max(1, Number(process.argv[ri + 1])) : 5;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-open-bench-'));
  const cleanup = () => fsp.rm(dir, { recursive: true, force: true });
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)); });
  try {
    const stFile = path.join(dir, 'llama8b-fp8.safetensors');
    const ggFile = path.join(dir, 'tinyllama-f16-q4k.gguf');
    const stTensors = llama8bTensors();
    const ggTensors = tinyLlamaTensors();
    const stSize = await writeSparseSafetensors(stFile, stTensors);
    const ggSize = await writeSparseGguf(ggFile, ggTensors);
    const headerBytes = async (f: string, n: number) => { const h = await fsp.open(f, 'r'); try { const b = Buffer.alloc(n); await h.read(b, 0, n, 0); return b; } finally { await h.close(); } };
    const stHeader = Number((await headerBytes(stFile, 8)).readBigUInt64LE(0));

    const baseline = childPeakRss(['--child-baseline']).mib;
    const rows: string[][] = [];
    const notes: string[] = [];
    const GB = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

    for (const [label, file, size, expectTensors] of [
      ['safetensors', stFile, stSize, stTensors.length],
      ['GGUF v3', ggFile, ggSize, ggTensors.length],
    ] as const) {
      const t = await timeOpen(file, runs);
      if (!t.ok) {
        rows.push([label, GB(size), String(expectTensors), 'not run', `< ${TARGET_MS} ms`, '-', '-', `< ${TARGET_MB} MB`, 'SKIPPED']);
        notes.push(`${label}: open() failed: ${t.error}`);
        continue;
      }
      if (t.tensors !== expectTensors) notes.push(`${label}: expected ${expectTensors} tensors, open() listed ${t.tensors}`);
      const peak = childPeakRss(['--child', file]);
      const med = median(t.times);
      const delta = peak.mib - baseline;
      // The target is on the open's own footprint (node + tsx alone is ~80 MiB); the absolute peak is shown too.
      const pass = med < TARGET_MS && delta < TARGET_MB;
      rows.push([
        t.formatDetail, GB(size), String(t.tensors),
        `${med.toFixed(1)} ms (${Math.min(...t.times).toFixed(1)}-${Math.max(...t.times).toFixed(1)})`, `< ${TARGET_MS} ms`,
        `${peak.mib.toFixed(0)} MiB`, `${Math.round(delta) > 0 ? '+' : ''}${Math.round(delta) || 0} MiB`, `< ${TARGET_MB} MB`, pass ? 'PASS' : 'FAIL',
      ]);
      notes.push(`${label}: runs ${t.times.map((x) => x.toFixed(1)).join(', ')} ms (first run includes JIT warm-up)`);
    }

    const py = pythonSafetensorsHeader(stFile, runs);
    if (py !== undefined) notes.push(`peer: Python struct + json.loads of the same ${(stHeader / 1024).toFixed(0)} KiB safetensors header: ${py.toFixed(1)} ms (median of ${runs})`);
    const hf = await hfGguf(ggFile, runs);
    if (typeof hf === 'string') notes.push(`@huggingface/gguf could not read the GGUF: ${hf}`);
    else notes.push(`peer: @huggingface/gguf parses the same GGUF header (${hf.tensors} tensors) in ${hf.ms.toFixed(1)} ms (median of ${runs})`);

    const head = ['checkpoint', 'size', 'tensors', `time-to-index, median of ${runs} (min-max)`, 'target', 'peak RSS (child)', 'over baseline', 'target', ''];
    const table = [head, head.map(() => '---'), ...rows];
    console.log(`open() benchmark — ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}`);
    console.log(`baseline child (node + tsx + readers loaded, nothing opened): peak RSS ${baseline.toFixed(0)} MiB`);
    console.log(table.map((r) => `| ${r.join(' | ')} |`).join('\n'));
    for (const n of notes) console.log(`- ${n}`);
  } finally {
    await cleanup();
  }
}

if (process.argv.includes('--child') || process.argv.includes('--child-baseline')) {
  void child();
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
