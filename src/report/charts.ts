/**
 * Static SVG charts for the HTML report: pure functions from numbers to an SVG string. No DOM, no
 * scripts: the scales come from d3-scale (which needs no DOM), the markup is written by hand. Every
 * chart has a visible title, axis labels, a <title>/<desc> and role="img" + aria-label, and uses
 * colours that read on a white page (the report is printed and screenshotted, not themed).
 */
import { scaleLinear, scaleLog, scaleSequential, interpolateViridis, format as d3format } from 'd3';

/** Colours that keep >= 3:1 contrast on white (Tableau 10, the darker half). */
export const PALETTE = {
  blue: '#1f77b4',
  red: '#c62828',
  green: '#2e7d32',
  orange: '#e65100',
  purple: '#6a1b9a',
  grey: '#555555',
  lightGrey: '#d0d0d0',
  text: '#222222',
};
const SERIES_COLOURS = [PALETTE.blue, PALETTE.orange, PALETTE.green, PALETTE.purple, PALETTE.red];

export interface Margin { top: number; right: number; bottom: number; left: number }
export const DEFAULT_MARGIN: Margin = { top: 56, right: 24, bottom: 52, left: 72 };

/** Escapes text for XML character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Pixel coordinates rounded to 0.01 px: enough for any screen, short in the file. */
const px = (v: number) => String(Math.round(v * 100) / 100);

export type ScaleKind = 'linear' | 'log';

export interface Series {
  label: string;
  /** [x, y] pairs in data units; points a log axis cannot show (<= 0) are skipped. */
  points: Array<[number, number]>;
  color?: string;
  dashed?: boolean;
  /** Draw a dot at every point (default: when there are at most 80 points). */
  markers?: boolean;
}

/** A point drawn on top of the series, e.g. an outlier singular value. */
export interface Highlight { x: number; y: number; label: string; color?: string }
/** A horizontal (y) or vertical (x) reference line, e.g. the Marchenko-Pastur edge. */
export interface RuleLine { value: number; label: string; color?: string }

export interface LineChartSpec {
  title: string;
  /** Longer text for screen readers (aria-label and <desc>); default: the title. */
  description?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xScale?: ScaleKind;
  yScale?: ScaleKind;
  xDomain?: [number, number];
  yDomain?: [number, number];
  hLines?: RuleLine[];
  vLines?: RuleLine[];
  highlights?: Highlight[];
  width?: number;
  height?: number;
  margin?: Margin;
}

export interface PlotScales {
  x: (v: number) => number;
  y: (v: number) => number;
  xTicks: number[];
  yTicks: number[];
  xFormat: (v: number) => string;
  yFormat: (v: number) => string;
  /** The plot area in pixels. */
  left: number; right: number; top: number; bottom: number;
}

function extent(values: number[], log: boolean): [number, number] {
  const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (v.length === 0) return log ? [1, 10] : [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (lo === hi) { if (log) { lo /= 2; hi *= 2; } else { lo -= 0.5; hi += 0.5; } }
  return [lo, hi];
}

function axisScale(kind: ScaleKind, domain: [number, number], range: [number, number]) {
  if (kind === 'log') {
    const s = scaleLog().domain(domain).range(range).nice();
    return { map: (v: number) => s(v), ticks: s.ticks(6), format: logTickFormat(s.domain() as [number, number]) };
  }
  const s = scaleLinear().domain(domain).range(range).nice(6);
  return { map: (v: number) => s(v), ticks: s.ticks(6), format: s.tickFormat(6) };
}

/** On a log axis label the powers of ten (and 2x, 5x when the axis spans less than three decades). */
function logTickFormat(domain: [number, number]): (v: number) => string {
  const decades = Math.log10(domain[1] / domain[0]);
  const f = d3format('~g');
  return (v: number) => {
    const mantissa = v / 10 ** Math.floor(Math.log10(v) + 1e-9);
    const m = Math.round(mantissa * 1e6) / 1e6;
    if (m === 1 || (decades < 3 && (m === 2 || m === 5))) return f(v);
    return '';
  };
}

/**
 * The scales of a line chart: x maps the domain onto [left, right], y onto [bottom, top] (SVG y
 * grows downwards). Linear axes are extended to nice round bounds (d3's `nice`), log axes to whole
 * decades, so a value lands at left + (v - d0) / (d1 - d0) * (right - left) on a linear axis and at
 * left + (log v - log d0) / (log d1 - log d0) * (right - left) on a log axis, d0/d1 the nice bounds.
 */
export function plotScales(spec: LineChartSpec): PlotScales {
  const width = spec.width ?? 560, height = spec.height ?? 340;
  const m = chartMargin(spec);
  const xs = spec.xScale ?? 'linear', ys = spec.yScale ?? 'linear';
  const xDomain = spec.xDomain ?? extent([...spec.series.flatMap((s) => s.points.map((p) => p[0])), ...(spec.vLines ?? []).map((l) => l.value)], xs === 'log');
  const yDomain = spec.yDomain ?? extent([
    ...spec.series.flatMap((s) => s.points.map((p) => p[1])),
    ...(spec.hLines ?? []).map((l) => l.value),
    ...(spec.highlights ?? []).map((h) => h.y),
  ], ys === 'log');
  const left = m.left, right = width - m.right, top = m.top, bottom = height - m.bottom;
  const x = axisScale(xs, xDomain, [left, right]);
  const y = axisScale(ys, yDomain, [bottom, top]);
  return { x: x.map, y: y.map, xTicks: x.ticks, yTicks: y.ticks, xFormat: x.format, yFormat: y.format, left, right, top, bottom };
}

function svgOpen(width: number, height: number, title: string, description: string, cls: string): string {
  const label = escapeXml(description);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${cls}" role="img" aria-label="${label}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`
    + `<title>${escapeXml(title)}</title><desc>${label}</desc>`
    + `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`
    + `<text class="chart-title" x="12" y="22" font-size="15" font-weight="600" fill="${PALETTE.text}">${escapeXml(title)}</text>`;
}

interface LegendItem { label: string; color: string; dashed?: boolean; dot?: boolean }

/** Legend entries laid out left to right, wrapping at maxX: positions and the number of rows. */
function legendLayout(items: LegendItem[], x0: number, maxX: number): { placed: Array<LegendItem & { x: number; row: number }>; rows: number } {
  let x = x0, row = 0;
  const placed: Array<LegendItem & { x: number; row: number }> = [];
  for (const it of items) {
    const w = 30 + it.label.length * 6.6;
    if (x + w > maxX && x > x0) { x = x0; row++; }
    placed.push({ ...it, x, row });
    x += w + 10;
  }
  return { placed, rows: items.length ? row + 1 : 0 };
}

function legend(items: LegendItem[], x0: number, y: number, maxX: number): string {
  const parts: string[] = [];
  for (const it of legendLayout(items, x0, maxX).placed) {
    const row = y + it.row * 16, x = it.x;
    parts.push(it.dot
      ? `<circle cx="${px(x + 9)}" cy="${px(row - 4)}" r="4" fill="${it.color}"/>`
      : `<line x1="${px(x)}" y1="${px(row - 4)}" x2="${px(x + 18)}" y2="${px(row - 4)}" stroke="${it.color}" stroke-width="2.5"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    parts.push(`<text x="${px(x + 23)}" y="${px(row)}" fill="${PALETTE.text}">${escapeXml(it.label)}</text>`);
  }
  return `<g class="legend">${parts.join('')}</g>`;
}

/** What the legend lists: every series, the highlighted points (once), every reference line. */
function legendItems(spec: LineChartSpec): LegendItem[] {
  const items: LegendItem[] = spec.series.map((s, i) => ({ label: s.label, color: s.color ?? SERIES_COLOURS[i % SERIES_COLOURS.length], dashed: s.dashed }));
  const highlights = visibleHighlights(spec);
  if (highlights.length > 0) items.push({ label: highlights.length === 1 ? highlights[0].label : `${highlights.length} ${highlights[0].label}`, color: highlights[0].color ?? PALETTE.red, dot: true });
  for (const h of spec.hLines ?? []) items.push({ label: h.label, color: h.color ?? PALETTE.grey, dashed: true });
  return items;
}

function visibleHighlights(spec: LineChartSpec): Highlight[] {
  const xs = spec.xScale ?? 'linear', ys = spec.yScale ?? 'linear';
  return (spec.highlights ?? []).filter((h) => Number.isFinite(h.x) && Number.isFinite(h.y) && (xs !== 'log' || h.x > 0) && (ys !== 'log' || h.y > 0));
}

/** The default margin, with room above the plot for as many legend rows as the chart needs. */
export function chartMargin(spec: LineChartSpec): Margin {
  if (spec.margin) return spec.margin;
  const rows = legendLayout(legendItems(spec), 12, (spec.width ?? 560) - 8).rows;
  return { ...DEFAULT_MARGIN, top: DEFAULT_MARGIN.top + Math.max(0, rows - 1) * 16 };
}

function axes(sc: PlotScales, xLabel: string, yLabel: string, height: number): string {
  const p: string[] = [];
  for (const t of sc.yTicks) {
    const y = sc.y(t);
    p.push(`<line x1="${px(sc.left)}" y1="${px(y)}" x2="${px(sc.right)}" y2="${px(y)}" stroke="#ececec"/>`);
    const label = sc.yFormat(t);
    if (label) p.push(`<text x="${px(sc.left - 6)}" y="${px(y + 4)}" text-anchor="end" fill="${PALETTE.text}">${escapeXml(label)}</text>`);
  }
  for (const t of sc.xTicks) {
    const x = sc.x(t);
    p.push(`<line x1="${px(x)}" y1="${px(sc.bottom)}" x2="${px(x)}" y2="${px(sc.bottom + 5)}" stroke="${PALETTE.grey}"/>`);
    const label = sc.xFormat(t);
    if (label) p.push(`<text x="${px(x)}" y="${px(sc.bottom + 18)}" text-anchor="middle" fill="${PALETTE.text}">${escapeXml(label)}</text>`);
  }
  p.push(`<line class="axis x" x1="${px(sc.left)}" y1="${px(sc.bottom)}" x2="${px(sc.right)}" y2="${px(sc.bottom)}" stroke="${PALETTE.grey}"/>`);
  p.push(`<line class="axis y" x1="${px(sc.left)}" y1="${px(sc.top)}" x2="${px(sc.left)}" y2="${px(sc.bottom)}" stroke="${PALETTE.grey}"/>`);
  p.push(`<text class="axis-label x" x="${px((sc.left + sc.right) / 2)}" y="${px(height - 10)}" text-anchor="middle" fill="${PALETTE.text}">${escapeXml(xLabel)}</text>`);
  const cy = (sc.top + sc.bottom) / 2;
  p.push(`<text class="axis-label y" x="16" y="${px(cy)}" text-anchor="middle" transform="rotate(-90 16 ${px(cy)})" fill="${PALETTE.text}">${escapeXml(yLabel)}</text>`);
  return `<g class="axes">${p.join('')}</g>`;
}

/** A line chart (any number of series, linear or log axes, reference lines, highlighted points). */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 560, height = spec.height ?? 340;
  const sc = plotScales(spec);
  const xs = spec.xScale ?? 'linear', ys = spec.yScale ?? 'linear';
  const visible = (p: [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (xs !== 'log' || p[0] > 0) && (ys !== 'log' || p[1] > 0);
  const out: string[] = [svgOpen(width, height, spec.title, spec.description ?? spec.title, 'line-chart')];
  out.push(axes(sc, spec.xLabel, spec.yLabel, height));
  spec.series.forEach((s, i) => {
    const color = s.color ?? SERIES_COLOURS[i % SERIES_COLOURS.length];
    const pts = s.points.filter(visible);
    if (pts.length === 0) return;
    const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${px(sc.x(p[0]))},${px(sc.y(p[1]))}`).join('');
    out.push(`<g class="series" data-label="${escapeXml(s.label)}"><path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (s.markers ?? pts.length <= 80) {
      for (const p of pts) out.push(`<circle class="point" cx="${px(sc.x(p[0]))}" cy="${px(sc.y(p[1]))}" r="2.8" fill="${color}" data-x="${p[0]}" data-y="${p[1]}"/>`);
    }
    out.push('</g>');
  });
  for (const h of spec.hLines ?? []) {
    if (ys === 'log' && !(h.value > 0)) continue;
    const y = sc.y(h.value), color = h.color ?? PALETTE.grey;
    out.push(`<g class="rule h" data-value="${h.value}"><line x1="${px(sc.left)}" y1="${px(y)}" x2="${px(sc.right)}" y2="${px(y)}" stroke="${color}" stroke-width="1.5" stroke-dasharray="4 3"/>`
      + `<text x="${px(sc.right - 4)}" y="${px(y - 5)}" text-anchor="end" fill="${color}">${escapeXml(h.label)}</text></g>`);
  }
  for (const v of spec.vLines ?? []) {
    if (xs === 'log' && !(v.value > 0)) continue;
    const x = sc.x(v.value), color = v.color ?? PALETTE.grey;
    out.push(`<g class="rule v" data-value="${v.value}"><line x1="${px(x)}" y1="${px(sc.top)}" x2="${px(x)}" y2="${px(sc.bottom)}" stroke="${color}" stroke-width="1.5" stroke-dasharray="4 3"/>`
      + `<text x="${px(x + 4)}" y="${px(sc.top + 12)}" fill="${color}">${escapeXml(v.label)}</text></g>`);
  }
  for (const h of visibleHighlights(spec)) {
    const color = h.color ?? PALETTE.red;
    out.push(`<circle class="highlight" cx="${px(sc.x(h.x))}" cy="${px(sc.y(h.y))}" r="5.5" fill="none" stroke="${color}" stroke-width="2" data-x="${h.x}" data-y="${h.y}"><title>${escapeXml(h.label)}</title></circle>`);
  }
  out.push(legend(legendItems(spec), 12, 42, width - 8));
  out.push('</svg>');
  return out.join('');
}

export interface SpectrumChartSpec {
  title: string;
  description?: string;
  /** One or more spectra (descending singular values), drawn as s_i against i = 1..r on a log axis. */
  spectra: Array<{ label: string; values: readonly number[]; color?: string; dashed?: boolean }>;
  /** Marchenko-Pastur bulk edge sigma (sqrt m + sqrt n): drawn dashed; values above it are circled. */
  mpEdge?: number;
  /** Which spectrum's values above the edge are circled (default 0, the first). */
  outliersOf?: number;
  width?: number;
  height?: number;
}

/** Singular value spectrum on a log scale with the Marchenko-Pastur edge and its outliers marked. */
export function spectrumChart(spec: SpectrumChartSpec): string {
  // Values below 1e-6 s_max are zero in float32 arithmetic (relative precision ~6e-8 times the
  // dimension): on a log axis they would stretch it by decades and flatten the spectrum, so they are
  // left out and counted in the legend instead (e.g. the direction the scalpel removed).
  const top = Math.max(0, ...spec.spectra.flatMap((s) => s.values.filter(Number.isFinite)));
  const floor = top * 1e-6;
  const series: Series[] = spec.spectra.map((s) => {
    const zeros = s.values.filter((v) => !(v > floor)).length;
    return {
      label: zeros > 0 ? `${s.label} (${zeros} ≈ 0 not drawn)` : s.label, color: s.color, dashed: s.dashed,
      points: s.values.map((v, i) => [i + 1, v] as [number, number]).filter((p) => p[1] > floor),
    };
  });
  const highlights: Highlight[] = [];
  if (spec.mpEdge !== undefined && Number.isFinite(spec.mpEdge)) {
    const target = spec.spectra[spec.outliersOf ?? 0];
    target?.values.forEach((v, i) => { if (v > spec.mpEdge!) highlights.push({ x: i + 1, y: v, label: 'outliers above the MP edge' }); });
    if (highlights.length === 1) highlights[0].label = 'outlier above the MP edge';
  }
  return lineChart({
    title: spec.title,
    description: spec.description,
    xLabel: 'index i (largest first)',
    yLabel: 'singular value s_i (log scale)',
    yScale: 'log',
    series,
    hLines: spec.mpEdge !== undefined && Number.isFinite(spec.mpEdge) ? [{ value: spec.mpEdge, label: `MP edge ${d3format('.3~g')(spec.mpEdge)}`, color: PALETTE.grey }] : [],
    highlights,
    width: spec.width,
    height: spec.height,
  });
}

export interface HeatmapSpec {
  title: string;
  description?: string;
  rowLabels: string[];
  colLabels: string[];
  /** values[row][col]; null = no such tensor (drawn hatched grey). */
  values: Array<Array<number | null>>;
  /** Colour domain (default: the values' extent). */
  domain?: [number, number];
  /** What the colour means, for the colour bar. */
  valueLabel: string;
  xLabel?: string;
  yLabel?: string;
  cellWidth?: number;
  cellHeight?: number;
}

/** Viridis from dark purple to yellow: ordered, perceptually uniform, readable on white with cell borders. */
export function heatColour(domain: [number, number]): (v: number) => string {
  const lo = domain[0], hi = domain[1] > domain[0] ? domain[1] : domain[0] + 1;
  const s = scaleSequential(interpolateViridis).domain([lo, hi]).clamp(true);
  return (v: number) => s(v);
}

/** Relative luminance test: dark cells get white text. */
function textOn(rgb: string): string {
  const m = /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(rgb) ?? /#(..)(..)(..)/.exec(rgb);
  if (!m) return '#000';
  const c = m[0].startsWith('#') ? [1, 2, 3].map((k) => parseInt(m[k], 16)) : [1, 2, 3].map((k) => Number(m[k]));
  const lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  return lum < 140 ? '#ffffff' : '#000000';
}

/** A rows x cols grid of coloured cells with the value written inside, and a colour bar. */
export function heatmap(spec: HeatmapSpec): string {
  const cw = spec.cellWidth ?? 72, ch = spec.cellHeight ?? 30;
  const labelWidth = Math.max(60, ...spec.rowLabels.map((l) => l.length * 7 + 16));
  const left = labelWidth + 20, top = 78;
  const nR = spec.rowLabels.length, nC = spec.colLabels.length;
  const width = Math.max(left + nC * cw + 110, 360), height = top + nR * ch + 48;
  const flat = spec.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  const domain = spec.domain ?? (flat.length ? [Math.min(...flat), Math.max(...flat)] as [number, number] : [0, 1] as [number, number]);
  const colour = heatColour(domain);
  const f = d3format('.2f');
  const out: string[] = [svgOpen(width, height, spec.title, spec.description ?? spec.title, 'heatmap')];
  out.push(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c8c8c8" stroke-width="2"/></pattern></defs>`);
  spec.colLabels.forEach((c, j) => out.push(`<text x="${px(left + j * cw + cw / 2)}" y="${top - 8}" text-anchor="middle" fill="${PALETTE.text}">${escapeXml(c)}</text>`));
  if (spec.xLabel) out.push(`<text class="axis-label x" x="${px(left + (nC * cw) / 2)}" y="${top - 30}" text-anchor="middle" fill="${PALETTE.grey}">${escapeXml(spec.xLabel)}</text>`);
  if (spec.yLabel) out.push(`<text class="axis-label y" x="12" y="${top - 8}" fill="${PALETTE.grey}">${escapeXml(spec.yLabel)}</text>`);
  spec.rowLabels.forEach((r, i) => {
    out.push(`<text x="${left - 8}" y="${px(top + i * ch + ch / 2 + 4)}" text-anchor="end" fill="${PALETTE.text}">${escapeXml(r)}</text>`);
    for (let j = 0; j < nC; j++) {
      const v = spec.values[i]?.[j] ?? null;
      const x = left + j * cw, y = top + i * ch;
      if (v === null || !Number.isFinite(v)) {
        out.push(`<rect class="cell empty" data-row="${i}" data-col="${j}" x="${x}" y="${y}" width="${cw}" height="${ch}" fill="url(#hatch)" stroke="#ffffff"/>`);
      } else {
        const fill = colour(v);
        out.push(`<rect class="cell" data-row="${i}" data-col="${j}" data-value="${v}" x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${fill}" stroke="#ffffff"><title>${escapeXml(`${r}, ${spec.colLabels[j]}: ${f(v)}`)}</title></rect>`);
        out.push(`<text x="${px(x + cw / 2)}" y="${px(y + ch / 2 + 4)}" text-anchor="middle" fill="${textOn(fill)}">${f(v)}</text>`);
      }
    }
  });
  // Colour bar: 10 steps from the domain's low end (bottom) to the high end (top).
  const bx = left + nC * cw + 24, bh = nR * ch, steps = 10;
  for (let k = 0; k < steps; k++) {
    const v = domain[0] + ((domain[1] - domain[0]) * (k + 0.5)) / steps;
    out.push(`<rect x="${bx}" y="${px(top + bh - ((k + 1) * bh) / steps)}" width="14" height="${px(bh / steps + 0.5)}" fill="${colour(v)}"/>`);
  }
  out.push(`<text x="${bx + 18}" y="${top + 10}" fill="${PALETTE.text}">${f(domain[1])}</text>`);
  out.push(`<text x="${bx + 18}" y="${top + bh}" fill="${PALETTE.text}">${f(domain[0])}</text>`);
  out.push(`<text x="${left}" y="${height - 14}" fill="${PALETTE.grey}">${escapeXml(`colour: ${spec.valueLabel}; hatched: no such matrix`)}</text>`);
  out.push('</svg>');
  return out.join('');
}
