/**
 * buildGraph: checkpoint -> ONNX ModelProto bytes (input `input_ids` int64 [1, seq], output `logits`
 * float [1, seq, vocab]) whose initializers are the checkpoint's tensors decoded to float32 under
 * their own names. The architecture comes from detectArchitecture (architecture.ts).
 */
import type { Checkpoint } from '../checkpoint';
import { detectArchitecture, readSidecarConfig, type ArchitectureOptions, type TransformerArchitecture } from './architecture';
import { checkpointWeights, type WeightSourceOptions } from './graphCommon';
import { buildGpt2Graph } from './graphGpt2';
import { buildLlamaGraph } from './graphLlama';

export async function buildGraph(ckpt: Checkpoint, arch: TransformerArchitecture, opts: WeightSourceOptions = {}): Promise<Uint8Array> {
  const weights = checkpointWeights(ckpt, opts);
  return arch.family === 'gpt2' ? buildGpt2Graph(arch, weights) : buildLlamaGraph(arch, weights);
}

/** Detects the architecture (reading a sidecar meta.json / config.json) and builds the graph. */
export async function buildGraphFor(ckpt: Checkpoint, opts: ArchitectureOptions & WeightSourceOptions = {}): Promise<{ architecture: TransformerArchitecture; model: Uint8Array }> {
  const sidecar = await readSidecarConfig(ckpt.path, opts.configPath);
  const architecture = detectArchitecture(ckpt, sidecar, opts);
  return { architecture, model: await buildGraph(ckpt, architecture, opts) };
}
