/**
 * What the CLI (and the extension's output channel) prints for an applied recipe: the JSON document
 * (per tensor {name, params, denseParams, relativeError, ...} and totals {originalParams,
 * totalParams, ratio, out}) and a plain-text table.
 */
import type { ApplyResult } from './apply';

export interface ApplyJson {
  tensors: Array<{ name: string; params: number; denseParams: number; relativeError: number; operations: string[]; storage: string; stored: string[]; rank?: number; bondDimensions?: number[]; removedSingularValues?: number[] }>;
  totals: { originalParams: number; totalParams: number; ratio: number; out: string };
  format: string;
  files: string[];
  sidecar?: string;
  inputSha256: string;
  residualWriters?: Array<{ name: string; kind: string; residualAxis: number }>;
  budget?: { target: number; totalParams: number; totalError: number };
  warnings: string[];
}

export function applyResultJson(r: ApplyResult): ApplyJson {
  return {
    tensors: r.tensors.map((t) => ({
      name: t.name, params: t.params, denseParams: t.denseParams, relativeError: t.relativeError, operations: t.operations, storage: t.storage, stored: t.stored,
      ...(t.rank !== undefined ? { rank: t.rank } : {}), ...(t.bondDimensions ? { bondDimensions: t.bondDimensions } : {}),
      ...(t.removedSingularValues ? { removedSingularValues: t.removedSingularValues } : {}),
    })),
    totals: r.totals,
    format: r.format,
    files: r.files,
    ...(r.sidecar ? { sidecar: r.sidecar } : {}),
    inputSha256: r.provenance.input.sha256,
    ...(r.residual ? { residualWriters: r.residual.writers.map((w) => ({ name: w.name, kind: w.kind, residualAxis: w.residualAxis })) } : {}),
    ...(r.budget ? { budget: { target: r.budget.target, totalParams: r.budget.totalParams, totalError: r.budget.totalError } } : {}),
    warnings: r.warnings,
  };
}

const int = (n: number) => n.toLocaleString('en-US');

function table(rows: string[][], right: boolean[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (right[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

/** The human-readable report: one row per changed tensor, then the totals. */
export function formatApplyResult(r: ApplyResult): string {
  const lines: string[] = [];
  if (r.tensors.length > 0) {
    const rows = [['tensor', 'operations', 'params', 'dense', 'x fewer', 'rel. error']];
    for (const t of r.tensors) {
      rows.push([t.name, t.operations.join(', '), int(t.params), int(t.denseParams), (t.denseParams / Math.max(1, t.params)).toFixed(2), t.relativeError.toExponential(3)]);
    }
    lines.push(table(rows, [false, false, true, true, true, true]));
    lines.push('');
  } else {
    lines.push('no tensor changed');
  }
  const t = r.totals;
  lines.push(`parameters ${int(t.totalParams)} of ${int(t.originalParams)} (ratio ${t.ratio.toFixed(4)}, ${(1 / t.ratio).toFixed(2)}x fewer)`);
  if (r.budget) lines.push(`budget: target ${int(r.budget.target)}, allocated ${int(r.budget.totalParams)}, total relative discarded weight ${r.budget.totalError.toExponential(3)}`);
  if (r.residual) lines.push(`residual writers (${r.residual.family}, d_model ${r.residual.dModel ?? '?'}): ${r.residual.writers.map((w) => w.name).join(', ')}`);
  lines.push(`wrote ${r.files.join(', ')}`);
  lines.push(`input sha256 ${r.provenance.input.sha256}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
