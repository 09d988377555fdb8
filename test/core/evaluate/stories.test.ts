import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import { open } from '../../../src/core/checkpoint';
import { writeSafetensors } from '../../../src/core/checkpoint/safetensorsWriter';
import { generate, loadModel, requireTokenizer, SentencePieceTokenizer, type LoadModelOptions } from '../../../src/core/evaluate';
import { STORIES, STORIES_GGUF, storiesMeta } from './fixtures';

const SAMPLE = storiesMeta().greedy_sample;

/**
 * Greedy generation from BOS, compared with meta.json's greedy_sample. That sample is a token-by-token
 * transcript (pieces with "▁" shown as a space, byte pieces such as <0x0A> as written), so it is
 * compared with the same rendering of our tokens, exactly, over as many tokens as it spans; and our
 * decoded text must equal the sample read as text (<0x0A> = newline, without the dummy-prefix space).
 */
async function greedyMatchesSample(file: string, opts: LoadModelOptions = {}): Promise<void> {
  const m = await loadModel(file, opts);
  try {
    const tok = requireTokenizer(m);
    assert.ok(tok instanceof SentencePieceTokenizer, `${file}: ${tok.source}`);
    const ids: number[] = [];
    let rendered = '';
    const prefix = [tok.bos!];
    // One token at a time until the transcript is as long as the sample (it ends on a token boundary).
    while (rendered.length < SAMPLE.length && ids.length < 200) {
      const g = await generate(m, [...prefix, ...ids], { maxTokens: 1, stopAtEos: false });
      ids.push(g.ids[0]);
      rendered = tok.renderPieces(ids);
    }
    assert.equal(rendered, SAMPLE, `${path.basename(file)} (${ids.length} tokens)`);
    assert.equal(tok.decode([tok.bos!, ...ids]), SAMPLE.replace(/<0x0A>/g, '\n').replace(/^ /, ''));
  } finally {
    await m.close();
  }
}

test('stories260K GGUF (F32, the real llama.cpp file) generates the recorded greedy sample', () => greedyMatchesSample(STORIES_GGUF));
test('stories260K safetensors (HF names, rope hint in __metadata__) generates the recorded greedy sample', () => greedyMatchesSample(path.join(STORIES, 'stories260K.safetensors')));
test('stories260K .pt (no hint in the file: ropeOrder interleaved given) generates the recorded greedy sample', () => greedyMatchesSample(path.join(STORIES, 'stories260K.pt'), { ropeOrder: 'interleaved' }));
test('stories260K .onnx run as it is generates the recorded greedy sample', () => greedyMatchesSample(path.join(STORIES, 'stories260K.onnx')));
test('stories260K_q8_0.gguf (Q8_0 dequantised, ffn_down F16) generates the recorded greedy sample', () => greedyMatchesSample(path.join(STORIES, 'stories260K_q8_0.gguf')));

test('the .pt read with the wrong RoPE order (its default, half) does not reproduce the sample', async () => {
  const m = await loadModel(path.join(STORIES, 'stories260K.pt'));
  try {
    const tok = requireTokenizer(m);
    const g = await generate(m, [tok.bos!], { maxTokens: 30 });
    assert.notEqual((tok as SentencePieceTokenizer).renderPieces(g.ids), SAMPLE.slice(0, (tok as SentencePieceTokenizer).renderPieces(g.ids).length));
  } finally { await m.close(); }
});

test('Hugging Face rotate-half order: Q/K rows permuted as transformers\' converter does, generates the sample too', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-rope-'));
  const src = await open(path.join(STORIES, 'stories260K.safetensors'));
  try {
    const headDim = 8;
    // convert_llama_weights_to_hf.permute: w.view(heads, d/2, 2, in).transpose(1, 2): within a head,
    // row 2i + t moves to row t * d/2 + i.
    const permute = (v: Float32Array, rows: number, cols: number) => {
      const out = new Float32Array(v.length);
      for (let r = 0; r < rows; r++) {
        const h = Math.floor(r / headDim), within = r % headDim, i = within >> 1, t = within & 1;
        const to = h * headDim + t * (headDim / 2) + i;
        out.set(v.subarray(r * cols, (r + 1) * cols), to * cols);
      }
      return out;
    };
    const target = path.join(dir, 'model.safetensors');
    await writeSafetensors(target, src.tensors.map((t) => ({
      name: t.name, shape: t.shape, dtype: 'F32',
      data: async () => (/(q_proj|k_proj)\.weight$/.test(t.name) ? permute(await t.read(), t.shape[0], t.shape[1]) : t.read()),
    })), { inputs: src.files, metadata: { config: String(src.metadata.config) } });
    await fsp.copyFile(path.join(STORIES, 'vocab.json'), path.join(dir, 'vocab.json'));
    await greedyMatchesSample(target); // no hint: Hugging Face names default to 'half'
  } finally {
    await src.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
