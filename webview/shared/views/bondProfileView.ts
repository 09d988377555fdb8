/**
 * The bond-cut entanglement profile of a matrix written as an MPO: at bond k (between sites k and
 * k+1) the von Neumann entropy S_k = -sum p ln p of the Schmidt values of the exact unfolding as a
 * filled bar, the most that cut can hold, ln min(L_k, R_k), as a dashed outline around it, and the
 * Renyi-2 entropy S2_k = -ln sum p^2 as a dot when given. Drawn by the bond-dimension editor for the
 * selected tensor and by the report for its example tensor.
 */
import { format as d3format, scaleBand, scaleLinear } from 'd3';
import { axisLabels, drawAxis, drawGrid, drawLegend, legendLayout, paint, px, svgRoot, toneColour, topSpace, withTop, type LegendItem } from './frame';
import { STYLESHEET_THEME, type BondProfileViewSpec, type ChartTheme, type Margin, type PlotGeometry } from './types';

export const BOND_MARGIN: Margin = { top: 10, right: 10, bottom: 40, left: 52 };

export interface BondProfileView extends PlotGeometry {
  svg: SVGSVGElement;
  /** Left edge and width of bond k's bar (k = 1..n). */
  barAt: (k: number) => { x: number; width: number };
}

const f4 = d3format('.4~g');

export function bondProfileView(doc: Document, spec: BondProfileViewSpec, theme: ChartTheme = STYLESHEET_THEME): BondProfileView {
  const width = spec.width ?? 360, height = spec.height ?? 200;
  const n = spec.bonds.length;
  const hasRenyi = spec.bonds.some((b) => b.renyi2 !== undefined && b.renyi2 !== null);
  const items: LegendItem[] = spec.legend
    ? [{ label: 'von Neumann S', kind: 'bar', role: 'bar' }, ...(hasRenyi ? [{ label: 'Rényi-2 S₂', kind: 'dot', tone: 1 } as LegendItem] : []), { label: 'maximum ln min(L, R)', kind: 'outline', role: 'muted' }]
    : [];
  const m = withTop(spec.margin ?? BOND_MARGIN, topSpace(spec, legendLayout(items, 12, width - 8).rows));
  const plot = { left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom, width: width - m.right - m.left, height: height - m.bottom - m.top };
  const top = Math.max(1e-9, ...spec.bonds.map((b) => b.max), ...spec.bonds.map((b) => b.entropy ?? 0), ...spec.bonds.map((b) => b.renyi2 ?? 0));
  const ks = spec.bonds.map((_, i) => i + 1);
  const xb = scaleBand<number>().domain(ks).range([plot.left, plot.right]).paddingInner(0.3).paddingOuter(0.15);
  const yScale = scaleLinear().domain([0, top]).range([plot.bottom, plot.top]).nice(4);
  const y = (v: number) => yScale(v);
  const x = (k: number) => (xb(k) ?? plot.left) + xb.bandwidth() / 2;

  const svg = svgRoot(doc, spec, 'bond-profile', width, height, theme);
  drawGrid(svg, yScale.ticks(4), y, plot.left, plot.right, theme);
  const xTicks = drawAxis(svg, 'bottom', xb, 'band', plot.bottom, theme, n, (k) => String(k));
  const yTicks = drawAxis(svg, 'left', yScale, 'linear', plot.left, theme, 4);
  axisLabels(svg, spec.xLabel ?? 'bond k', spec.yLabel ?? 'entropy (nats)', plot, height, theme);

  const g = svg.append('g').attr('class', 'bars');
  spec.bonds.forEach((b, i) => {
    const k = i + 1, x0 = px(xb(k)!), w = px(xb.bandwidth());
    paint(g.append('rect').attr('class', 'bar-max').attr('x', x0).attr('width', w).attr('y', px(y(b.max))).attr('height', px(plot.bottom - y(b.max)))
      .attr('fill', 'none').attr('stroke-dasharray', '3 2').attr('data-bond', k).attr('data-value', b.max), 'stroke', theme.muted)
      .append('title').text(`bond ${k}: maximum ln min(L, R) = ${f4(b.max)} nats`);
    if (b.entropy !== null) {
      paint(g.append('rect').attr('class', 'bar').attr('x', x0).attr('width', w).attr('y', px(y(b.entropy))).attr('height', px(plot.bottom - y(b.entropy)))
        .attr('data-bond', k).attr('data-value', b.entropy), 'fill', theme.bar)
        .append('title').text(`bond ${k}: S = ${f4(b.entropy)} nats (max ${f4(b.max)})`);
    }
    if (b.renyi2 !== undefined && b.renyi2 !== null) {
      paint(g.append('circle').attr('class', 'point renyi2 series-1').attr('cx', px(x(k))).attr('cy', px(y(b.renyi2))).attr('r', 3.5)
        .attr('data-bond', k).attr('data-value', b.renyi2), 'fill', toneColour(theme, 1))
        .append('title').text(`bond ${k}: S₂ = ${f4(b.renyi2)} nats`);
    }
  });
  if (spec.legend) drawLegend(svg, items, (spec.heading ? 32 : 0) + 16, width - 8, theme);
  return { svg: svg.node()!, x, y, plot, xTicks, yTicks, barAt: (k) => ({ x: xb(k) ?? NaN, width: xb.bandwidth() }) };
}
