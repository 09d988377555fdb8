/**
 * The views as the extension host sees them. The host's tsconfig.json has no DOM lib (the compiler
 * keeps host and browser code apart), yet the report renders these views with linkedom. So
 * tsconfig.json sets `moduleSuffixes: [".host", ""]`: in the host program an import of
 * webview/shared/views resolves to this file, which declares the same functions with the DOM reduced
 * to the little the host touches (a document that creates elements, nodes it can serialise).
 * esbuild, tsx and webview/tsconfig.json ignore moduleSuffixes and load index.ts, the implementation;
 * hostBoundary.ts (checked by webview/tsconfig.json) fails to compile if the two drift apart. The
 * data and option types are shared, from the DOM-free types.ts.
 */
import type { BondProfileViewSpec, ChartTheme, EnergyViewSpec, LineViewSpec, MapGeometry, Margin, ModelMapViewSpec, PlotGeometry, SpectrumViewSpec } from './types';

export * from './types';

/** A DOM Document: linkedom's in the report, the page's in a webview. */
export interface ViewDocument {
  createElementNS(namespaceURI: string, qualifiedName: string): unknown;
}

/** A DOM node, as far as serialising it needs. */
export interface ViewNode {
  readonly nodeType: number;
  readonly nodeName: string;
  readonly localName?: string | null;
  readonly nodeValue: string | null;
  readonly childNodes: ArrayLike<ViewNode>;
  readonly attributes?: ArrayLike<{ readonly name: string; readonly value: string }>;
}

export interface LineView extends PlotGeometry { svg: ViewNode }
export interface ModelMapView extends MapGeometry { svg: ViewNode; cells: Map<string, ViewNode> }
export interface BondProfileView extends PlotGeometry { svg: ViewNode; barAt: (k: number) => { x: number; width: number } }

export declare const SVG_NS: string;
export declare const LINE_MARGIN: Margin;
export declare const BOND_MARGIN: Margin;
export declare function lineView(doc: ViewDocument, spec: LineViewSpec, theme?: ChartTheme): LineView;
export declare function spectrumView(doc: ViewDocument, spec: SpectrumViewSpec, theme?: ChartTheme): LineView & { maxRank: number };
export declare function energyView(doc: ViewDocument, spec: EnergyViewSpec, theme?: ChartTheme): LineView & { maxRank: number };
export declare function modelMapView(doc: ViewDocument, spec: ModelMapViewSpec, theme?: ChartTheme): ModelMapView;
export declare function bondProfileView(doc: ViewDocument, spec: BondProfileViewSpec, theme?: ChartTheme): BondProfileView;
export declare function rampPosition(v: number, domain: readonly [number, number]): number;
export declare function logTicks(domain: readonly number[]): number[];
