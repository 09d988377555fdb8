/**
 * A small XML well-formedness check for the report's SVG (no DOM in these tests): every tag closes in
 * order, attributes are quoted name="value" pairs without duplicates, text and attribute values use
 * only the five predefined entities or numeric references, and there is exactly one root element.
 * Returns the elements seen (name + attributes) so tests can look things up.
 */
export interface XmlElement { name: string; attrs: Record<string, string>; text: string; parent: XmlElement | null }

const NAME = /^[A-Za-z_][\w.:-]*$/;

function checkEntities(s: string, where: string): void {
  const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(s);
  if (bad) throw new Error(`${where}: bare '&' at ${bad.index} in ${JSON.stringify(s.slice(Math.max(0, bad.index - 20), bad.index + 20))}`);
  if (s.includes('<')) throw new Error(`${where}: '<' in character data`);
}

export function parseXml(xml: string): XmlElement[] {
  const stack: XmlElement[] = [];
  const all: XmlElement[] = [];
  let roots = 0;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = lt < 0 ? xml.slice(i) : xml.slice(i, lt);
    if (text.length) {
      checkEntities(text, 'text');
      if (stack.length === 0 && text.trim()) throw new Error(`text outside the root: ${JSON.stringify(text.slice(0, 40))}`);
      if (stack.length) stack[stack.length - 1].text += text;
    }
    if (lt < 0) break;
    if (xml.startsWith('<!--', lt)) { const e = xml.indexOf('-->', lt); if (e < 0) throw new Error('unclosed comment'); i = e + 3; continue; }
    if (xml.startsWith('<?', lt)) { const e = xml.indexOf('?>', lt); if (e < 0) throw new Error('unclosed declaration'); i = e + 2; continue; }
    const gt = xml.indexOf('>', lt);
    if (gt < 0) throw new Error(`unclosed tag at ${lt}`);
    // '>' inside a quoted attribute value would end the tag early: find the real end.
    let end = lt + 1, quote = '';
    for (; end < xml.length; end++) {
      const ch = xml[end];
      if (quote) { if (ch === quote) quote = ''; continue; }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '>') break;
    }
    const body = xml.slice(lt + 1, end);
    i = end + 1;
    if (body.startsWith('/')) {
      const name = body.slice(1).trim();
      const open = stack.pop();
      if (!open) throw new Error(`closing </${name}> without an open element`);
      if (open.name !== name) throw new Error(`</${name}> closes <${open.name}>`);
      continue;
    }
    const selfClosing = body.endsWith('/');
    const inner = selfClosing ? body.slice(0, -1) : body;
    const m = /^([^\s/]+)([\s\S]*)$/.exec(inner);
    if (!m || !NAME.test(m[1])) throw new Error(`bad tag <${body.slice(0, 30)}>`);
    const attrs: Record<string, string> = {};
    let rest = m[2];
    const attrRe = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/;
    while (rest.trim().length) {
      const a = attrRe.exec(rest);
      if (!a) throw new Error(`bad attributes in <${m[1]}>: ${JSON.stringify(rest.slice(0, 40))}`);
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]} in <${m[1]}>`);
      const v = a[3] ?? a[4];
      checkEntities(v, `attribute ${a[1]}`);
      attrs[a[1]] = v;
      rest = rest.slice(a[0].length);
    }
    const el: XmlElement = { name: m[1], attrs, text: '', parent: stack.length ? stack[stack.length - 1] : null };
    all.push(el);
    if (stack.length === 0) roots++;
    if (!selfClosing) stack.push(el);
  }
  if (stack.length) throw new Error(`unclosed <${stack.map((e) => e.name).join('>, <')}>`);
  if (roots !== 1) throw new Error(`expected one root element, found ${roots}`);
  return all;
}

/** Replaces the predefined entities and numeric references by their characters. */
export function decodeEntities(s: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : named[e]);
}

/** The element's class list. */
export function classes(e: XmlElement): string[] {
  return (e.attrs.class ?? '').split(/\s+/).filter(Boolean);
}

/** True when some ancestor of e satisfies the test. */
export function within(e: XmlElement, test: (a: XmlElement) => boolean): boolean {
  for (let a = e.parent; a; a = a.parent) if (test(a)) return true;
  return false;
}

/** The vertices of an SVG path made of M/L commands (what d3's line() writes), as [x, y] pairs. */
export function pathVertices(d: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const re = /([ML])\s*(-?[\d.]+(?:e-?\d+)?)[ ,](-?[\d.]+(?:e-?\d+)?)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(d))) out.push([Number(m[2]), Number(m[3])]);
  if (/[^MLml\d.,\se-]/.test(d)) throw new Error(`path has commands other than M and L: ${d.slice(0, 60)}`);
  return out;
}
