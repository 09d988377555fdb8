import { open } from '../../core/checkpoint';
import { getLinalgBackend } from '../../core/linalg';
import { decomposeMpo, mpoReport, FactorisationError, DEFAULT_ROUTES, type MpoTruncation } from '../../core/analysis/mpo';
import { lowRankAtParamBudget } from '../../core/analysis/lowrank';
import { listOpt, numberOpt, parse, table, UsageError, type CliCommand } from '../args';

const USAGE = 'tensor-scalpel mpo <file> --tensor NAME [--sites N (default 2) | --out-factors 8,16 --in-factors 8,16 [--pad]] [--chi N | --error E] [--strategy auto|pad|fewer-sites|exact] [--spectra exact|sweep] [--backend auto|native|portable] [--json]';

function fmt(x: number | null, digits = 4): string {
  return x === null ? '-' : x.toFixed(digits);
}

function sci(x: number): string {
  return x === 0 ? '0' : x.toExponential(2);
}

/**
 * `tensor-scalpel mpo`: TT-SVD of one weight matrix into a matrix product operator, with the
 * entanglement entropy of every bond cut (see src/core/analysis/mpo.ts for the mathematics).
 * Tensors with more than two dimensions are read as [shape[0], product of the rest].
 *
 * --sites N            automatic balanced factorisation (default 2); sizes that do not factorise well
 *                      are zero-padded or given fewer sites (--strategy, see mpoFactors.ts)
 * --out-factors/--in-factors   explicit factorisation; must multiply to the shape (--pad: at least to it)
 * --chi N | N,N,..     maximum bond dimension (one, or one per bond)
 * --error E            target relative Frobenius error of the whole matrix (TT-SVD bound)
 * --spectra exact      (default) full bond-cut spectra of the original tensor; `sweep` is faster on
 *                      big matrices and reports only what the sweep computed
 * --json               {name, shape, outFactors, inFactors, bondDimensions, bondEntropies, bondSpectra,
 *                      params, denseParams, relativeError, maxBondEntropies, discardedWeights, padding?,
 *                      ...}: the MpoReport of mpo.ts plus the low-rank baseline at the same parameter count
 */
export const mpoCommand: CliCommand = {
  name: 'mpo',
  summary: 'Matrix product operator (tensor-train) of one tensor: bond dimensions, bond-cut entropies, parameters',
  usage: USAGE,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      tensor: { type: 'string' },
      sites: { type: 'string' },
      'out-factors': { type: 'string' },
      'in-factors': { type: 'string' },
      pad: { type: 'boolean' },
      chi: { type: 'string' },
      error: { type: 'string' },
      strategy: { type: 'string' },
      spectra: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean' },
    }, USAGE);
    if (positionals.length !== 1 || !values.tensor) throw new UsageError(`expected one file and --tensor NAME\nusage: ${USAGE}`);
    const sites = numberOpt(values.sites, 'sites', { integer: true, min: 1, max: 64 });
    const outFactors = listOpt(values['out-factors'], 'out-factors');
    const inFactors = listOpt(values['in-factors'], 'in-factors');
    // --chi 8 caps every bond; --chi 8,16,8 gives one cap per bond.
    const chi = values.chi?.includes(',') ? listOpt(values.chi, 'chi') : numberOpt(values.chi, 'chi', { integer: true, min: 1 });
    const error = numberOpt(values.error, 'error', { min: 0, max: 1 });
    if ((outFactors === undefined) !== (inFactors === undefined)) throw new UsageError('--out-factors and --in-factors go together');
    if (outFactors && sites !== undefined) throw new UsageError('give either --sites or --out-factors/--in-factors, not both');
    const strategy = values.strategy ?? 'auto';
    if (!['auto', 'pad', 'fewer-sites', 'exact'].includes(strategy)) throw new UsageError(`--strategy expects auto, pad, fewer-sites or exact, got "${strategy}"`);
    const spectra = values.spectra ?? 'exact';
    if (spectra !== 'exact' && spectra !== 'sweep') throw new UsageError(`--spectra expects exact or sweep, got "${spectra}"`);
    const preference = values.backend ?? 'auto';
    if (!['auto', 'native', 'portable'].includes(preference)) throw new UsageError(`--backend expects auto, native or portable, got "${preference}"`);

    const ckpt = await open(positionals[0]);
    try {
      const t = ckpt.get(values.tensor);
      if (!t) throw new UsageError(`no tensor named "${values.tensor}" in ${ckpt.path} (${ckpt.tensors.length} tensors; see inspect)`);
      if (t.shape.length < 2) throw new UsageError(`tensor ${t.name} has shape [${t.shape.join(', ')}]; an MPO needs a matrix (2 or more dimensions)`);
      if (t.params === 0) throw new UsageError(`tensor ${t.name} has shape [${t.shape.join(', ')}]: it is empty`);
      const rows = t.shape[0];
      const cols = t.params / rows;
      io.progress(`reading ${t.name} [${t.shape.join(', ')}] (${t.dtype})`);
      const w = await t.read({ signal: io.signal });
      const backend = await getLinalgBackend(preference as 'auto');
      const truncation: MpoTruncation = {};
      if (chi !== undefined) truncation.chi = chi;
      if (error !== undefined) truncation.relativeError = error;
      let mpo;
      try {
        mpo = await decomposeMpo(w, rows, cols, {
          backend,
          truncation,
          sites: outFactors ? undefined : (sites ?? 2),
          outFactors,
          inFactors,
          siteOptions: { strategy: strategy as 'auto', allowPadding: values.pad },
          spectra: spectra as 'exact',
          signal: io.signal,
          progress: (m) => io.progress(m),
        });
      } catch (e) {
        if (e instanceof FactorisationError || e instanceof RangeError) throw new UsageError(`${t.name} [${rows}, ${cols}]: ${e.message}`);
        throw e;
      }
      const report = mpoReport(mpo);
      // The side-by-side baseline: plain low-rank SVD with at most the MPO's parameter count.
      // (Skipped above 8192 on the smaller side, where the full spectrum needs a > 512 MB Gram.)
      const lowRank = Math.min(rows, cols) <= DEFAULT_ROUTES.gramMaxSide
        ? lowRankAtParamBudget(await backend.singularValues({ rows, cols, data: w }, { signal: io.signal }), rows, cols, mpo.params)
        : null;
      const { shape: _shape, ...rest } = report;
      const json = {
        name: t.name,
        shape: [rows, cols],
        ...rest,
        lowRankAtSameParams: lowRank,
        backend: backend.description,
      };
      if (values.json) {
        io.out(JSON.stringify(json, null, 2));
        return 0;
      }
      const lines: string[] = [];
      lines.push(`${t.name} [${rows}, ${cols}] as an MPO of ${mpo.outFactors.length} site${mpo.outFactors.length === 1 ? '' : 's'}`);
      lines.push(`  out factors ${mpo.outFactors.join(' x ')}, in factors ${mpo.inFactors.join(' x ')} (site plan: ${mpo.plan.strategy}${mpo.plan.strategy === 'fewer-sites' ? `, ${mpo.plan.requestedSites} asked` : ''})`);
      if (report.padding) lines.push(`  zero-padded by ${report.padding.rows} rows and ${report.padding.cols} columns to [${report.padding.paddedShape.join(', ')}]; removed on reconstruction, counted in the parameters`);
      lines.push(`  parameters ${mpo.params.toLocaleString('en-US')} vs dense ${mpo.denseParams.toLocaleString('en-US')} (${report.compression.toFixed(2)}x), relative error ${sci(mpo.relativeError)}`);
      if (lowRank) lines.push(`  low-rank SVD with <= the same parameters: rank ${lowRank.rank}, ${lowRank.params.toLocaleString('en-US')} parameters, relative error ${sci(lowRank.relativeError)}`);
      lines.push('');
      const rowsOut = [['bond', 'cut (L x R)', 'chi', 'max rank', 'entropy', 'max', 'S/Smax', 'Renyi-2', 'discarded (rel)', 'spectrum']];
      for (const b of mpo.bonds) {
        rowsOut.push([
          String(b.index), `${b.leftDim} x ${b.rightDim}`, String(b.dimension), String(b.maxRank), fmt(b.entropy), fmt(b.maxEntropy),
          b.entropy === null || b.maxEntropy === 0 ? '-' : (b.entropy / b.maxEntropy).toFixed(3), fmt(b.renyi2), sci(b.relativeDiscardedWeight), b.spectrumSource,
        ]);
      }
      if (mpo.bonds.length) lines.push(table(rowsOut, ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
      else lines.push('  one site: the MPO is the matrix itself (no bonds)');
      io.out(lines.join('\n'));
    } finally {
      await ckpt.close();
    }
    return 0;
  },
};
