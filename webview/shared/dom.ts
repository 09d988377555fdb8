/** DOM helpers shared by the webviews (no Node, no VS Code API here). */
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string | number | boolean>> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** Injects CSS text as a <style> carrying the page's CSP nonce, and counts CSP violations (data-csp-violations). */
export function installStyle(css: string): void {
  let violations = 0;
  document.documentElement.dataset.cspViolations = '0';
  document.addEventListener('securitypolicyviolation', (e) => {
    violations++;
    document.documentElement.dataset.cspViolations = String(violations);
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
  });
  const nonce = (document.currentScript as HTMLScriptElement | null)?.nonce ?? '';
  const style = document.createElement('style');
  style.nonce = nonce;
  style.textContent = css;
  document.head.appendChild(style);
}

/**
 * A standalone SVG document of a chart: the theme's CSS variables are resolved to the computed colours
 * of the live page (an exported file has no VS Code theme), then serialised.
 */
export function svgDocument(svg: SVGSVGElement): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const src = svg.querySelectorAll('*');
  const dst = clone.querySelectorAll('*');
  const props = ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'opacity', 'font-size', 'font-family', 'text-anchor', 'dominant-baseline'];
  src.forEach((el, i) => {
    const cs = getComputedStyle(el);
    const d = dst[i] as SVGElement;
    for (const p of props) {
      const v = cs.getPropertyValue(p);
      if (v) d.style.setProperty(p, v);
    }
  });
  const bg = getComputedStyle(document.body).backgroundColor;
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  clone.style.setProperty('background-color', bg);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

/** Renders an SVG document to PNG bytes (base64) on a canvas at `scale`x. */
export async function svgToPngBase64(svgText: string, width: number, height: number, scale = 2): Promise<string> {
  // A data: URL (the CSP allows data: images); the image is same-origin so the canvas stays readable.
  const url = `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(svgText)))}`;
  const img = new Image();
  await new Promise<void>((resolve, reject) => {
    img.onload = () => resolve();
    img.onerror = () => reject(new Error('the SVG could not be rendered'));
    img.src = url;
  });
  const canvas = document.createElement('canvas');
  canvas.width = Math.ceil(width * scale);
  canvas.height = Math.ceil(height * scale);
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = getComputedStyle(document.body).backgroundColor;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.scale(scale, scale);
  ctx.drawImage(img, 0, 0, width, height);
  return canvas.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}
