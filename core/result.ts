/**
 * What a plugin returns: named tensors (the numbers, e.g. a saliency map), images
 * (already encoded as PNG, ready for files and the report; a heatmap carries its
 * colour bar), plots (SVG, see `core/plots/`), figures (named numbers) and tables.
 * A result renders itself to PNG and SVG files plus a JSON file, and to an HTML
 * fragment for the report.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { encodePng, pngDataUrl, tensorToRaw } from "./images/codecs.ts";
import { writeFileAtomic } from "./files.ts";
import { saveLayersModel } from "./load.ts";
import type { Sidecar } from "./net.ts";
import { type Colorbar, colorbarSvg } from "./plots/colorbar.ts";

/** An image of a result, encoded as PNG. */
export interface ResultImage {
  /** File-safe name, unique within the result. */
  name: string;
  /** What it shows. */
  caption: string;
  /** PNG bytes. */
  png: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** What the colours of a heatmap mean, shown as a colour bar beside it. */
  colorbar?: Colorbar;
  /** For a grid of tiles: one caption per tile, in row-major grid order. */
  tiles?: string[];
  /** For a grid of tiles: its number of columns. */
  cols?: number;
}

/** Options of {@linkcode Result.addImage}. */
export interface AddImageOptions {
  /**
   * For a heatmap: its colormap and value range, shown as a colour bar beside it.
   *
   * @default {undefined}
   */
  colorbar?: Colorbar;
  /**
   * For a grid of tiles (see `grid`): one caption per tile in row-major grid
   * order (an empty string leaves a tile uncaptioned). The report shows them as
   * HTML under the image, `cols` to a row, so that text is never cut to a tile's
   * width as pixel text would be.
   *
   * @default {undefined}
   */
  tiles?: readonly string[];
  /**
   * Number of columns of the grid the tiles are laid out in; required with `tiles`.
   *
   * @default {undefined}
   */
  cols?: number;
}

/** A plot of a result, as SVG (see `linePlot` in `core/plots/`). */
export interface ResultPlot {
  /** File-safe name, unique within the result. */
  name: string;
  /** What it shows. */
  caption: string;
  /** Standalone SVG text. */
  svg: string;
}

/** Smallest width, in CSS pixels, at which the report shows an image. */
export const MIN_DISPLAY_WIDTH = 168;

/** A table of a result. */
export interface ResultTable {
  /** What it shows. */
  caption: string;
  /** Column headings. */
  columns: string[];
  /** Rows of cells. */
  rows: (string | number)[][];
}

/** A figure: a named number (or short text) that a result reports. */
export type FigureValue = number | string | boolean;

/** The JSON form of a result (`<plugin>.json`). */
export interface ResultJson {
  /** Plugin name. */
  plugin: string;
  /** Title. */
  title: string;
  /** Figures by name. */
  figures: Record<string, FigureValue>;
  /** Tables. */
  tables: ResultTable[];
  /** Tensor shapes by name. */
  tensors: Record<string, number[]>;
  /** Image names and captions. */
  images: {
    name: string;
    caption: string;
    width: number;
    height: number;
    colorbar?: Colorbar;
    tiles?: string[];
    cols?: number;
  }[];
  /** Plots: names, captions and the `.svg` files {@linkcode Result.save} writes. */
  plots: { name: string; caption: string; file: string }[];
  /** Notes. */
  notes: string[];
  /** The trained model the result carries, as saved beside the JSON. */
  model?: string;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "_");
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatCell(v: FigureValue): string {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : v.toFixed(4);
  }
  return String(v);
}

/**
 * A plugin's result.
 *
 * @example Build and render a result
 * ```ts
 * import { tf } from "./tf.ts";
 * import { Result } from "./result.ts";
 * const r = new Result("demo", "A demo");
 * r.figure("answer", 42);
 * await r.addImage("ramp", tf.linspace(0, 1, 16).reshape([4, 4, 1]) as tf.Tensor3D, "a ramp");
 * if (!r.toHtml().includes("data:image/png;base64")) throw new Error("no image");
 * r.dispose();
 * ```
 */
export class Result {
  /** Plugin name. */
  readonly plugin: string;
  /** Title for the report. */
  title: string;
  /** Figures by name. */
  readonly figures: Record<string, FigureValue> = {};
  /** Tables. */
  readonly tables: ResultTable[] = [];
  /** Images. */
  readonly images: ResultImage[] = [];
  /** Tensors by name (owned by the result: freed by {@linkcode Result.dispose}). */
  readonly tensors: Record<string, tf.Tensor> = {};
  /** Plots (SVG). */
  readonly plots: ResultPlot[] = [];
  /** Free-text notes (warnings such as skipped files). */
  readonly notes: string[] = [];
  /** The plugin's family (the report groups its contents by it); set by the runner. */
  family?: string;
  /** A trained model the result carries (owned: freed by {@linkcode Result.dispose}). */
  model?: { model: tf.LayersModel; sidecar: Sidecar };

  /** Creates an empty result. */
  constructor(plugin: string, title: string) {
    this.plugin = plugin;
    this.title = title;
  }

  /**
   * Carries a trained model: {@linkcode Result.save} writes it as a
   * LayersModel folder `<plugin>-model/` with its `convlens.json`, which
   * `--model` and `Lens.open` load again. The result owns it from now on.
   */
  setModel(model: tf.LayersModel, sidecar: Sidecar): this {
    if (this.model && this.model.model !== model) this.model.model.dispose();
    this.model = { model, sidecar };
    return this;
  }

  /** Records a figure. */
  figure(name: string, value: FigureValue): this {
    this.figures[name] = value;
    return this;
  }

  /** Adds a table. */
  table(caption: string, columns: string[], rows: (string | number)[][]): this {
    this.tables.push({ caption, columns, rows });
    return this;
  }

  /** Keeps a tensor (the result owns it from now on). */
  tensor(name: string, t: tf.Tensor): this {
    this.tensors[name]?.dispose();
    this.tensors[name] = t;
    return this;
  }

  /** Adds a note. */
  note(text: string): this {
    this.notes.push(text);
    return this;
  }

  /**
   * Encodes an image and adds it. The tensor is not kept (the caller still owns it).
   * @param name File-safe name.
   * @param pixels `[h, w, 1 | 3]` with values in [0, 1].
   * @param caption What it shows.
   * @param options A heatmap's colour bar; a grid's tile captions and columns.
   * @throws {RangeError} For `tiles` without a positive integer `cols`.
   */
  async addImage(
    name: string,
    pixels: tf.Tensor3D,
    caption = "",
    options: AddImageOptions = {},
  ): Promise<this> {
    if (options.colorbar) colorbarSvg(options.colorbar); // fail now, not at render
    const { tiles, cols } = options;
    if (tiles !== undefined && !(Number.isInteger(cols) && cols! >= 1)) {
      throw new RangeError(
        `addImage "${name}": tiles need the grid's column count, a positive integer; got cols ${cols}.`,
      );
    }
    const raw = await tensorToRaw(pixels);
    const png = await encodePng(raw);
    const clean = safeName(name);
    const i = this.images.findIndex((im) => im.name === clean);
    const image: ResultImage = { name: clean, caption, png, width: raw.width, height: raw.height };
    if (options.colorbar) image.colorbar = { ...options.colorbar };
    if (tiles !== undefined) Object.assign(image, { tiles: [...tiles], cols });
    if (i >= 0) this.images[i] = image;
    else this.images.push(image);
    return this;
  }

  /**
   * Adds a plot (SVG text, e.g. from `linePlot`), replacing one of the same name.
   * @param name File-safe name.
   * @param svg Standalone SVG text.
   * @param caption What it shows.
   */
  addPlot(name: string, svg: string, caption = ""): this {
    if (typeof svg !== "string" || !/^\s*<svg[\s>]/.test(svg) || !/<\/svg>\s*$/.test(svg)) {
      throw new TypeError(
        `addPlot "${name}": expected SVG text "<svg ...>...</svg>" (e.g. from linePlot).`,
      );
    }
    const clean = safeName(name);
    const i = this.plots.findIndex((p) => p.name === clean);
    const plot = { name: clean, caption, svg };
    if (i >= 0) this.plots[i] = plot;
    else this.plots.push(plot);
    return this;
  }

  /** The image of that name. */
  image(name: string): ResultImage | undefined {
    return this.images.find((im) => im.name === safeName(name));
  }

  /** The JSON form: figures, tables, tensor shapes, image names. */
  toJSON(): ResultJson {
    return {
      plugin: this.plugin,
      title: this.title,
      figures: this.figures,
      tables: this.tables,
      tensors: Object.fromEntries(Object.entries(this.tensors).map(([k, t]) => [k, t.shape])),
      images: this.images.map(({ name, caption, width, height, colorbar, tiles, cols }) => ({
        name,
        caption,
        width,
        height,
        ...(colorbar ? { colorbar } : {}),
        ...(tiles ? { tiles, cols } : {}),
      })),
      plots: this.plots.map(({ name, caption }) => ({
        name,
        caption,
        file: `${safeName(this.plugin)}-${name}.svg`,
      })),
      notes: this.notes,
      ...(this.model ? { model: `${safeName(this.plugin)}-model/model.json` } : {}),
    };
  }

  /**
   * Writes `<plugin>-<image>.png` for every image (and `<plugin>-<image>-colorbar.svg`
   * for a heatmap), `<plugin>-<plot>.svg` for every plot, and `<plugin>.json`.
   * @param dir Output folder (created if missing).
   * @returns The paths written.
   * @throws {RangeError} for an empty folder name or the filesystem root.
   */
  async save(dir: string): Promise<string[]> {
    // "" and "/" would both write into the filesystem root.
    if (typeof dir !== "string" || dir.replace(/\/+$/, "") === "") {
      throw new RangeError(
        `save: the folder "${dir}" is empty or the filesystem root; give a folder such as "out"`,
      );
    }
    const base = `${dir.replace(/\/+$/, "")}/${safeName(this.plugin)}`;
    const written: string[] = [];
    for (const im of this.images) {
      const path = `${base}-${im.name}.png`;
      await writeFileAtomic(path, im.png);
      written.push(path);
      if (im.colorbar) {
        await writeFileAtomic(`${base}-${im.name}-colorbar.svg`, colorbarSvg(im.colorbar) + "\n");
        written.push(`${base}-${im.name}-colorbar.svg`);
      }
    }
    for (const p of this.plots) {
      await writeFileAtomic(`${base}-${p.name}.svg`, p.svg + "\n");
      written.push(`${base}-${p.name}.svg`);
    }
    if (this.model) {
      await saveLayersModel(this.model.model, `${base}-model`, this.model.sidecar);
      written.push(`${base}-model/model.json`, `${base}-model/weights.bin`);
      written.push(`${base}-model/convlens.json`);
    }
    await writeFileAtomic(`${base}.json`, JSON.stringify(this.toJSON(), null, 2) + "\n");
    written.push(`${base}.json`);
    return written;
  }

  /**
   * An HTML fragment (a `<section>`) with the images and plots embedded. Small
   * images are shown enlarged by a whole factor (to at least
   * {@linkcode MIN_DISPLAY_WIDTH} pixels wide), pixelated rather than blurred.
   * @param id The section's id, unique in the page (the report numbers repeats).
   * @returns The fragment.
   */
  toHtml(id: string = safeName(this.plugin)): string {
    const sid = safeName(id);
    const parts = [
      `<section id="${sid}" data-plugin="${escapeHtml(this.plugin)}">`,
      `<h2>${escapeHtml(this.title)}</h2>`,
    ];
    const figs = Object.entries(this.figures);
    if (figs.length) {
      parts.push('<table class="figures"><tbody>');
      for (const [k, v] of figs) {
        parts.push(`<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(formatCell(v))}</td></tr>`);
      }
      parts.push("</tbody></table>");
    }
    for (const t of this.tables) {
      parts.push(`<table><caption>${escapeHtml(t.caption)}</caption><thead><tr>`);
      parts.push(t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join(""));
      parts.push("</tr></thead><tbody>");
      for (const row of t.rows) {
        parts.push(`<tr>${row.map((c) => `<td>${escapeHtml(formatCell(c))}</td>`).join("")}</tr>`);
      }
      parts.push("</tbody></table>");
    }
    for (const p of this.plots) {
      // Ids inside an inline SVG share the page's namespace: prefix them.
      const svg = p.svg.replace(/\b(id="|url\(#|href="#)/g, `$1${sid}-${p.name}-`);
      parts.push(
        `<figure class="plot">${svg}<figcaption>${
          escapeHtml(p.caption || p.name)
        }</figcaption></figure>`,
      );
    }
    for (const im of this.images) {
      const zoom = Math.max(1, Math.ceil(MIN_DISPLAY_WIDTH / im.width));
      const bar = im.colorbar
        ? colorbarSvg(im.colorbar, {
          id: `${sid}-${im.name}-colorbar`,
          width: Math.max(160, Math.min(im.width * zoom, 320)),
        })
        : "";
      // Tile captions sit in a grid as wide as the image, so each lines up with its column.
      const tiles = im.tiles?.some(Boolean)
        ? `<ol class="tiles" style="width:${im.width * zoom}px;` +
          `grid-template-columns:repeat(${im.cols},minmax(0,1fr))">` +
          im.tiles.map((t) => `<li>${escapeHtml(t)}</li>`).join("") + "</ol>"
        : "";
      parts.push(
        `<figure class="image"><img src="${pngDataUrl(im.png)}" width="${im.width * zoom}" ` +
          `height="${im.height * zoom}" alt="${escapeHtml(im.caption || im.name)}">${tiles}` +
          `${bar}<figcaption>${escapeHtml(im.caption || im.name)}</figcaption></figure>`,
      );
    }
    for (const n of this.notes) parts.push(`<p class="note">${escapeHtml(n)}</p>`);
    parts.push("</section>");
    return parts.join("\n");
  }

  /** Frees the result's tensors and the model it carries. */
  dispose(): void {
    this.model?.model.dispose();
    this.model = undefined;
    tf.dispose(Object.values(this.tensors));
    for (const k of Object.keys(this.tensors)) delete this.tensors[k];
  }
}
