/**
 * Compressed checkpoints written by surgery store some matrices as factors (low-rank a @ b, or MPO
 * cores) under derived names, described by the `tensor_scalpel.factorization` metadata entry (see
 * core/checkpoint/safetensorsWriter.ts). To evaluate them with the same graph builders, this view
 * puts each original tensor back, contracted to dense on read, and hides its factors. The graph is
 * then the dense model the factors represent; a graph that multiplies by the factors directly (the
 * speed benefit of compression) is future work.
 */
import { CheckpointError, groupOf, type Checkpoint, type TensorEntry } from '../checkpoint';
import { parseFactorizationMetadata, reconstructFactorized, type Gemm } from '../checkpoint/safetensorsWriter';

/** `ckpt` itself when it holds no factorized tensors, else a view with them contracted back to dense. */
export function densifyFactorized(ckpt: Checkpoint, opts: { gemm?: Gemm } = {}): Checkpoint {
  const factorized = parseFactorizationMetadata(ckpt.metadata, ckpt.path);
  if (factorized.size === 0) return ckpt;
  const hidden = new Set<string>();
  const virtual: TensorEntry[] = [];
  for (const [name, f] of factorized) {
    for (const t of f.tensors) {
      if (!ckpt.get(t)) throw new CheckpointError(ckpt.path, `factor ${t} of ${name} is described in the metadata but not stored`, { tensor: t });
      hidden.add(t);
    }
    const first = ckpt.get(f.tensors[0])!;
    virtual.push({
      name, dtype: 'F32', shape: [...f.shape], params: f.shape[0] * f.shape[1],
      file: first.file, byteOffset: first.byteOffset, byteLength: 0, group: groupOf(name),
      read: (o) => reconstructFactorized(f, (n) => ckpt.get(n)!.read(o), { gemm: opts.gemm, signal: o?.signal }),
      readRaw: async () => { throw new CheckpointError(ckpt.path, 'a factorized tensor has no stored bytes of its own; read() contracts its factors', { tensor: name }); },
    });
  }
  const tensors = [...ckpt.tensors.filter((t) => !hidden.has(t.name)), ...virtual];
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    format: ckpt.format, path: ckpt.path, files: ckpt.files, sizeOnDisk: ckpt.sizeOnDisk, tensors,
    metadata: ckpt.metadata, formatDetail: `${ckpt.formatDetail}, ${factorized.size} factorized tensors contracted to dense`,
    get: (n) => byName.get(n),
    close: () => ckpt.close(),
  };
}
