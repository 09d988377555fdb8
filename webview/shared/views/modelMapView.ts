/**
 * The model map: one square per matrix, tensor kinds as rows and block depth as columns, coloured by
 * one spectrum metric, with a ramp legend underneath. Static: the overview webview makes the scanned
 * cells focusable and clickable (rect.cell.filled[data-name]) and adds its hover readout; the report
 * writes each value inside its cell.
 *
 * Colour of a value v on the domain [lo, hi]: t = (v - lo) / (hi - lo) clamped to [0, 1]; with a
 * sequential theme colour ramp the fill is ramp(t), otherwise the cell colour at fill-opacity
 * 0.15 + 0.85 t (the stylesheet's theme colour at any opacity stays readable in light and dark).
 */
import { color as d3color, format as d3format } from 'd3';
import { paint, px, svgRoot } from './frame';
import { STYLESHEET_THEME, type ChartTheme, type MapCellSpec, type MapGeometry, type ModelMapViewSpec } from './types';

export interface ModelMapView extends MapGeometry {
  svg: SVGSVGElement;
  /** The <rect> of every cell by tensor name. */
  cells: Map<string, SVGRectElement>;
}

const f2 = d3format('.2f'), g3 = d3format('.3~g');
const short = (v: number) => (Math.abs(v) < 10 ? f2(v) : g3(v));

/** The relative position of v in [lo, hi], clamped to [0, 1]. */
export function rampPosition(v: number, domain: readonly [number, number]): number {
  const span = domain[1] - domain[0];
  return span > 0 ? Math.min(1, Math.max(0, (v - domain[0]) / span)) : 0.5;
}

/** Black or white text on a fill, by its relative luminance (0.2126 R + 0.7152 G + 0.0722 B). */
function textOn(fill: string): string {
  const c = d3color(fill)?.rgb();
  if (!c) return '#000000';
  return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b < 140 ? '#ffffff' : '#000000';
}

export function modelMapView(doc: Document, spec: ModelMapViewSpec, theme: ChartTheme = STYLESHEET_THEME): ModelMapView {
  const cell = spec.cellSize ?? 28, labelW = spec.labelWidth ?? 100;
  const top = (spec.heading ? 32 : 0) + (spec.xLabel ? 16 : 0) + 22;
  const nR = spec.rows.length, nC = spec.columns.length;
  const [lo, hi] = spec.domain;
  const hiText = `${short(hi)} ${spec.metricLabel}`;
  // Wide enough for the cells, the legend's end label and the heading (~9 px a character at 15 px bold).
  const width = Math.ceil(Math.max(labelW + nC * cell + 8, labelW + 124 + hiText.length * 6.6 + 8, spec.heading ? 24 + spec.title.length * 9 : 0));
  const height = top + nR * cell + 30;
  const svg = svgRoot(doc, spec, 'heatmap', width, height, theme);
  const cellAt = (row: number, col: number) => ({ x: labelW + col * cell, y: top + row * cell });

  if (spec.xLabel) paint(svg.append('text').attr('class', 'axis-label x').attr('x', labelW).attr('y', top - 22), 'fill', theme.muted).text(spec.xLabel);
  if (spec.yLabel) paint(svg.append('text').attr('class', 'axis-label y').attr('x', 4).attr('y', top - 6), 'fill', theme.muted).text(spec.yLabel);
  spec.columns.forEach((c, j) => {
    paint(svg.append('text').attr('class', 'col-label').attr('x', labelW + j * cell + cell / 2).attr('y', top - 6).attr('text-anchor', 'middle'), 'fill', theme.text).text(c);
  });
  spec.rows.forEach((r, i) => {
    paint(svg.append('text').attr('class', 'row-label').attr('x', labelW - 6).attr('y', top + i * cell + cell / 2 + 4).attr('text-anchor', 'end'), 'fill', theme.text).text(r);
  });

  const fillOf = (t: number) => theme.sequential?.(t);
  const title = spec.cellTitle ?? ((c: MapCellSpec) => `${c.name}: ${c.scanned ? `${spec.metricLabel} ${c.value === null ? '–' : short(c.value)}` : 'not scanned yet'}`);
  const cells = new Map<string, SVGRectElement>();
  const g = svg.append('g').attr('class', 'cells');
  for (const c of spec.cells) {
    const { x, y } = cellAt(c.row, c.col);
    const valued = c.scanned && c.value !== null && Number.isFinite(c.value);
    const t = valued ? rampPosition(c.value!, spec.domain) : 0;
    const rect = g.append('rect').attr('x', x + 1).attr('y', y + 1).attr('width', cell - 2).attr('height', cell - 2)
      .attr('class', `cell${c.scanned ? ' filled' : ''}${c.scanned && !valued ? ' undefined-value' : ''}`)
      .attr('data-name', c.name).attr('data-block', c.depth === null ? 'none' : String(c.depth)).attr('data-row', c.row).attr('data-col', c.col);
    if (valued) rect.attr('data-value', c.value!);
    let fill: string | undefined;
    if (theme.sequential) {
      fill = valued ? fillOf(t) : undefined;
      if (valued) rect.attr('fill', fill!);
      else paint(rect.attr('fill', 'none').attr('stroke-dasharray', '2 2'), 'stroke', theme.muted);
    } else {
      rect.attr('fill-opacity', px(valued ? 0.15 + 0.85 * t : c.scanned ? 0.05 : 0));
      paint(rect, 'fill', theme.cell);
    }
    if (theme.grid && valued) rect.attr('stroke', theme.background ?? theme.grid);
    const tip = title(c);
    if (tip !== null) rect.append('title').text(tip);
    cells.set(c.name, rect.node()!);
    if (spec.showValues && valued) {
      const ink = fill ? textOn(fill) : theme.cell ? (t > 0.6 ? '#ffffff' : theme.text) : undefined;
      paint(g.append('text').attr('class', 'cell-value').attr('x', x + cell / 2).attr('y', y + cell / 2 + 4).attr('text-anchor', 'middle')
        .attr('font-size', px(Math.min(11, cell / 3))).attr('pointer-events', 'none'), 'fill', ink).text(short(c.value!));
    }
  }

  // Legend: ten steps of the ramp from lo to hi, and the two ends.
  const ly = top + nR * cell + 10;
  for (let i = 0; i < 10; i++) {
    const r = svg.append('rect').attr('class', 'legend-cell').attr('x', labelW + i * 12).attr('y', ly).attr('width', 12).attr('height', 10);
    if (theme.sequential) r.attr('fill', theme.sequential(i / 9));
    else paint(r.attr('fill-opacity', px(0.15 + 0.85 * (i / 9))), 'fill', theme.cell);
  }
  paint(svg.append('text').attr('class', 'legend-lo').attr('x', labelW - 6).attr('y', ly + 9).attr('text-anchor', 'end'), 'fill', theme.text).text(short(lo));
  paint(svg.append('text').attr('class', 'legend-hi').attr('x', labelW + 124).attr('y', ly + 9), 'fill', theme.text).text(hiText);
  return { svg: svg.node()!, cells, cellAt, cellSize: cell };
}
