/**
 * Number and size formatting for the overview. Pure functions (no DOM), unit-tested under Node.
 */

/** 818048 -> "818,048". */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Three significant digits with a metric suffix: 818048 -> "818K", 6738415616 -> "6.74B", 999 -> "999". */
export function formatCompact(n: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, suffix] of units) {
    if (Math.abs(n) >= scale) {
      const v = n / scale;
      const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
      // Rounding can carry into the next unit (999.96K -> "1000K"); move it up.
      const rounded = Number(v.toFixed(digits));
      if (Math.abs(rounded) >= 1000 && suffix !== 'T') return formatCompact(rounded * scale);
      return `${rounded}${suffix}`;
    }
  }
  return String(n);
}

/**
 * Bytes in binary units, as file managers show sizes: 1185376 -> "1.13 MiB" (1 MiB = 2^20 bytes).
 * Below 1 KiB the exact count: "512 B".
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** Row-major shape as written in PyTorch: [512, 64]; a scalar is []. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Share of a whole as a percentage with one decimal: (1, 3) -> "33.3%". Rounding never claims more
 * than is true: a tiny non-zero share says "<0.1%", and a share short of the whole says ">99.9%",
 * not "100.0%".
 */
export function formatPercent(part: number, whole: number): string {
  if (whole <= 0) return '0%';
  const p = (100 * part) / whole;
  if (p > 0 && p < 0.05) return '<0.1%';
  if (p < 100 && p >= 99.95) return '>99.9%';
  return `${p.toFixed(1)}%`;
}
