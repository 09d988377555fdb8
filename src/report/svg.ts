/**
 * Static SVG from the shared d3 views (webview/shared/views): the report builds each chart with the
 * very function the webview draws it with, in a linkedom document instead of the page, and
 * serialises the result. No scripts, no external references: the <svg> carries its xmlns and
 * concrete colours (PRINT_THEME), so it reads the same inline in the offline report and as a file.
 */
import { parseHTML } from 'linkedom';
import type { ViewDocument, ViewNode } from '../../webview/shared/views';

let shared: ViewDocument | undefined;

/** One DOM document for every chart: the views create detached elements in it and never attach them. */
export function staticDocument(): ViewDocument {
  shared ??= (parseHTML('<!DOCTYPE html><html><head></head><body></body></html>') as { document: ViewDocument }).document;
  return shared;
}

const ELEMENT = 1, TEXT = 3, CDATA = 4;

/** Character data: & and < must be escaped, > too so "]]>" cannot appear. */
export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Attribute values (always written in double quotes). */
export function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;');
}

/**
 * XML serialisation of a node tree (elements, text; comments dropped). Written here rather than
 * taken from linkedom's outerHTML, which leaves '&' and '<' unescaped inside attribute values: fine
 * for an HTML parser, not well-formed XML, and an .svg file must be XML.
 */
export function serializeSvg(node: ViewNode): string {
  if (node.nodeType === TEXT || node.nodeType === CDATA) return escapeText(node.nodeValue ?? '');
  if (node.nodeType !== ELEMENT) return '';
  // localName keeps the SVG case (linearGradient); linkedom's nodeName is upper-cased HTML style.
  const name = node.localName ?? node.nodeName.toLowerCase();
  let out = `<${name}`;
  const attrs = node.attributes ?? [];
  for (let i = 0; i < attrs.length; i++) out += ` ${attrs[i].name}="${escapeAttr(attrs[i].value)}"`;
  const kids = node.childNodes;
  if (kids.length === 0) return `${out}/>`;
  out += '>';
  for (let i = 0; i < kids.length; i++) out += serializeSvg(kids[i]);
  return `${out}</${name}>`;
}

/** Draws a view in the static document and returns its <svg> as markup. */
export function renderStatic(draw: (doc: ViewDocument) => { svg: ViewNode }): string {
  return serializeSvg(draw(staticDocument()).svg);
}
