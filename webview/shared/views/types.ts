/**
 * The data and options of the shared d3 views (webview/shared/views), and the themes they draw with.
 * DOM-free on purpose: the extension host's tsconfig (no DOM lib) reads this file through
 * index.host.ts, the webview's tsconfig reads it through the views themselves.
 *
 * One view, two themes. In a webview every colour comes from the stylesheet (base.css colours the
 * views' classes with --vscode-* variables, so a theme switch recolours without a redraw): the
 * STYLESHEET_THEME leaves colours unset. The static report is opened offline on a white page with no
 * stylesheet for the charts: PRINT_THEME gives concrete colours, written as presentation attributes.
 */
import { interpolateViridis } from 'd3';

export interface ChartTheme {
  /** Colours; undefined = leave it to the stylesheet (the element's class carries the meaning). */
  text?: string;
  muted?: string;
  axis?: string;
  grid?: string;
  background?: string;
  /** Series colours by tone index (class series-<i mod 6>). */
  series?: readonly string[];
  /** The Marchenko-Pastur edge and the outliers circled above it. */
  edge?: string;
  /** The bars of the bond profile. */
  bar?: string;
  /** The single colour of the model map cells (their fill-opacity carries the value). */
  cell?: string;
  /** A sequential colour ramp t in [0, 1] -> colour for the model map; replaces the opacity ramp. */
  sequential?: (t: number) => string;
  fontFamily?: string;
  fontSize?: number;
}

/** The webview theme: classes only; base.css and overview/style.css colour them from the VS Code theme. */
export const STYLESHEET_THEME: ChartTheme = {};

/**
 * The report theme: colours that keep >= 3:1 contrast on white (the darker half of Tableau 10) and
 * viridis for the map (ordered, perceptually uniform, readable in greyscale print).
 */
export const PRINT_THEME: ChartTheme = {
  text: '#222222',
  muted: '#555555',
  axis: '#555555',
  grid: '#e6e6e6',
  background: '#ffffff',
  series: ['#1f77b4', '#e65100', '#2e7d32', '#6a1b9a', '#c62828', '#8a6d00'],
  edge: '#c62828',
  bar: '#1f77b4',
  cell: '#1f77b4',
  sequential: interpolateViridis,
  fontFamily: "system-ui, -apple-system, 'Segoe UI', sans-serif",
  fontSize: 12,
};

/** Number of distinct series tones (classes series-0 .. series-5 in base.css). */
export const TONES = 6;

export interface Margin { top: number; right: number; bottom: number; left: number }

/** What every view has: its name for people and screen readers, its size, optional in-SVG title and legend. */
export interface ChartFrame {
  /** id of the <svg> (its <desc> gets `${id}-desc`). */
  id?: string;
  /** Short name: the <title> and, with `heading`, a visible title inside the SVG. */
  title: string;
  /** Full sentence for screen readers: aria-label and <desc>. Default: the title. */
  description?: string;
  width?: number;
  height?: number;
  margin?: Margin;
  /** Draw the title inside the SVG (the report; a webview has its own heading). */
  heading?: boolean;
  /** Draw a legend inside the SVG (the report; the spectrum webview has an HTML legend with controls). */
  legend?: boolean;
}

export type ScaleKind = 'linear' | 'log';

export interface LineSeries {
  label: string;
  /** [x, y] in data units; points a log axis cannot show (<= 0, not finite) are left out. */
  points: ReadonlyArray<readonly [number, number]>;
  /** Colour index (class series-<tone mod 6>); default the series' position. */
  tone?: number;
  dashed?: boolean;
  /** A dot at every point (class point); default: at most 80 points. */
  markers?: boolean;
}

/** A reference line across the plot: horizontal at y = value or vertical at x = value. */
export interface RuleSpec {
  axis: 'x' | 'y';
  value: number;
  label: string;
  /** Extra class of the <line> (e.g. mp-edge); the rule group is always `rule`. */
  cls?: string;
  /** 'edge' uses the theme's edge colour, 'muted' (default) the muted one. */
  tone?: 'edge' | 'muted';
}

/** A circled point on top of the series (e.g. a singular value above the Marchenko-Pastur edge). */
export interface MarkSpec { x: number; y: number; title: string }

export interface LineViewSpec extends ChartFrame {
  xLabel: string;
  yLabel: string;
  xScale?: ScaleKind;
  yScale?: ScaleKind;
  /** Fixed domains; otherwise the data's extent. */
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Round the domain out to nice bounds (d3 `nice`); default true. Off where pixels must invert exactly. */
  niceX?: boolean;
  niceY?: boolean;
  series: LineSeries[];
  rules?: RuleSpec[];
  marks?: MarkSpec[];
  /** Class of the circled marks (e.g. outlier) and their legend entry. */
  markClass?: string;
  markLabel?: string;
}

export interface PlotArea { left: number; right: number; top: number; bottom: number; width: number; height: number }

/** What a chart view returns besides its <svg>: the pixel mapping the interactive layers need. */
export interface PlotGeometry {
  x: (v: number) => number;
  y: (v: number) => number;
  plot: PlotArea;
  xTicks: number[];
  yTicks: number[];
}

export interface SpectrumViewSpec extends ChartFrame {
  /** Descending singular values, drawn as s_i against i = 1..r on log-log axes. */
  spectra: Array<{ label: string; values: readonly number[]; mpEdge?: number; tone?: number; dashed?: boolean }>;
  /** Values at or below zeroFloor x the largest are not drawn (float32 zeros); default 1e-6. */
  zeroFloor?: number;
  /** Right end of the rank axis (default: the longest spectrum); the energy chart beside it shares it. */
  maxRank?: number;
  xLabel?: string;
  yLabel?: string;
}

export interface EnergyViewSpec extends ChartFrame {
  /** errors[k] = ||W - W_k||_F / ||W||_F for k = 0..K; drawn as energy 1 - errors[k]^2 against k >= 1. */
  series: Array<{ label: string; errors: readonly number[]; tone?: number; dashed?: boolean }>;
  maxRank?: number;
  xLabel?: string;
  yLabel?: string;
}

export interface MapCellSpec {
  name: string;
  row: number;
  col: number;
  depth: number | null;
  /** The metric's value, null when undefined for this tensor. */
  value: number | null;
  /** False until the scan has reached this tensor. */
  scanned: boolean;
}

export interface ModelMapViewSpec extends ChartFrame {
  rows: string[];
  columns: string[];
  cells: MapCellSpec[];
  /** Colour domain [lo, hi] of the metric. */
  domain: [number, number];
  metricLabel: string;
  cellSize?: number;
  labelWidth?: number;
  /** Write each value inside its cell. */
  showValues?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** A cell's native tooltip (<title>); null for none. Default: "name: metric value". */
  cellTitle?: (cell: MapCellSpec) => string | null;
}

export interface MapGeometry {
  /** Top-left corner of a cell's square and its side. */
  cellAt: (row: number, col: number) => { x: number; y: number };
  cellSize: number;
}

export interface BondProfileViewSpec extends ChartFrame {
  /** Per bond k = 1..n: entropy S (null: not computed), its maximum ln min(L, R), optionally Renyi-2. */
  bonds: Array<{ entropy: number | null; max: number; renyi2?: number | null }>;
  xLabel?: string;
  yLabel?: string;
}
