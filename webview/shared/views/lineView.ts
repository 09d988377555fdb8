/**
 * The line chart every x-y picture is drawn with (spectra, energy curves, truncation errors, chi
 * sweeps): linear or log axes, any number of series, dashed reference rules, circled marks, an
 * optional in-SVG title and legend. Static: interactive layers (the spectrum's rank marker) are added
 * by the webview to the returned <svg> using the returned scales and plot area.
 *
 * Pixel mapping: x maps the domain [d0, d1] onto [plot.left, plot.right], y onto [plot.bottom,
 * plot.top] (SVG y grows downwards); linear: p = p0 + (v - d0) / (d1 - d0) (p1 - p0), log: the same
 * in log v. With niceX / niceY (default) the domain is first rounded out to nice bounds (d3 `nice`).
 */
import { line, scaleLinear, scaleLog } from 'd3';
import { axisLabels, drawAxis, drawGrid, drawLegend, legendLayout, logTicks, paint, px, svgRoot, toneColour, topSpace, withTop, type LegendItem } from './frame';
import { STYLESHEET_THEME, type ChartTheme, type LineViewSpec, type Margin, type PlotGeometry, type ScaleKind } from './types';

export const LINE_MARGIN: Margin = { top: 14, right: 20, bottom: 40, left: 64 };

export interface LineView extends PlotGeometry {
  svg: SVGSVGElement;
}

function extent(values: number[], log: boolean): [number, number] {
  const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (v.length === 0) return log ? [1, 10] : [0, 1];
  let lo = Math.min(...v), hi = Math.max(...v);
  if (lo === hi) { if (log) { lo /= 2; hi *= 2; } else { lo -= 0.5; hi += 0.5; } }
  return [lo, hi];
}

function makeScale(kind: ScaleKind, domain: [number, number], range: [number, number], nice: boolean) {
  if (kind === 'log') { const s = scaleLog().domain(domain).range(range); return nice ? s.nice() : s; }
  const s = scaleLinear().domain(domain).range(range);
  return nice ? s.nice(6) : s;
}

const visibleOn = (xs: ScaleKind, ys: ScaleKind) => (p: readonly [number, number]) =>
  Number.isFinite(p[0]) && Number.isFinite(p[1]) && (xs !== 'log' || p[0] > 0) && (ys !== 'log' || p[1] > 0);

/** What the legend lists: every series, the marks (once), every rule. */
function legendItems(spec: LineViewSpec, marks: number): LegendItem[] {
  const items: LegendItem[] = spec.series.map((s, i) => ({ label: s.label, kind: s.dashed ? 'dashed' : 'line', tone: s.tone ?? i }));
  if (marks > 0 && spec.markLabel) items.push({ label: spec.markLabel, kind: 'dot', role: 'edge' });
  for (const r of spec.rules ?? []) items.push({ label: r.label, kind: 'dashed', role: r.tone ?? 'muted' });
  return items;
}

export function lineView(doc: Document, spec: LineViewSpec, theme: ChartTheme = STYLESHEET_THEME): LineView {
  const width = spec.width ?? 560, height = spec.height ?? 340;
  const xs = spec.xScale ?? 'linear', ys = spec.yScale ?? 'linear';
  const visible = visibleOn(xs, ys);
  const marks = (spec.marks ?? []).filter((m) => visible([m.x, m.y]));
  const items = spec.legend ? legendItems(spec, marks.length) : [];
  const rows = legendLayout(items, 12, width - 8).rows;
  const m = withTop(spec.margin ?? LINE_MARGIN, topSpace(spec, rows));
  const plot = { left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom, width: 0, height: 0 };
  plot.width = plot.right - plot.left;
  plot.height = plot.bottom - plot.top;

  const rules = (spec.rules ?? []).filter((r) => Number.isFinite(r.value) && ((r.axis === 'x' ? xs : ys) !== 'log' || r.value > 0));
  const xDomain = spec.xDomain ?? extent([...spec.series.flatMap((s) => s.points.map((p) => p[0])), ...rules.filter((r) => r.axis === 'x').map((r) => r.value)], xs === 'log');
  const yDomain = spec.yDomain ?? extent([...spec.series.flatMap((s) => s.points.map((p) => p[1])), ...rules.filter((r) => r.axis === 'y').map((r) => r.value), ...marks.map((k) => k.y)], ys === 'log');
  const xScale = makeScale(xs, xDomain, [plot.left, plot.right], spec.niceX ?? true);
  const yScale = makeScale(ys, yDomain, [plot.bottom, plot.top], spec.niceY ?? true);
  const x = (v: number) => xScale(v), y = (v: number) => yScale(v);

  const svg = svgRoot(doc, spec, 'line-chart', width, height, theme);
  const gridTicks = ys === 'log' ? logTicks(yScale.domain()) : yScale.ticks(5);
  drawGrid(svg, gridTicks.length ? gridTicks : yScale.ticks(5), y, plot.left, plot.right, theme);
  const xTicks = drawAxis(svg, 'bottom', xScale, xs, plot.bottom, theme, 6);
  const yTicks = drawAxis(svg, 'left', yScale, ys, plot.left, theme, 5);
  axisLabels(svg, spec.xLabel, spec.yLabel, plot, height, theme);

  const path = line<readonly [number, number]>().x((p) => px(x(p[0]))).y((p) => px(y(p[1])));
  spec.series.forEach((s, i) => {
    const tone = (s.tone ?? i) % 6, colour = toneColour(theme, tone);
    const pts = s.points.filter(visible);
    const g = svg.append('g').attr('class', 'series').attr('data-label', s.label);
    if (pts.length === 0) return;
    const p = g.append('path').attr('class', `line series-${tone}`).attr('d', path(pts) ?? '').attr('fill', 'none').attr('stroke-width', 1.75);
    paint(p, 'stroke', colour);
    if (s.dashed) p.attr('stroke-dasharray', '6 4');
    if (s.markers ?? pts.length <= 80) {
      for (const q of pts) {
        paint(g.append('circle').attr('class', `point series-${tone}`).attr('cx', px(x(q[0]))).attr('cy', px(y(q[1]))).attr('r', 2.6)
          .attr('data-x', q[0]).attr('data-y', q[1]), 'fill', colour);
      }
    }
  });

  for (const r of rules) {
    const colour = r.tone === 'edge' ? theme.edge : theme.muted;
    const g = svg.append('g').attr('class', 'rule').attr('data-axis', r.axis).attr('data-value', r.value);
    const at = px(r.axis === 'y' ? y(r.value) : x(r.value));
    const l = g.append('line').attr('class', r.cls ?? 'rule-line').attr('stroke-dasharray', '5 3').attr('stroke-width', 1.5);
    if (r.axis === 'y') l.attr('x1', px(plot.left)).attr('x2', px(plot.right)).attr('y1', at).attr('y2', at);
    else l.attr('x1', at).attr('x2', at).attr('y1', px(plot.top)).attr('y2', px(plot.bottom));
    paint(l, 'stroke', colour);
    l.append('title').text(r.label);
  }

  const markClass = spec.markClass ?? 'mark';
  const mg = svg.append('g').attr('class', `${markClass}s`);
  for (const k of marks) {
    paint(mg.append('circle').attr('class', markClass).attr('cx', px(x(k.x))).attr('cy', px(y(k.y))).attr('r', 3.5)
      .attr('fill', 'none').attr('stroke-width', 1.5).attr('data-x', k.x).attr('data-y', k.y), 'stroke', theme.edge)
      .append('title').text(k.title);
  }

  if (spec.legend) drawLegend(svg, items, (spec.heading ? 32 : 0) + 16, width - 8, theme);
  return { svg: svg.node()!, x, y, plot, xTicks, yTicks };
}
