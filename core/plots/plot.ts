/**
 * Plots as standalone SVG text: line, scatter and bar charts of named series of
 * (x, y) points, with axes, ticks, axis labels, a title and a legend. Every figure of
 * the report that is a curve (learning curves, deletion curves, attack success
 * against epsilon) is drawn here, so all of them read alike.
 *
 * Why this and not a plotting library end to end: three were tried under Deno here.
 * Vega 5 with Vega-Lite 5 renders SVG without a browser (`View.toSVG()`), legend
 * included, but brings about 70 npm packages (43 MB, among them a CLI's yargs and
 * node-fetch) and prints a `punycode` deprecation warning on every run.
 * Observable Plot 0.6 needs a DOM (it ran on linkedom) and draws its legend as HTML
 * outside the SVG, so a `.svg` file would lose it. d3-axis also needs a DOM. So the
 * hard parts come from d3-scale (nice domains, tick positions, tick formats: a small
 * DOM-free package), and the few SVG elements around them are written here.
 *
 * The output depends only on the arguments (no time, no randomness): the same plot
 * always gives the same bytes.
 *
 * @example Plot two learning curves
 * ```ts
 * import { linePlot } from "./plot.ts";
 * const svg = linePlot([
 *   { name: "train", x: [1, 2, 3], y: [0.9, 0.5, 0.3] },
 *   { name: "validation", x: [1, 2, 3], y: [1.0, 0.7, 0.6], dashed: true },
 * ], { xLabel: "epoch", yLabel: "loss", title: "Learning curves" });
 * if (!svg.startsWith("<svg") || !svg.includes(">epoch</text>")) throw new Error("no axis label");
 * ```
 *
 * @module
 */
// @ts-types="@types/d3-scale"
import { scaleBand, scaleLinear, scaleLog } from "d3-scale";
import { escapeXml, FONT, textWidth } from "./_svg.ts";

/** How a series is drawn. */
export type PlotMark = "line" | "scatter" | "bar";

/** One named series of points. */
export interface PlotSeries {
  /** Name shown in the legend. */
  name: string;
  /**
   * X values: numbers, or category names (then the x axis is categorical, as for
   * bars). All series of one plot use the same kind.
   */
  x: readonly (number | string)[];
  /** Y values, one per x; non-finite values leave a gap. */
  y: readonly number[];
  /**
   * How to draw it.
   *
   * @default {"line"}
   */
  mark?: PlotMark;
  /**
   * CSS colour; series take the palette's colours in order when not given.
   *
   * @default {undefined}
   */
  color?: string;
  /**
   * Dashed line (e.g. validation next to training in the same colour).
   *
   * @default {false}
   */
  dashed?: boolean;
}

/** Options of {@link linePlot}. */
export interface PlotOptions {
  /** Label of the x axis (with units, e.g. "epsilon (pixel units)"). */
  xLabel: string;
  /** Label of the y axis. */
  yLabel: string;
  /**
   * Title drawn on top.
   *
   * @default {undefined}
   */
  title?: string;
  /**
   * Width in SVG pixels (the report scales it down on narrow screens).
   *
   * @default {560}
   */
  width?: number;
  /**
   * Height in SVG pixels.
   *
   * @default {340}
   */
  height?: number;
  /**
   * Range of the x axis; the data's range (made nice) when not given. Numeric x only.
   *
   * @default {undefined}
   */
  xDomain?: readonly [number, number];
  /**
   * Range of the y axis; the data's range (made nice, with 0 for bars) when not given.
   *
   * @default {undefined}
   */
  yDomain?: readonly [number, number];
  /**
   * Scale of the y axis; `"log"` needs positive values.
   *
   * @default {"linear"}
   */
  yScale?: "linear" | "log";
  /**
   * Draw the legend; by default only when there is more than one series.
   *
   * @default {undefined}
   */
  legend?: boolean;
}

/** Tableau 10: distinct hues that stay apart for the colour-blind in the common cases. */
export const PLOT_PALETTE: readonly string[] = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const TICK = 5;
const LEGEND_ROW = 18;

function fmt(v: number): string {
  // Coordinates to 0.1 px: exact enough on screen, and short and stable bytes.
  return String(Math.round(v * 10) / 10);
}

function check(series: readonly PlotSeries[], options: PlotOptions): "number" | "category" {
  if (!Array.isArray(series) || series.length === 0) {
    throw new RangeError("linePlot: needs at least one series; give [{ name, x, y }].");
  }
  for (const key of ["xLabel", "yLabel"] as const) {
    if (typeof options?.[key] !== "string" || options[key].trim() === "") {
      throw new RangeError(
        `linePlot: ${key} must be a non-empty string (say what and in what units).`,
      );
    }
  }
  for (const key of ["width", "height"] as const) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v >= 120)) {
      throw new RangeError(`linePlot: ${key} must be a number of at least 120, got ${v}.`);
    }
  }
  let kind: "number" | "category" | undefined;
  for (const s of series) {
    if (!s || !Array.isArray(s.x) || !Array.isArray(s.y) || s.x.length !== s.y.length) {
      throw new RangeError(
        `linePlot: series "${s?.name}" needs arrays x and y of one length, got ` +
          `${s?.x?.length} and ${s?.y?.length}.`,
      );
    }
    if (s.mark !== undefined && !["line", "scatter", "bar"].includes(s.mark)) {
      throw new RangeError(`linePlot: mark must be "line", "scatter" or "bar", got "${s.mark}".`);
    }
    for (const x of s.x) {
      const k = typeof x === "string" ? "category" : "number";
      if (kind !== undefined && k !== kind) {
        throw new RangeError("linePlot: x values must be all numbers or all category names.");
      }
      kind = k;
    }
  }
  return kind ?? "number";
}

/**
 * Draws series of (x, y) points as an SVG chart: lines (with dots when there are
 * few points), scatter dots or grouped bars, on axes with ticks, axis labels, a
 * title and a legend.
 *
 * @param series The series, drawn in order (later on top).
 * @param options Axis labels (required), title, size, ranges.
 * @returns Standalone SVG text (`<svg xmlns=...>...</svg>`), usable inline in HTML
 *   or as a `.svg` file.
 * @throws {RangeError} For no series, x and y of different lengths, mixed x kinds,
 *   missing axis labels or a log axis over values that are not positive.
 *
 * @example A bar chart by category
 * ```ts
 * import { linePlot } from "./plot.ts";
 * const svg = linePlot([{ name: "accuracy", x: ["plain", "augmented"], y: [0.97, 0.98], mark: "bar" }],
 *   { xLabel: "training", yLabel: "held-out accuracy" });
 * if ((svg.match(/<rect class="bar"/g) ?? []).length !== 2) throw new Error("two bars expected");
 * ```
 */
export function linePlot(series: readonly PlotSeries[], options: PlotOptions): string {
  const kind = check(series, options);
  const { xLabel, yLabel, title, width = 560, height = 340, yScale = "linear" } = options;
  const legend = options.legend ?? series.length > 1;
  const colors = series.map((s, i) => s.color ?? PLOT_PALETTE[i % PLOT_PALETTE.length]);

  const ys = series.flatMap((s) => s.y.filter(Number.isFinite));
  const hasBars = series.some((s) => s.mark === "bar");
  if (yScale === "log" && ys.some((v) => v <= 0)) {
    throw new RangeError('linePlot: a log y axis needs positive values; use yScale: "linear".');
  }
  let [y0, y1] = options.yDomain ?? [Math.min(...ys), Math.max(...ys)];
  if (!ys.length && !options.yDomain) [y0, y1] = [0, 1];
  if (hasBars && yScale === "linear" && !options.yDomain) {
    [y0, y1] = [Math.min(0, y0), Math.max(0, y1)];
  }
  if (y0 === y1) [y0, y1] = yScale === "log" ? [y0 / 2, y1 * 2] : [y0 - 1, y1 + 1];

  // Layout: title, legend rows, then the plot area with room for tick labels.
  const legendItems = series.map((s) => ({
    name: s.name,
    w: 26 + textWidth(s.name, FONT.legend) + 14,
  }));
  const legendRows: { name: string; w: number; i: number }[][] = [[]];
  if (legend) {
    let used = 0;
    legendItems.forEach((it, i) => {
      if (used + it.w > width - 60 && legendRows[legendRows.length - 1].length) {
        legendRows.push([]);
        used = 0;
      }
      legendRows[legendRows.length - 1].push({ ...it, i });
      used += it.w;
    });
  }
  const top = 10 + (title ? 24 : 0) + (legend ? legendRows.length * LEGEND_ROW + 4 : 0);

  const yLin = yScale === "log" ? scaleLog() : scaleLinear();
  const y = yLin.domain([y0, y1]).range([height - 44, top]);
  if (!options.yDomain) y.nice();
  const yTicks = y.ticks(Math.max(2, Math.round((height - top - 44) / 50)));
  const yFormat = y.tickFormat(Math.max(2, Math.round((height - top - 44) / 50)));
  const yTickLabels = yTicks.map((t) => yFormat(t));
  const left = 22 + Math.max(...yTickLabels.map((t) => textWidth(t, FONT.tick)), 10) + TICK + 6;
  const right = width - 16;
  const bottom = height - 44;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" role="img" font-family="${FONT.family}">`,
    `<title>${escapeXml(title ?? `${yLabel} against ${xLabel}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
  );
  if (title) {
    parts.push(
      `<text class="title" x="${fmt(width / 2)}" y="22" text-anchor="middle" ` +
        `font-size="${FONT.title}" font-weight="600">${escapeXml(title)}</text>`,
    );
  }

  // X scale and axis.
  let xPos: (v: number | string) => number;
  let xTickMarks: { at: number; label: string }[];
  let band = 0;
  const categories = kind === "category"
    ? [...new Set(series.flatMap((s) => s.x.map(String)))]
    : [];
  if (kind === "category") {
    const xb = scaleBand<string>().domain(categories).range([left, right]).padding(0.2);
    band = xb.bandwidth();
    xPos = (v) => (xb(String(v)) ?? NaN) + band / 2;
    xTickMarks = categories.map((c) => ({ at: xPos(c), label: c }));
  } else {
    const xs = series.flatMap((s) => (s.x as number[]).filter(Number.isFinite));
    let [x0, x1] = options.xDomain ?? [Math.min(...xs), Math.max(...xs)];
    if (!xs.length && !options.xDomain) [x0, x1] = [0, 1];
    if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
    const x = scaleLinear().domain([x0, x1]).range([left, right]);
    if (!options.xDomain) x.nice();
    const n = Math.max(2, Math.round((right - left) / 80));
    const f = x.tickFormat(n);
    xPos = (v) => x(v as number);
    xTickMarks = x.ticks(n).map((t) => ({ at: x(t), label: f(t) }));
  }

  // Grid lines under everything, then the axes.
  parts.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const t of yTicks) {
    parts.push(`<line x1="${fmt(left)}" x2="${fmt(right)}" y1="${fmt(y(t))}" y2="${fmt(y(t))}"/>`);
  }
  parts.push("</g>");
  parts.push(`<g class="axis x-axis" font-size="${FONT.tick}" fill="#333">`);
  parts.push(
    `<line x1="${fmt(left)}" x2="${fmt(right)}" y1="${fmt(bottom)}" y2="${
      fmt(bottom)
    }" stroke="#333"/>`,
  );
  for (const t of xTickMarks) {
    parts.push(
      `<line x1="${fmt(t.at)}" x2="${fmt(t.at)}" y1="${fmt(bottom)}" y2="${
        fmt(bottom + TICK)
      }" stroke="#333"/>`,
      `<text class="tick" x="${fmt(t.at)}" y="${fmt(bottom + TICK + 12)}" text-anchor="middle">${
        escapeXml(t.label)
      }</text>`,
    );
  }
  parts.push(
    `<text class="axis-label" x="${fmt((left + right) / 2)}" y="${fmt(height - 8)}" ` +
      `text-anchor="middle" font-size="${FONT.label}">${escapeXml(xLabel)}</text>`,
    "</g>",
  );
  parts.push(`<g class="axis y-axis" font-size="${FONT.tick}" fill="#333">`);
  parts.push(
    `<line x1="${fmt(left)}" x2="${fmt(left)}" y1="${fmt(top)}" y2="${
      fmt(bottom)
    }" stroke="#333"/>`,
  );
  yTicks.forEach((t, i) => {
    parts.push(
      `<line x1="${fmt(left - TICK)}" x2="${fmt(left)}" y1="${fmt(y(t))}" y2="${
        fmt(y(t))
      }" stroke="#333"/>`,
      `<text class="tick" x="${fmt(left - TICK - 3)}" y="${fmt(y(t) + 4)}" text-anchor="end">${
        escapeXml(yTickLabels[i])
      }</text>`,
    );
  });
  const yMid = (top + bottom) / 2;
  parts.push(
    `<text class="axis-label" transform="translate(14 ${fmt(yMid)}) rotate(-90)" ` +
      `text-anchor="middle" font-size="${FONT.label}">${escapeXml(yLabel)}</text>`,
    "</g>",
  );

  // Marks.
  const barSeries = series.filter((s) => s.mark === "bar");
  series.forEach((s, i) => {
    const color = colors[i];
    const mark = s.mark ?? "line";
    const pts = s.x.map((xv, j) => ({ px: xPos(xv), py: y(s.y[j]), ok: Number.isFinite(s.y[j]) }))
      .map((p) => ({ ...p, ok: p.ok && Number.isFinite(p.px) && Number.isFinite(p.py) }));
    parts.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (mark === "bar") {
      const k = barSeries.indexOf(s);
      const slot = (band || (right - left) / Math.max(4, s.x.length * 2)) / barSeries.length;
      const base = y(yScale === "log" ? y.domain()[0] : Math.max(y.domain()[0], 0));
      for (const p of pts) {
        if (!p.ok) continue;
        const bx = p.px - (slot * barSeries.length) / 2 + k * slot;
        const [ya, yb] = [Math.min(p.py, base), Math.max(p.py, base)];
        parts.push(
          `<rect class="bar" x="${fmt(bx + 1)}" y="${fmt(ya)}" width="${
            fmt(Math.max(slot - 2, 1))
          }" ` +
            `height="${fmt(yb - ya)}" fill="${color}"/>`,
        );
      }
    } else {
      if (mark === "line") {
        let d = "";
        let pen = false;
        for (const p of pts) {
          if (!p.ok) {
            pen = false;
            continue;
          }
          d += `${pen ? "L" : "M"}${fmt(p.px)},${fmt(p.py)}`;
          pen = true;
        }
        parts.push(
          `<path class="line" d="${d}" fill="none" stroke="${color}" stroke-width="2"` +
            `${s.dashed ? ' stroke-dasharray="6 4"' : ""} stroke-linejoin="round"/>`,
        );
      }
      if (mark === "scatter" || pts.length <= 40) {
        const r = mark === "scatter" ? 3.5 : 2.5;
        for (const p of pts) {
          if (!p.ok) continue;
          parts.push(`<circle cx="${fmt(p.px)}" cy="${fmt(p.py)}" r="${r}" fill="${color}"/>`);
        }
      }
    }
    parts.push("</g>");
  });

  if (legend) {
    parts.push(`<g class="legend" font-size="${FONT.legend}" fill="#333">`);
    legendRows.forEach((row, r) => {
      let lx = left;
      const ly = 10 + (title ? 24 : 0) + r * LEGEND_ROW + 10;
      for (const it of row) {
        const s = series[it.i];
        const swatch = s.mark === "bar"
          ? `<rect x="${fmt(lx)}" y="${fmt(ly - 5)}" width="20" height="10" fill="${
            colors[it.i]
          }"/>`
          : `<line x1="${fmt(lx)}" x2="${fmt(lx + 20)}" y1="${fmt(ly)}" y2="${fmt(ly)}" ` +
            `stroke="${colors[it.i]}" stroke-width="2"${
              s.dashed ? ' stroke-dasharray="6 4"' : ""
            }/>`;
        parts.push(
          swatch,
          `<text x="${fmt(lx + 26)}" y="${fmt(ly + 4)}">${escapeXml(s.name)}</text>`,
        );
        lx += it.w;
      }
    });
    parts.push("</g>");
  }
  parts.push("</svg>");
  return parts.join("\n");
}
