import type { CliIO } from '../../src/cli/args';

export function capture(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), progress: (t) => err.push(t), signal: new AbortController().signal }, out, err };
}
