/**
 * The spectrum pictures: singular values s_i against i on log-log axes with each spectrum's
 * Marchenko-Pastur bulk edge (line.mp-edge) and the values above it circled (circle.outlier), and the
 * cumulative energy 1 - e_k^2 = sum_{i<=k} s_i^2 / sum_i s_i^2 against k beside it. The spectrum
 * webview adds its rank marker to both; the report draws them as they are.
 *
 * The rank axis is log [1, K] without rounding out, K = maxRank or the longest spectrum: the marker
 * inverts it exactly (spectrum/marker.ts rankAtX). Singular values at or below 1e-6 s_max are zero
 * in float32 arithmetic (relative precision ~6e-8 times the dimension); on a log axis they would
 * stretch it by decades and flatten the spectrum, so they are left out and counted in the label.
 */
import { format as d3format } from 'd3';
import { lineView, type LineView } from './lineView';
import { STYLESHEET_THEME, type ChartTheme, type EnergyViewSpec, type LineSeries, type MarkSpec, type RuleSpec, type SpectrumViewSpec } from './types';

const f3 = d3format('.4~g');

export function spectrumView(doc: Document, spec: SpectrumViewSpec, theme: ChartTheme = STYLESHEET_THEME): LineView & { maxRank: number } {
  const top = Math.max(0, ...spec.spectra.flatMap((s) => s.values.filter(Number.isFinite)));
  const floor = top * (spec.zeroFloor ?? 1e-6);
  const maxRank = Math.max(2, spec.maxRank ?? Math.max(1, ...spec.spectra.map((s) => s.values.length)));
  const several = spec.spectra.length > 1;
  let lo = Infinity, hi = 0;
  const series: LineSeries[] = spec.spectra.map((s, i) => {
    const points = s.values.map((v, j) => [j + 1, v] as const).filter((p) => p[1] > floor && p[1] > 0);
    for (const p of points) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
    const zeros = s.values.length - points.length;
    return { label: zeros > 0 ? `${s.label} (${zeros} ≈ 0 not drawn)` : s.label, points, tone: s.tone ?? i, dashed: s.dashed, markers: false };
  });
  const rules: RuleSpec[] = [];
  const marks: MarkSpec[] = [];
  spec.spectra.forEach((s) => {
    const edge = s.mpEdge;
    if (edge === undefined || !(edge > 0) || !Number.isFinite(edge)) return;
    lo = Math.min(lo, edge); hi = Math.max(hi, edge);
    rules.push({ axis: 'y', value: edge, label: `MP edge ${f3(edge)}${several ? ` (${s.label})` : ''}`, cls: 'mp-edge', tone: 'edge' });
    s.values.forEach((v, j) => { if (v > edge) marks.push({ x: j + 1, y: v, title: `${several ? `${s.label}: ` : ''}outlier ${j + 1}: s = ${f3(v)}` }); });
  });
  if (!(lo < Infinity)) { lo = 1e-3; hi = 1; }
  const view = lineView(doc, {
    ...spec,
    xLabel: spec.xLabel ?? 'rank i', yLabel: spec.yLabel ?? 'singular value s_i',
    xScale: 'log', yScale: 'log', xDomain: [1, maxRank], niceX: false, yDomain: [lo * 0.8, hi * 1.25], niceY: true,
    series, rules, marks, markClass: 'outlier',
    markLabel: marks.length === 1 ? 'outlier above the MP edge' : `${marks.length} outliers above the MP edge`,
  }, theme);
  view.svg.setAttribute('class', `${view.svg.getAttribute('class')} spectrum`);
  return { ...view, maxRank };
}

export function energyView(doc: Document, spec: EnergyViewSpec, theme: ChartTheme = STYLESHEET_THEME): LineView & { maxRank: number } {
  const maxRank = Math.max(2, spec.maxRank ?? Math.max(1, ...spec.series.map((s) => s.errors.length - 1)));
  const view = lineView(doc, {
    ...spec,
    xLabel: spec.xLabel ?? 'rank k', yLabel: spec.yLabel ?? 'energy kept',
    xScale: 'log', yScale: 'linear', xDomain: [1, maxRank], niceX: false, yDomain: [0, 1], niceY: false,
    series: spec.series.map((s, i) => ({
      label: s.label, tone: s.tone ?? i, dashed: s.dashed, markers: false,
      points: s.errors.map((e, k) => [k, 1 - e * e] as const).filter((p) => p[0] >= 1),
    })),
  }, theme);
  view.svg.setAttribute('class', `${view.svg.getAttribute('class')} energy`);
  return { ...view, maxRank };
}
