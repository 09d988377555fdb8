import { open, summarize } from '../../core/checkpoint';
import { parse, table, UsageError, type CliCommand } from '../args';

export const inspectCommand: CliCommand = {
  name: 'inspect',
  summary: 'List a checkpoint\'s tensors (reads the header only)',
  usage: 'tensor-scalpel inspect <file> [--json]',
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } }, this.usage);
    if (positionals.length !== 1) throw new UsageError(`expected one file\nusage: ${this.usage}`);
    const ckpt = await open(positionals[0]);
    try {
      const s = summarize(ckpt);
      if (values.json) {
        io.out(JSON.stringify({
          format: s.format,
          formatDetail: s.formatDetail,
          tensors: s.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, params: t.params, group: t.group })),
          totalParams: s.totalParams,
          metadata: s.metadata,
        }, null, 2));
      } else {
        io.out(`${s.path}\n${s.formatDetail}, ${s.tensors.length} tensors, ${s.totalParams.toLocaleString('en-US')} parameters, ${s.sizeOnDisk.toLocaleString('en-US')} bytes\n`);
        const rows = [['name', 'shape', 'dtype', 'params', 'group']];
        for (const t of s.tensors) rows.push([t.name, `[${t.shape.join(', ')}]`, t.dtype, t.params.toLocaleString('en-US'), t.group]);
        io.out(table(rows, ['l', 'l', 'l', 'r', 'l']));
      }
    } finally {
      await ckpt.close();
    }
    return 0;
  },
};
