/**
 * The parts every view shares: the accessible <svg> root, d3 axes with theme colours, grid lines, the
 * in-SVG legend. Everything is built from the Document passed in (the page's in a webview,
 * linkedom's in the report), never the global one, and nothing here listens to events.
 */
import { axisBottom, axisLeft, format as d3format, select, type Axis, type AxisScale, type Selection } from 'd3';
import type { ChartFrame, ChartTheme, Margin } from './types';

export const SVG_NS = 'http://www.w3.org/2000/svg';
export type Svg = Selection<SVGSVGElement, unknown, null, undefined>;
export type G = Selection<SVGGElement, unknown, null, undefined>;

/** Pixel coordinates rounded to 0.01 px: exact enough for any screen, short in the file. */
export const px = (v: number): number => Math.round(v * 100) / 100;

/** Sets a presentation attribute only when the theme gives the colour (else the stylesheet decides). */
export function paint<S extends { attr(name: string, value: string): unknown }>(sel: S, attr: string, colour: string | undefined): S {
  if (colour !== undefined) sel.attr(attr, colour);
  return sel;
}

export function toneColour(theme: ChartTheme, tone: number): string | undefined {
  return theme.series?.[tone % theme.series.length];
}

/**
 * The <svg> root: xmlns (so the serialised markup is a standalone SVG document), size and viewBox,
 * role="img" with aria-label, <title> and <desc>, the theme's font and background, and the visible
 * title when `heading` is set.
 */
export function svgRoot(doc: Document, f: ChartFrame, cls: string, width: number, height: number, theme: ChartTheme): Svg {
  const svg = select(doc.createElementNS(SVG_NS, 'svg') as SVGSVGElement)
    .attr('xmlns', SVG_NS).attr('class', `chart ${cls}`).attr('width', width).attr('height', height).attr('viewBox', `0 0 ${width} ${height}`)
    .attr('role', 'img').attr('aria-label', f.description ?? f.title);
  if (f.id) svg.attr('id', f.id);
  if (theme.fontFamily) svg.attr('font-family', theme.fontFamily);
  if (theme.fontSize) svg.attr('font-size', theme.fontSize);
  svg.append('title').text(f.title);
  const desc = svg.append('desc').text(f.description ?? f.title);
  if (f.id) { desc.attr('id', `${f.id}-desc`); svg.attr('aria-describedby', `${f.id}-desc`); }
  if (theme.background) svg.append('rect').attr('class', 'background').attr('width', width).attr('height', height).attr('fill', theme.background);
  if (f.heading) {
    paint(svg.append('text').attr('class', 'chart-title').attr('x', 12).attr('y', 22).attr('font-size', (theme.fontSize ?? 12) + 3).attr('font-weight', 600), 'fill', theme.text).text(f.title);
  }
  return svg;
}

/** Space above the plot for the heading and the legend rows. */
export function topSpace(f: ChartFrame, legendRows: number): number {
  return (f.heading ? 32 : 0) + (f.legend && legendRows > 0 ? legendRows * 16 + 6 : 0);
}

export function withTop(m: Margin, extra: number): Margin {
  return { ...m, top: m.top + extra };
}

/**
 * Ticks of a log axis: the powers of ten inside the domain, and 2x and 5x them when the axis spans
 * fewer than two decades (fewer than three labels otherwise); d3's own ticks when even that gives < 2.
 */
export function logTicks(domain: readonly number[]): number[] {
  const lo = Math.min(domain[0], domain[domain.length - 1]), hi = Math.max(domain[0], domain[domain.length - 1]);
  const inside = (v: number) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9);
  const e0 = Math.floor(Math.log10(lo)), e1 = Math.ceil(Math.log10(hi));
  const decades: number[] = [];
  for (let e = e0; e <= e1; e++) { const v = Number(`1e${e}`); if (inside(v)) decades.push(v); }
  if (decades.length >= 3) return decades;
  const fine: number[] = [];
  for (let e = e0; e <= e1; e++) for (const m of [1, 2, 5]) { const v = Number(`${m}e${e}`); if (inside(v)) fine.push(v); }
  return fine.length >= 2 ? fine : [];
}

const logFormat = d3format('~g');

/**
 * An axis at the bottom or left of the plot, coloured by the theme (d3 draws with currentColor,
 * which a standalone SVG does not have). Returns the tick values drawn.
 */
export function drawAxis(svg: Svg, side: 'bottom' | 'left', scale: AxisScale<number> & { ticks?: (n?: number) => number[] }, kind: 'linear' | 'log' | 'band',
  at: number, theme: ChartTheme, count: number, format?: (v: number) => string): number[] {
  const axis: Axis<number> = side === 'bottom' ? axisBottom<number>(scale) : axisLeft<number>(scale);
  let values: number[];
  if (kind === 'log') {
    values = logTicks(scale.domain());
    if (values.length) axis.tickValues(values).tickFormat((v) => logFormat(v));
    else { values = scale.ticks!(count); axis.ticks(count, '~g'); }
  } else if (kind === 'band') {
    values = scale.domain();
  } else {
    values = scale.ticks!(count);
    axis.ticks(count, '~g');
  }
  if (format) axis.tickFormat((v) => format(v));
  const g = svg.append('g').attr('class', `axis ${side === 'bottom' ? 'x' : 'y'}`)
    .attr('transform', side === 'bottom' ? `translate(0,${px(at)})` : `translate(${px(at)},0)`).call(axis);
  if (theme.axis) g.selectAll('path, line').attr('stroke', theme.axis);
  if (theme.text) g.selectAll('text').attr('fill', theme.text);
  // The root carries the theme's font; d3's 10px sans-serif default is for pages without one.
  if (theme.fontFamily) g.attr('font-family', null).attr('font-size', null);
  return values;
}

/** Horizontal grid lines at the y ticks (class grid; base.css greys them in a webview). */
export function drawGrid(svg: Svg, ys: number[], y: (v: number) => number, left: number, right: number, theme: ChartTheme): void {
  const g = svg.append('g').attr('class', 'grid');
  for (const t of ys) paint(g.append('line').attr('x1', px(left)).attr('x2', px(right)).attr('y1', px(y(t))).attr('y2', px(y(t))), 'stroke', theme.grid);
}

/** The axis titles: x centred under the plot, y rotated beside it. */
export function axisLabels(svg: Svg, xLabel: string, yLabel: string, plot: { left: number; right: number; top: number; bottom: number }, height: number, theme: ChartTheme): void {
  paint(svg.append('text').attr('class', 'axis-label x').attr('x', px((plot.left + plot.right) / 2)).attr('y', height - 6).attr('text-anchor', 'middle'), 'fill', theme.text).text(xLabel);
  const cy = px((plot.top + plot.bottom) / 2);
  paint(svg.append('text').attr('class', 'axis-label y').attr('transform', `translate(14,${cy}) rotate(-90)`).attr('text-anchor', 'middle'), 'fill', theme.text).text(yLabel);
}

export interface LegendItem {
  label: string;
  kind: 'line' | 'dashed' | 'dot' | 'bar' | 'outline';
  /** series-<tone> class and colour, or a named colour role. */
  tone?: number;
  role?: 'edge' | 'muted' | 'bar';
}

/** Legend entries left to right, wrapping at maxX: each entry's x and row. ~6.6 px per character at 12 px. */
export function legendLayout(items: LegendItem[], x0: number, maxX: number): { placed: Array<LegendItem & { x: number; row: number }>; rows: number } {
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

function roleColour(theme: ChartTheme, it: LegendItem): string | undefined {
  if (it.role === 'edge') return theme.edge;
  if (it.role === 'muted') return theme.muted;
  if (it.role === 'bar') return theme.bar;
  return it.tone !== undefined ? toneColour(theme, it.tone) : theme.muted;
}

export function drawLegend(svg: Svg, items: LegendItem[], y0: number, maxX: number, theme: ChartTheme): void {
  const g = svg.append('g').attr('class', 'legend');
  for (const it of legendLayout(items, 12, maxX).placed) {
    const y = y0 + it.row * 16, x = it.x, colour = roleColour(theme, it);
    const cls = it.tone !== undefined ? `series-${it.tone % 6}` : it.role === 'edge' ? 'mp-edge-swatch' : it.role === 'bar' ? 'bar' : 'muted-swatch';
    if (it.kind === 'dot' && it.tone !== undefined) {
      paint(g.append('circle').attr('class', `point ${cls}`).attr('cx', px(x + 9)).attr('cy', px(y - 4)).attr('r', 3.5), 'fill', colour);
    } else if (it.kind === 'dot') {
      paint(g.append('circle').attr('class', 'outlier-swatch').attr('cx', px(x + 9)).attr('cy', px(y - 4)).attr('r', 4.5).attr('fill', 'none').attr('stroke-width', 2), 'stroke', colour);
    } else if (it.kind === 'bar' || it.kind === 'outline') {
      const r = g.append('rect').attr('class', it.kind === 'bar' ? 'bar' : 'bar-max').attr('x', px(x + 2)).attr('y', px(y - 10)).attr('width', 14).attr('height', 10);
      if (it.kind === 'bar') paint(r, 'fill', colour);
      else paint(r.attr('fill', 'none').attr('stroke-dasharray', '3 2'), 'stroke', colour);
    } else {
      const l = g.append('line').attr('class', cls).attr('x1', px(x)).attr('y1', px(y - 4)).attr('x2', px(x + 18)).attr('y2', px(y - 4)).attr('stroke-width', 2.5);
      paint(l, 'stroke', colour);
      if (it.kind === 'dashed') l.attr('stroke-dasharray', '5 3');
    }
    paint(g.append('text').attr('x', px(x + 23)).attr('y', px(y)), 'fill', theme.text).text(it.label);
  }
}
