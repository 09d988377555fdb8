import * as path from 'node:path';
import { open } from '../../core/checkpoint';
import { writeNpy } from '../../core/checkpoint/npy';
import { parse, UsageError, type CliCommand } from '../args';

export const exportCommand: CliCommand = {
  name: 'export',
  summary: 'Write one tensor, decoded to float32, as .npy',
  usage: 'tensor-scalpel export <file> --tensor NAME --out x.npy [--json]',
  async run(argv, io) {
    const { values, positionals } = parse(argv, { tensor: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } }, this.usage);
    if (positionals.length !== 1 || !values.tensor || !values.out) throw new UsageError(`expected a file, --tensor and --out\nusage: ${this.usage}`);
    const out = path.resolve(values.out);
    if (out === path.resolve(positionals[0])) throw new UsageError('--out must not be the input file');
    const ckpt = await open(positionals[0]);
    try {
      const t = ckpt.get(values.tensor);
      if (!t) throw new UsageError(`no tensor named "${values.tensor}" in ${ckpt.path} (${ckpt.tensors.length} tensors; see inspect)`);
      const data = await t.read({ signal: io.signal });
      const shape = t.shape.length ? t.shape : [];
      await writeNpy(out, data, shape);
      if (values.json) io.out(JSON.stringify({ name: t.name, shape, dtype: 'float32', sourceDtype: t.dtype, out }));
      else io.out(`wrote ${t.name} [${shape.join(', ')}] (${t.dtype} -> float32) to ${out}`);
    } finally {
      await ckpt.close();
    }
    return 0;
  },
};
