/**
 * buildGraph: checkpoint -> ONNX ModelProto bytes (input `input_ids` int64 [1, seq], output `logits`
 * float [1, seq, vocab]) whose initializers are the checkpoint's tensors decoded to float32 under
 * their own names. The architecture comes from detectArchitecture (architecture.ts).
 */
import { CheckpointError, type Checkpoint } from '../checkpoint';
import { detectArchitecture, readSidecarConfig, type ArchitectureOptions, type TransformerArchitecture } from './architecture';
import { checkpointWeights, type GraphBuildOptions, type WeightSourceOptions } from './graphCommon';
import { buildGpt2Graph } from './graphGpt2';
import { buildLlamaGraph } from './graphLlama';

/**
 * A ModelProto is one protobuf message, which cannot exceed 2 GiB; the weights go in as float32, so
 * models above ~500M parameters would need external data (not implemented: these graphs are for
 * checking small and edited models). Refused up front, before any tensor is read.
 */
export const MAX_GRAPH_WEIGHT_BYTES = 2 ** 31 - 64 * 2 ** 20;

export async function buildGraph(ckpt: Checkpoint, arch: TransformerArchitecture, opts: WeightSourceOptions & GraphBuildOptions = {}): Promise<Uint8Array> {
  let bytes = 0;
  for (const t of ckpt.tensors) bytes += t.params * 4;
  if (bytes > MAX_GRAPH_WEIGHT_BYTES) {
    throw new CheckpointError(ckpt.path, `${(bytes / 2 ** 30).toFixed(2)} GiB of float32 weights: too large for an in-memory ONNX graph (protobuf's 2 GiB limit); external-data graphs are not implemented`);
  }
  const weights = checkpointWeights(ckpt, opts);
  const build = { captureResiduals: opts.captureResiduals, stats: opts.stats };
  return arch.family === 'gpt2' ? buildGpt2Graph(arch, weights, build) : buildLlamaGraph(arch, weights, build);
}

/** Detects the architecture (reading a sidecar meta.json / config.json) and builds the graph. */
export async function buildGraphFor(ckpt: Checkpoint, opts: ArchitectureOptions & WeightSourceOptions & GraphBuildOptions = {}): Promise<{ architecture: TransformerArchitecture; model: Uint8Array }> {
  const sidecar = await readSidecarConfig(ckpt.path, opts.configPath);
  const architecture = detectArchitecture(ckpt, sidecar, opts);
  return { architecture, model: await buildGraph(ckpt, architecture, opts) };
}
