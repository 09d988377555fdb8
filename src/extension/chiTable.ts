/**
 * The bond-dimension editor's tables live in core (src/core/analysis/chiTable.ts) so the worker pool
 * can compute them off the extension host; re-exported here for the extension's callers and tests.
 */
export { chiTable, exactBondSpectra, compressTensorTable, type ChiTableInput, type CompressTableResult, type SiteFactors } from '../core/analysis/chiTable';
