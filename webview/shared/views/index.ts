/**
 * The d3 views the webviews draw and the report renders to static SVG (one drawing code for both).
 * Each takes a Document, plain data and a theme, and returns its <svg> plus the geometry the
 * webviews' interactive layers need. The host type-checks against index.host.ts (see there).
 */
export { lineView, LINE_MARGIN, type LineView } from './lineView';
export { spectrumView, energyView } from './spectrumView';
export { modelMapView, rampPosition, type ModelMapView } from './modelMapView';
export { bondProfileView, BOND_MARGIN, type BondProfileView } from './bondProfileView';
export { logTicks, SVG_NS } from './frame';
export * from './types';
