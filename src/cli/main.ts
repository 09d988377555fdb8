import { CheckpointError, CancelledError } from '../core/checkpoint/errors';
import { UsageError, type CliCommand, type CliIO } from './args';
import { inspectCommand } from './commands/inspect';
import { exportCommand } from './commands/export';
import { spectraCommand } from './commands/spectra';
import { mpoCommand } from './commands/mpo';
import { evalCommand } from './commands/eval';
import { generateCommand } from './commands/generate';
import { directionCommand } from './commands/direction';
import { compressionTableCommand } from './commands/table';
import { compressCommand } from './commands/compress';
import { ablateCommand } from './commands/ablate';
import { injectCommand } from './commands/inject';
import { applyCommand } from './commands/apply';
import { tourCommand } from './commands/tour';

/** Every subcommand of `tensor-scalpel`; later features add theirs here. */
export const COMMANDS: CliCommand[] = [
  tourCommand, inspectCommand, exportCommand, spectraCommand, mpoCommand, evalCommand, generateCommand,
  compressCommand, ablateCommand, injectCommand, applyCommand, directionCommand, compressionTableCommand];

function help(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return ['tensor-scalpel: look inside neural-network checkpoints with tensor-network mathematics', '', 'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), '', 'run `tensor-scalpel <command> --help` for a command\'s usage'].join('\n');
}

export async function main(argv: string[], io?: Partial<CliIO>): Promise<number> {
  const ac = new AbortController();
  const cio: CliIO = {
    out: io?.out ?? ((t) => process.stdout.write(t + '\n')),
    err: io?.err ?? ((t) => process.stderr.write(t + '\n')),
    progress: io?.progress ?? ((t) => process.stderr.write(t + '\n')),
    signal: io?.signal ?? ac.signal,
  };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    cio.out(help());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    cio.err(`unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    cio.out(`${cmd.summary}\nusage: ${cmd.usage}`);
    return 0;
  }
  try {
    return await cmd.run(rest, cio);
  } catch (e) {
    if (e instanceof UsageError) { cio.err(`error: ${e.message}`); return 2; }
    if (e instanceof CheckpointError) { cio.err(`error: ${e.message}`); return 1; }
    if (e instanceof CancelledError) { cio.err('cancelled'); return 130; }
    cio.err(`error: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}

// Run when executed directly (the bundled out/cli.js, or `tsx src/cli/main.ts`).
const isMain = typeof require !== 'undefined' && require.main === module;
if (isMain) {
  process.on('SIGINT', () => process.exit(130));
  // `tensor-scalpel inspect big.gguf | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
