/**
 * Surgery: recipes (what to compress / ablate / inject), global budgets, the edit maths and the
 * streaming apply engine. See recipe.ts for the document, apply.ts for the engine.
 */
export * from './recipe';
export { allocateBudget, uniformAllocation, budgetStates, lowerHull, BudgetError, type BudgetInput, type BudgetAllocation, type BudgetChoice, type BudgetState, type SvdBudgetInput, type MpoBudgetInput } from './budget';
export {
  residualWriters, writerAxis, ablateDirection, directionComponent, removeTopDirections, injectionVectors, injectRankOne, loadDirection, normalise,
  type ResidualWriter, type ResidualWriterReport, type WriterKind, type RemovedDirections,
} from './ablate';
export {
  applyRecipe, provenanceOf, sha256File, RECIPE_METADATA_KEY, PROVENANCE_METADATA_KEY, INPUT_SHA256_METADATA_KEY, TOOL_NAME,
  type ApplyOptions, type ApplyProgress, type ApplyResult, type ApplyTotals, type TensorReport, type Provenance, type FileProvenance,
} from './apply';
export { reconstructMpoChunked } from './reconstruct';
export { applyResultJson, formatApplyResult, type ApplyJson } from './report';
