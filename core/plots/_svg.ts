/**
 * Small helpers shared by the SVG plots: escaping, font sizes and a text-width
 * estimate (no canvas to measure with outside a browser).
 *
 * @module
 */

/** Font family and sizes (SVG pixels) of every plot, so that all figures read alike. */
export const FONT = {
  family: "system-ui, -apple-system, 'Segoe UI', sans-serif",
  title: 15,
  label: 13,
  tick: 11,
  legend: 12,
} as const;

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Width of `text` in a proportional sans-serif font of `size` pixels, estimated
 * from average glyph widths (digits and most lower-case letters are near 0.55 em);
 * generous so that labels do not collide.
 */
export function textWidth(text: string, size: number): number {
  let em = 0;
  for (const ch of text) {
    if ("il.,:;'|!".includes(ch)) em += 0.3;
    else if ("mwMW".includes(ch)) em += 0.85;
    else if (ch >= "A" && ch <= "Z") em += 0.68;
    else em += 0.56;
  }
  return em * size;
}
