/**
 * The tour's HTML report: one self-contained file (inline CSS, inline SVG charts, no scripts, no
 * network) that reads on white and prints. Pure: TourResult in, HTML string out.
 */
import { escapeXml as esc, bondProfileChart, energyChart, lineChart, modelMapChart, spectrumChart, PALETTE, TONE } from './charts';
import { mapLayout } from '../../webview/overview/mapLayout';
import { KIND_LABEL } from '../../webview/shared/classify';
import type { TourResult } from './types';

export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const fixed = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
export const sci = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toExponential(d));
const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)}%`);

function tableHtml(head: string[], rows: string[][], numeric: boolean[] = [], cls = ''): string {
  const th = head.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${esc(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fff; margin: 0; }
main { max-width: 1140px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 1px solid #ddd; }
h3 { font-size: 16px; margin: 20px 0 6px; }
p.lead { color: #444; margin: 0 0 12px; }
.meta { color: #555; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f6f8; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 14px; min-width: 140px; background: #fafcfe; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { font-size: 12px; color: #555; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #e4e4e4; border-radius: 4px; max-width: 100%; height: auto; }
.gen { display: grid; grid-template-columns: 150px 1fr; gap: 4px 12px; margin: 8px 0 16px; }
.gen .who { font-weight: 600; color: #444; }
.gen .txt { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; white-space: pre-wrap; background: #f7f7f7; padding: 4px 8px; border-radius: 4px; }
.note { color: #555; font-size: 13.5px; }
.bad { color: ${PALETTE.red}; } .good { color: ${PALETTE.green}; }
nav a { margin-right: 14px; color: ${PALETTE.blue}; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; }
`;

function card(value: string, key: string): string {
  return `<div class="card"><div class="v">${esc(value)}</div><div class="k">${esc(key)}</div></div>`;
}

function genBlock(rows: Array<[string, string]>): string {
  return `<div class="gen">${rows.map(([who, txt]) => `<div class="who">${esc(who)}</div><div class="txt">${esc(txt)}</div>`).join('')}</div>`;
}

/**
 * The model map: normalised entropy of every block matrix, tensor kind x block depth, drawn by the
 * overview webview's map view and laid out by its mapLayout (kinds in the order a token meets them).
 * The report keeps to the blocks (the embeddings and head are in the tables).
 */
export function modelMapSvg(r: TourResult): string {
  const blocks = r.spectra.tensors.filter((t) => t.depth !== null);
  const byName = new Map(blocks.map((t) => [t.name, t]));
  const layout = mapLayout(blocks.map((t) => t.name));
  return modelMapChart({
    title: 'Model map: normalised entropy S / ln r per block matrix',
    description: `Model map of normalised spectral entropy for ${layout.rows.length} tensor kinds over ${layout.columns.length} blocks; 1 is a flat (noise-like) spectrum, low values a few dominant directions.`,
    rows: layout.rows.map((k) => KIND_LABEL[k]),
    columns: layout.columns.map((c) => (c === null ? '–' : String(c))),
    cells: layout.cells.map((c) => ({ name: c.name, row: c.row, col: c.col, depth: c.depth, value: byName.get(c.name)?.normalizedEntropy ?? null, scanned: true })),
    domain: [0, 1], metricLabel: 'S / ln r', showValues: true, cellSize: 36, labelWidth: 110,
    xLabel: 'block (depth)', yLabel: 'kind',
  });
}

/**
 * One honest sentence on what the chosen chi did, from the numbers: how much of the weights the
 * truncation kept and where in the chi sweep agreement with the dense model returns.
 */
export function qualityNote(r: TourResult): string {
  const c = r.compression, e = r.evaluation;
  const agree = e.top1Agreement ?? 0;
  const verdict = agree >= 0.9 ? 'keeps the model\'s behaviour' : agree >= 0.5 ? 'changes the model\'s behaviour noticeably' : 'destroys the model\'s behaviour (without retraining)';
  const good = r.chiSweep.rows.find((x) => x.top1Agreement >= 0.5);
  const where = good
    ? `in the chi sweep top-1 agreement first reaches 50% at chi = ${good.chi} (${good.modelRatio >= 1 ? `${good.modelRatio.toFixed(2)}x fewer parameters than dense` : `${(1 / good.modelRatio).toFixed(2)}x the dense parameter count: larger than the original`})`
    : `no chi in the sweep (${r.chiSweep.rows.map((x) => x.chi).join(', ')}) reaches 50% top-1 agreement`;
  return `MPO truncation at chi = ${c.chi} leaves a mean relative weight error of ${c.meanRelativeError.toFixed(2)} and ${verdict}: top-1 agreement ${(100 * agree).toFixed(1)}%; ${where}.`;
}

export function renderTourReport(r: TourResult): string {
  const m = r.model, s = r.spectra, c = r.compression, e = r.evaluation, d = r.scalpel, b = r.bondProfile;
  const name = m.path.split(/[\\/]/).pop() ?? m.path;
  const parts: string[] = [];
  parts.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`
    + `<title>Tensor Scalpel tour: ${esc(name)}</title><style>${CSS}</style></head><body><main>`);
  parts.push(`<h1>Tensor Scalpel tour: ${esc(name)}</h1>`);
  parts.push(`<p class="meta">${esc(m.path)} · made ${esc(r.createdAt)} by ${esc(r.tool)} in ${r.seconds.toFixed(1)} s</p>`);
  parts.push(`<nav><a href="#model">Model</a><a href="#spectra">Spectra</a><a href="#compression">Compression</a><a href="#evaluation">Evaluation</a><a href="#scalpel">Virus &amp; scalpel</a></nav>`);

  // 1. Model
  parts.push(`<section id="model"><h2>1. The model</h2>`);
  parts.push(`<div class="cards">${card(m.formatDetail, 'format')}${card(int(m.tensors), 'tensors')}${card(int(m.matrices), 'matrices (2-D)')}${card(int(m.totalParams), 'parameters')}${card(`${(m.sizeOnDisk / 1024).toFixed(0)} KiB`, 'on disk')}</div>`);
  const facts = [...Object.entries(m.dtypeMix).map(([k, v]) => ({ key: `parameters stored as ${k}`, value: int(v) })), ...m.facts];
  parts.push(tableHtml(['property', 'value'], facts.map((f) => [f.key, f.value])));
  parts.push(`</section>`);

  // 2. Spectra
  parts.push(`<section id="spectra"><h2>2. Singular value spectra</h2>`);
  parts.push(`<p class="lead">Every 2-D tensor's singular values s<sub>i</sub> (backend ${esc(s.backend)}, ${s.seconds.toFixed(2)} s). Normalised entropy S / ln r with p<sub>i</sub> = s<sub>i</sub><sup>2</sup> / Σ s<sub>j</sub><sup>2</sup>; effective rank e<sup>S</sup>; outliers: singular values above the Marchenko-Pastur bulk edge σ(√m + √n) of a noise matrix of the same shape.</p>`);
  parts.push(`<h3 id="model-map">Model map</h3>${modelMapSvg(r)}`);
  parts.push(`<h3>Per tensor kind</h3>`);
  parts.push(tableHtml(['kind', 'tensors', 'mean S / ln r', 'mean eff. rank', 'outliers'],
    s.byKind.map((k) => [k.kind, String(k.count), fixed(k.meanNormalizedEntropy), fixed(k.meanEffectiveRank, 1), String(k.outliers)]), [false, true, true, true, true]));
  parts.push(`<h3>Most outliers</h3>`);
  parts.push(tableHtml(['tensor', 'outliers', 's_1', 'MP edge'], s.topOutliers.map((t) => [t.name, String(t.outliers), fixed(t.spectralNorm), fixed(t.mpEdge)]), [false, true, true, true]));
  parts.push(`<h3>Representative spectra</h3><div class="charts">`);
  for (const t of s.representatives) {
    parts.push(spectrumChart({
      title: `${t.name} [${t.shape.join(' × ')}]`,
      description: `Singular values of ${t.name} on a log scale (${t.why}); ${t.outliers} above the Marchenko-Pastur edge ${fixed(t.mpEdge)}.`,
      spectra: [{ label: `s_i (${t.why})`, values: t.singularValues, mpEdge: t.mpEdge }], width: 540, height: 320,
    }));
  }
  parts.push(`</div>`);
  parts.push(`<h3>Cumulative energy and truncation error</h3><div class="charts">`);
  parts.push(energyChart({
    title: 'Energy kept by the top k singular values',
    description: 'Cumulative energy: the sum of s_i squared for i up to k over the total, against the rank kept k on a log scale, for the representative tensors.',
    series: s.representatives.map((t) => ({ label: t.name, errors: t.truncationErrors })),
    width: 540, height: 340,
  }));
  parts.push(lineChart({
    title: 'Relative error of the best rank-k truncation',
    description: 'Eckart-Young error ||W - W_k||_F / ||W||_F against k on a log scale, for the representative tensors.',
    xLabel: 'rank kept k', yLabel: '||W − W_k||_F / ||W||_F (log scale)', yScale: 'log',
    series: s.representatives.map((t) => ({ label: t.name, markers: false, points: t.truncationErrors.slice(0, -1).map((err, k) => [k, err] as [number, number]) })),
    width: 540, height: 340,
  }));
  parts.push(`</div>`);
  parts.push(`<h3>Bond-cut entanglement of ${esc(b.tensor)}</h3>`);
  parts.push(`<p class="note">${esc(b.tensor)} [${b.shape.join(' × ')}] as an MPO of ${b.outFactors.length} sites (out ${b.outFactors.join('·')}, in ${b.inFactors.join('·')}). At each cut the Schmidt values of the exact unfolding give the entropy S = −Σ p ln p; the dashed line is the most a cut of that size can hold, ln min(L, R).</p>`);
  parts.push(bondProfileChart({
    title: `Bond-cut entropy profile: ${b.tensor}`,
    description: `Von Neumann and Renyi-2 entropy at each of ${b.bonds.length} MPO bonds of ${b.tensor}, with the maximum ln min(L, R): ${b.bonds.map((x) => `bond ${x.index} ${fixed(x.entropy, 3)} of at most ${fixed(x.maxEntropy, 3)} nats`).join('; ')}.`,
    bonds: b.bonds.map((x) => ({ entropy: x.entropy, max: x.maxEntropy, renyi2: x.renyi2 })),
    xLabel: 'bond k (between sites k and k+1)',
    width: 620, height: 340,
  }));
  parts.push(tableHtml(['bond', 'cut L × R', 'S', 'S₂', 'max'], b.bonds.map((x) => [String(x.index), `${x.leftDim} × ${x.rightDim}`, fixed(x.entropy), fixed(x.renyi2), fixed(x.maxEntropy)]), [true, true, true, true, true]));
  parts.push(`</section>`);

  // 3. Compression
  parts.push(`<section id="compression"><h2>3. MPO compression at χ = ${c.chi}</h2>`);
  parts.push(`<p class="lead">Every block matrix as a 2-site MPO (tensor train) truncated at bond dimension χ = ${c.chi} by TT-SVD, written densely to <code>${esc(c.out)}</code> (${esc(c.format)}); reopened: ${c.reopened.tensors} tensors, ${int(c.reopened.totalParams)} parameters.</p>`);
  parts.push(`<div class="cards">${card(int(c.originalParams), 'parameters before')}${card(int(c.totalParams), 'parameters after (factor count)')}${card(fixed(c.ratio, 4), 'ratio after / before')}${card(`${fixed(1 / c.ratio, 2)}×`, 'fewer parameters')}${card(fixed(c.meanRelativeError, 4), 'mean relative error')}</div>`);
  parts.push(tableHtml(['tensor', 'bond dims', 'MPO params', 'dense params', '× fewer', 'relative error'],
    c.tensors.map((t) => [t.name, t.bondDimensions.join(', '), int(t.params), int(t.denseParams), fixed(t.denseParams / t.params, 2), sci(t.relativeError)]), [false, true, true, true, true, true]));
  parts.push(`<p class="note">Compressed tensors alone: ${int(c.compressedDenseParams)} → ${int(c.compressedParams)} parameters. The relative error is ||W − W<sub>MPO</sub>||<sub>F</sub> / ||W||<sub>F</sub>.</p>`);
  const w = r.chiSweep;
  parts.push(`<h3>How χ trades parameters for quality</h3>`);
  parts.push(`<p class="note">The same block matrices truncated in memory at several χ (${w.sites} sites, no retraining) and scored against the dense model; the relative error here is pooled over the matrices, sqrt(Σ||W − W<sub>MPO</sub>||² / Σ||W||²) (dense perplexity ${fixed(w.dense.perplexity, 3)}, accuracy ${pct(w.dense.accuracy)}).</p>`);
  parts.push(`<div class="charts">`);
  parts.push(lineChart({
    title: 'χ sweep: agreement with the dense model and weight error',
    description: `Top-1 agreement with the dense model and relative weight error for chi ${w.rows.map((x) => x.chi).join(', ')}; the tour's chi ${c.chi} is marked.`,
    xLabel: 'bond dimension χ (log scale)', yLabel: 'fraction', xScale: 'log', yDomain: [0, 1],
    series: [
      { label: 'top-1 agreement with dense', points: w.rows.map((x) => [x.chi, x.top1Agreement] as [number, number]), markers: true, tone: TONE.blue },
      { label: 'accuracy / dense accuracy', points: w.rows.map((x) => [x.chi, x.accuracyOfDense] as [number, number]), markers: true, tone: TONE.green },
      { label: 'relative weight error', points: w.rows.map((x) => [x.chi, x.relativeError] as [number, number]), markers: true, tone: TONE.red, dashed: true },
    ],
    rules: [{ axis: 'x', value: c.chi, label: `χ = ${c.chi}` }],
    width: 620, height: 340,
  }));
  parts.push(`</div>`);
  parts.push(tableHtml(['χ', 'model params', '× fewer', 'relative error', 'perplexity', 'accuracy', 'top-1 agreement', 'KL (nats)'],
    w.rows.map((x) => [String(x.chi), int(x.modelParams), fixed(x.modelRatio, 2), fixed(x.relativeError, 4), fixed(x.perplexity, 3), pct(x.accuracy), pct(x.top1Agreement), fixed(x.klDivergence, 4)]),
    [true, true, true, true, true, true, true, true]));
  parts.push(`</section>`);

  // 4. Evaluation
  parts.push(`<section id="evaluation"><h2>4. Compressed vs original</h2>`);
  parts.push(`<p class="lead">Scored on the bundled text "${esc(e.text.source)}" (${e.text.characters} characters, ${e.tokens} targets).</p>`);
  parts.push(tableHtml(['metric', 'compressed', 'original'], [
    ['perplexity', fixed(e.perplexity, 3), fixed(e.originalPerplexity, 3)],
    ['next-token accuracy', pct(e.accuracy), pct(e.originalAccuracy)],
    ['KL(original ‖ compressed), nats/token', fixed(e.klDivergence, 4), ''],
    ['top-1 agreement with the original', pct(e.top1Agreement), ''],
  ], [false, true, true]));
  parts.push(`<p class="note"><strong>${esc(qualityNote(r))}</strong></p>`);
  for (const sm of e.samples) {
    parts.push(`<h3>Greedy from ${sm.prompt === '' ? 'BOS' : `"${esc(sm.prompt)}"`}</h3>`);
    parts.push(genBlock([['original', sm.against ?? ''], [`compressed χ=${c.chi}`, sm.model]]));
  }
  parts.push(`</section>`);

  // 5. Scalpel demo
  parts.push(`<section id="scalpel"><h2>5. The virus and the scalpel</h2>`);
  parts.push(`<p class="lead">A rank-1 "virus" W′ = W + s u vᵀ (s = ${fixed(d.strength)}, ${fixed(d.strength / d.spectra.original.s1, 2)} × s₁(W), seeded unit u, v; seed ${d.seed}${d.avoidTop > 0 ? `, made orthogonal to W's top ${d.avoidTop} singular directions so it lives where W is weakest` : ''}) injected into <code>${esc(d.tensor)}</code> [${d.shape.join(' × ')}] shows up as one singular value far above the rest; removing the top singular triplet (W″ = W′ − s₁u₁v₁ᵀ) repairs the model.</p>`);
  parts.push(`<div class="charts">`);
  parts.push(spectrumChart({
    title: `${d.tensor}: spectrum before, with and after the virus`,
    description: `Singular values of ${d.tensor}: original, infected (s_1 = ${fixed(d.spectra.virus.s1)}, s_2 = ${fixed(d.spectra.virus.s2)}) and repaired, with the Marchenko-Pastur edge ${fixed(d.spectra.virus.mpEdge)}.`,
    spectra: [
      { label: 'infected W′', values: d.fullSpectra.virus, mpEdge: d.spectra.virus.mpEdge, tone: TONE.red },
      { label: 'original W', values: d.fullSpectra.original, tone: TONE.blue },
      { label: 'repaired W″ (dashed)', values: d.fullSpectra.repaired, tone: TONE.green, dashed: true },
    ],
    width: 620, height: 360,
  }));
  parts.push(`</div>`);
  parts.push(tableHtml(['', 's₁', 's₂', 's₁ / s₂', 'MP edge', 'above edge', 'top-1 agreement', 'KL', 'perplexity'], [
    ['original W', fixed(d.spectra.original.s1), fixed(d.spectra.original.s2), fixed(d.spectra.original.gap, 2), fixed(d.spectra.original.mpEdge), String(d.spectra.original.outliersAboveEdge), '100.0%', '0', fixed(d.perplexity.original, 3)],
    ['infected W′', fixed(d.spectra.virus.s1), fixed(d.spectra.virus.s2), fixed(d.spectra.virus.gap, 2), fixed(d.spectra.virus.mpEdge), String(d.spectra.virus.outliersAboveEdge), pct(d.agreement.virus), fixed(d.kl.virus, 4), fixed(d.perplexity.virus, 3)],
    ['repaired W″', fixed(d.spectra.repaired.s1), fixed(d.spectra.repaired.s2), fixed(d.spectra.repaired.gap, 2), fixed(d.spectra.repaired.mpEdge), String(d.spectra.repaired.outliersAboveEdge), pct(d.agreement.repaired), fixed(d.kl.repaired, 4), fixed(d.perplexity.repaired, 3)],
  ], [false, true, true, true, true, true, true, true, true]));
  parts.push(`<p class="note">Removed singular value ${fixed(d.removedSingularValue)}; ||W″ − W||<sub>F</sub> / ||W||<sub>F</sub> = ${sci(d.repairRelativeError)} (removing the top triplet also takes the part of W along u and v). Agreement and KL on "${esc(d.text.source)}" (${d.text.tokens} tokens).</p>`);
  parts.push(`<h3>Greedy from ${d.generation.prompt === '' ? 'BOS' : `"${esc(d.generation.prompt)}"`}</h3>`);
  parts.push(genBlock([['original', d.generation.original], ['infected', d.generation.virus], ['repaired', d.generation.repaired]]));
  parts.push(`<p class="note">Virus changed the text: <strong class="${d.generation.virusChanged ? 'good' : 'bad'}">${d.generation.virusChanged ? 'yes' : 'no'}</strong>. Repaired text equals the original: <strong class="${d.generation.repairedEqualsOriginal ? 'good' : 'bad'}">${d.generation.repairedEqualsOriginal ? 'yes' : 'no'}</strong>.</p>`);
  parts.push(`</section>`);
  parts.push(`<p class="meta">All numbers are also in <code>tour.json</code> beside this file. No scripts, no network: this page is the whole report.</p>`);
  parts.push(`</main></body></html>\n`);
  return parts.join('\n');
}
