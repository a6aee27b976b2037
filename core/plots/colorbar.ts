/**
 * Colour bars: the key of a heatmap, drawn as SVG from the same 256-entry lookup
 * table that coloured it and the value range it was coloured over, with ticks and
 * a label saying what the values are.
 *
 * @example A colour bar for a saliency map
 * ```ts
 * import { colorbarSvg } from "./colorbar.ts";
 * const svg = colorbarSvg({ colormap: "inferno", min: 0, max: 0.8, label: "|gradient|" });
 * if (!svg.includes('class="axis-label"')) throw new Error("unlabelled colour bar");
 * ```
 *
 * @module
 */
// @ts-types="@types/d3-scale"
import { scaleLinear } from "d3-scale";
import { colormapLut, type ColormapName } from "../images/colormaps.ts";
import { escapeXml, FONT } from "./_svg.ts";

/** What a heatmap's colours mean: its colormap, the values at both ends, and their name. */
export interface Colorbar {
  /** The colormap the heatmap was coloured with. */
  colormap: ColormapName;
  /** Value shown by the first colour (values below were clipped to it). */
  min: number;
  /** Value shown by the last colour. */
  max: number;
  /**
   * What the values are, with units (e.g. "|gradient|", "drop in probability").
   *
   * @default {"value"}
   */
  label?: string;
}

/** Options of {@link colorbarSvg}. */
export interface ColorbarOptions {
  /**
   * Id of the gradient inside the SVG; give each colour bar of one HTML page its own.
   *
   * @default {"colorbar-" + colormap}
   */
  id?: string;
  /**
   * Width in SVG pixels (more when the label needs it).
   *
   * @default {240}
   */
  width?: number;
}

/** Side margin: room for half of an end's tick text such as "−1.0". */
const MARGIN = 16;

/** Steps of the gradient: every 8th table entry, enough for smooth bands. */
const STOPS = 32;

function hex(v: number): string {
  return Math.round(Math.min(1, Math.max(0, v)) * 255).toString(16).padStart(2, "0");
}

/**
 * Draws a horizontal colour bar with ticks from `min` to `max` and a label.
 *
 * @param bar The colormap, value range and label.
 * @param options Size.
 * @returns Standalone SVG text.
 * @throws {RangeError} When `min`/`max` are not finite with `max > min`, or the
 *   colormap is unknown.
 */
export function colorbarSvg(bar: Colorbar, options: ColorbarOptions = {}): string {
  const { colormap, min, max, label = "value" } = bar;
  const { id = `colorbar-${colormap}` } = options;
  // Wide enough for the label (about 0.6 em a character), which is never cut off.
  const width = Math.max(
    options.width ?? 240,
    Math.ceil(label.length * FONT.legend * 0.6) + 2 * MARGIN,
  );
  if (!(Number.isFinite(min) && Number.isFinite(max) && max > min)) {
    throw new RangeError(
      `colorbarSvg: min and max must be finite with max > min, got ${min} and ${max}.`,
    );
  }
  const lut = colormapLut(colormap);
  const x = scaleLinear().domain([min, max]).range([MARGIN, width - MARGIN]);
  const ticks = x.ticks(4);
  const f = x.tickFormat(4);
  const height = 54;
  const stops: string[] = [];
  for (let s = 0; s <= STOPS; s++) {
    const i = Math.round((s / STOPS) * 255);
    const c = `#${hex(lut[i * 3])}${hex(lut[i * 3 + 1])}${hex(lut[i * 3 + 2])}`;
    stops.push(`<stop offset="${(s / STOPS).toFixed(4)}" stop-color="${c}"/>`);
  }
  const ends = [{ at: min, text: f(min) }, { at: max, text: f(max) }];
  const marks = [
    ...ticks.filter((t) => Math.abs(x(t) - x(min)) > 24 && Math.abs(x(t) - x(max)) > 24)
      .map((t) => ({ at: t, text: f(t) })),
    ...ends,
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="colorbar" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" font-family="${FONT.family}">`,
    `<title>${escapeXml(`${label}: ${f(min)} to ${f(max)} (${colormap})`)}</title>`,
    `<defs><linearGradient id="${id}" x1="0" x2="1" y1="0" y2="0">${
      stops.join("")
    }</linearGradient></defs>`,
    `<rect x="${MARGIN}" y="4" width="${
      width - 2 * MARGIN
    }" height="14" fill="url(#${id})" stroke="#999" stroke-width="0.5"/>`,
    `<g class="axis x-axis" font-size="${FONT.tick}" fill="#333">`,
    ...marks.map((m) =>
      `<line x1="${x(m.at).toFixed(1)}" x2="${
        x(m.at).toFixed(1)
      }" y1="18" y2="22" stroke="#333"/>` +
      `<text class="tick" x="${x(m.at).toFixed(1)}" y="33" text-anchor="middle">${
        escapeXml(m.text)
      }</text>`
    ),
    `<text class="axis-label" x="${
      width / 2
    }" y="49" text-anchor="middle" font-size="${FONT.legend}">${escapeXml(label)}</text>`,
    "</g>",
    "</svg>",
  ].join("\n");
}
