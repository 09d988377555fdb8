/**
 * The report's charts: the shared d3 views of the webviews (webview/shared/views), drawn with the
 * print theme (concrete colours on white), with their title and legend inside the SVG, and rendered
 * to static markup through linkedom (./svg). One drawing code: what the report embeds is what the
 * spectrum, model-map and bond-dimension webviews draw from the same data.
 */
import {
  bondProfileView, energyView, lineView, modelMapView, spectrumView, PRINT_THEME,
  type BondProfileViewSpec, type EnergyViewSpec, type LineViewSpec, type ModelMapViewSpec, type SpectrumViewSpec,
} from '../../webview/shared/views';
import { renderStatic } from './svg';

/** The print theme's colours by name, for the report's CSS (good / bad marks, links). */
const S = PRINT_THEME.series!;
export const PALETTE = { blue: S[0], orange: S[1], green: S[2], purple: S[3], red: S[4], grey: PRINT_THEME.muted!, text: PRINT_THEME.text! };

/** Series tones (indices into the theme's series colours, classes series-<i>). */
export const TONE = { blue: 0, orange: 1, green: 2, purple: 3, red: 4 } as const;

/** Escapes text for HTML/XML character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** In the report every chart shows its title and legend inside the SVG (it is read without the page around it, e.g. copied out). */
const STATIC = { heading: true, legend: true } as const;

export function spectrumChart(spec: SpectrumViewSpec): string {
  return renderStatic((doc) => spectrumView(doc, { ...STATIC, ...spec }, PRINT_THEME));
}

export function energyChart(spec: EnergyViewSpec): string {
  return renderStatic((doc) => energyView(doc, { ...STATIC, ...spec }, PRINT_THEME));
}

export function lineChart(spec: LineViewSpec): string {
  return renderStatic((doc) => lineView(doc, { ...STATIC, ...spec }, PRINT_THEME));
}

export function bondProfileChart(spec: BondProfileViewSpec): string {
  return renderStatic((doc) => bondProfileView(doc, { ...STATIC, ...spec }, PRINT_THEME));
}

/** The model map has no series legend: its colour ramp is drawn under the cells. */
export function modelMapChart(spec: ModelMapViewSpec): string {
  return renderStatic((doc) => modelMapView(doc, { heading: true, ...spec }, PRINT_THEME));
}
