/**
 * Prints what the core reader says about each file given on the command line, as JSON:
 * { "<path>": { totalParams, tensorNames } | { error } }. The e2e runner compares the UI with it.
 * Run: node --import tsx test/e2e/expected.ts FILE...
 */
import { open, summarize } from '../../src/core/checkpoint';

async function main(): Promise<void> {
const out: Record<string, unknown> = {};
for (const file of process.argv.slice(2)) {
  try {
    const ckpt = await open(file);
    try {
      const s = summarize(ckpt);
      out[file] = { totalParams: s.totalParams, tensorNames: s.tensors.map((t) => t.name), formatDetail: s.formatDetail };
    } finally {
      await ckpt.close();
    }
  } catch (err) {
    out[file] = { error: err instanceof Error ? err.message : String(err) };
  }
}
process.stdout.write(JSON.stringify(out));
}

void main();
