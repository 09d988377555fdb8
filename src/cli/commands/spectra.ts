import { scanSpectra } from '../../core/jobs/scan';
import type { BackendPreference } from '../../core/jobs/types';
import type { SpectrumMode, TensorSpectrum } from '../../core/analysis/analyze';
import { parse, numberOpt, globToRegExp, table, UsageError, type CliCommand } from '../args';

const MODES: SpectrumMode[] = ['exact', 'estimate', 'auto'];
const BACKENDS: BackendPreference[] = ['native', 'portable', 'auto'];

/** The per-tensor JSON of `spectra --json` (the full TensorSpectrum also has the truncation curve and density). */
export function tensorJson(t: TensorSpectrum): Record<string, unknown> {
  return {
    name: t.name,
    shape: t.shape,
    matrix: t.matrix,
    dtype: t.dtype,
    mode: t.mode,
    ...(t.singularValues ? { singularValues: t.singularValues } : {}),
    ...(t.topSingularValues ? { topSingularValues: t.topSingularValues } : {}),
    vonNeumannEntropy: t.vonNeumannEntropy,
    normalizedEntropy: t.normalizedEntropy,
    renyi2Entropy: t.renyi2Entropy,
    effectiveRank: t.effectiveRank,
    stableRank: t.stableRank,
    spectralNorm: t.spectralNorm,
    frobeniusNorm: t.frobeniusNorm,
    numericalRank: t.numericalRank,
    mpSigma: t.mpSigma,
    mpEdge: t.mpEdge,
    outliers: t.outliers,
    alpha: t.alpha,
    ...(t.confidence ? { confidence: t.confidence } : {}),
    // Estimate mode: how far the top values may be off (topKResidual: a rigorous bound, relative to s_1).
    ...(t.estimateDetails ? { estimate: t.estimateDetails } : {}),
  };
}

const fmt = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

export const spectraCommand: CliCommand = {
  name: 'spectra',
  summary: 'Singular value spectra, entropies and random-matrix metrics of every weight matrix',
  usage: 'tensor-scalpel spectra <file> [--tensors GLOB] [--mode exact|estimate|auto] [--backend native|portable|auto] [--workers N] [--no-cache] [--cache-dir DIR] [--json]',
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      tensors: { type: 'string' },
      mode: { type: 'string' },
      backend: { type: 'string' },
      workers: { type: 'string' },
      'no-cache': { type: 'boolean' },
      'cache-dir': { type: 'string' },
      'library-path': { type: 'string' },
      json: { type: 'boolean' },
    }, this.usage);
    if (positionals.length !== 1) throw new UsageError(`expected one file\nusage: ${this.usage}`);
    const mode = (values.mode ?? 'auto') as SpectrumMode;
    if (!MODES.includes(mode)) throw new UsageError(`--mode expects one of ${MODES.join(', ')}, got "${values.mode}"`);
    const backend = (values.backend ?? 'auto') as BackendPreference;
    if (!BACKENDS.includes(backend)) throw new UsageError(`--backend expects one of ${BACKENDS.join(', ')}, got "${values.backend}"`);
    const workers = numberOpt(values.workers, 'workers', { integer: true, min: 1, max: 256 });
    const pattern = values.tensors !== undefined ? globToRegExp(values.tensors) : undefined;

    const report = await scanSpectra(positionals[0], {
      mode,
      backend,
      libraryPath: values['library-path'],
      workers,
      cache: values['no-cache'] ? false : values['cache-dir'],
      filter: pattern ? (t) => pattern.test(t.name) : undefined,
      signal: io.signal,
      onProgress: (p) => {
        if (p.status === 'started') return;
        io.progress(`[${p.done}/${p.total}] ${p.name} ${p.status}${p.error ? `: ${p.error}` : ''}`);
      },
    });
    const backendName = report.backends.length ? report.backends.join(',') : backend;
    if (values.json) {
      io.out(JSON.stringify({
        mode,
        backend: backendName,
        tensors: report.tensors.map(tensorJson),
        failures: report.failures,
        computed: report.computed,
        cached: report.cached,
        seconds: report.seconds,
      }, null, 2));
    } else {
      const rows = [['name', 'shape', 'mode', 'S', 'S/ln r', 'S2', 'eff.rank', 'stable', '||W||2', 'MP out', 'alpha']];
      for (const t of report.tensors) {
        const ci = t.confidence ? ` ±${fmt((t.confidence.vonNeumannEntropy[1] - t.confidence.vonNeumannEntropy[0]) / 2, 3)}` : '';
        rows.push([t.name, `[${t.shape.join(', ')}]`, t.mode, fmt(t.vonNeumannEntropy) + ci, fmt(t.normalizedEntropy), fmt(t.renyi2Entropy),
          fmt(t.effectiveRank, 1), fmt(t.stableRank, 2), fmt(t.spectralNorm), String(t.outliers), fmt(t.alpha, 2)]);
      }
      io.out(`${report.path}: ${report.tensors.length} matrices, backend ${backendName}, ${report.computed} computed, ${report.cached} cached, ${report.seconds.toFixed(2)} s\n`);
      io.out(table(rows, ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
      for (const f of report.failures) io.err(`failed: ${f.name}: ${f.message}`);
    }
    return report.failures.length > 0 ? 1 : 0;
  },
};
