/**
 * Figures made of tiles: grids of images with optional labels and title, and
 * rectangles (receptive fields, bounding boxes) drawn on images. {@link Box} is
 * the one rectangle type of convlens.

 * Conventions: image tensors are float32 `[height, width, channels]` (or
 * `[batch, height, width, channels]`) with values in [0, 1] and 1 (gray) or 3
 * (RGB) channels. Every function that returns a tensor leaves
 * `tf.memory().numTensors` unchanged apart from the tensor it returns; inputs are
 * never disposed.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { GLYPH_HEIGHT, GLYPH_SPACING, GLYPH_WIDTH, renderText } from "../_font.ts";
import { checkImageTensor, checkSize } from "./_checks.ts";
import { toRgb } from "./display.ts";

/** An RGB colour with components in [0, 1]. */
export type Rgb = readonly [number, number, number];

/** A rectangle in pixel coordinates: rows `y0 <= y < y1`, columns `x0 <= x < x1`. */
export interface Box {
  /** First row (inclusive). */
  y0: number;
  /** First column (inclusive). */
  x0: number;
  /** End row (exclusive). */
  y1: number;
  /** End column (exclusive). */
  x1: number;
}

function checkRgb(c: Rgb, what: string): void {
  if (!Array.isArray(c) || c.length !== 3 || !c.every((v) => v >= 0 && v <= 1)) {
    throw new RangeError(`${what} must be an [r, g, b] triple with values in [0, 1].`);
  }
}

/** Options of {@link grid} and {@link gridLayout}. */
export interface GridOptions {
  /**
   * Number of columns.
   *
   * @default {Math.ceil(Math.sqrt(count))}
   */
  cols?: number;
  /**
   * Background pixels between tiles and around the grid (in output pixels).
   *
   * @default {2}
   */
  pad?: number;
  /**
   * Integer nearest-neighbour upscaling of each tile (e.g. 4 shows 28x28 tiles
   * at 112x112).
   *
   * @default {1}
   */
  scale?: number;
  /**
   * One label per tile, drawn under it with the built-in 5x7 font (cut to the
   * tile's width). Fewer labels than tiles leaves the rest blank. Only for a PNG
   * that must carry its text on its own: in a report, give the labels to
   * `Result.addImage` as `tiles`, which shows them in full as HTML.
   *
   * @default {undefined}
   */
  labels?: readonly string[];
  /**
   * A title drawn on top of the grid (cut to the grid's width).
   *
   * @default {undefined}
   */
  title?: string;
  /**
   * Integer upscaling of the font (1 gives 5x7 pixel glyphs).
   *
   * @default {1}
   */
  fontScale?: number;
  /**
   * Background colour.
   *
   * @default {[1, 1, 1]}
   */
  background?: Rgb;
  /**
   * Text colour.
   *
   * @default {[0, 0, 0]}
   */
  textColor?: Rgb;
}

/** The geometry of a grid figure, in output pixels. */
export interface GridLayout {
  /** Number of rows of tiles. */
  rows: number;
  /** Number of columns of tiles. */
  cols: number;
  /** Height of one upscaled tile. */
  tileHeight: number;
  /** Width of one upscaled tile. */
  tileWidth: number;
  /** Height of the label strip under each tile (0 without labels). */
  labelHeight: number;
  /** Height of the title strip (0 without a title). */
  titleHeight: number;
  /** Height of one cell: tile plus label strip. */
  cellHeight: number;
  /** Width of one cell. */
  cellWidth: number;
  /** Height of the whole figure: `titleHeight + rows * (cellHeight + pad) + pad`. */
  height: number;
  /** Width of the whole figure: `cols * (cellWidth + pad) + pad`. */
  width: number;
}

/** Font pixels of space above a line of text in a label or title strip. */
const TEXT_MARGIN_TOP = 2;
/** Font pixels of space below a line of text in a label or title strip. */
const TEXT_MARGIN_BOTTOM = 1;

/**
 * Computes the geometry of the figure {@link grid} draws, without drawing it.
 *
 * @param count Number of tiles (at least 1).
 * @param tileHeight Height of one tile before upscaling.
 * @param tileWidth Width of one tile before upscaling.
 * @param options The grid's options.
 * @returns The figure's layout.
 * @throws {RangeError} For non-positive or non-integer sizes.
 */
export function gridLayout(
  count: number,
  tileHeight: number,
  tileWidth: number,
  options: GridOptions = {},
): GridLayout {
  const {
    cols: colsOption,
    pad = 2,
    scale = 1,
    labels,
    title,
    fontScale = 1,
  } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`grid: needs at least one tile, got ${count}.`);
  }
  checkSize(tileHeight, tileWidth, "grid tiles");
  const cols = colsOption ?? Math.ceil(Math.sqrt(count));
  const positive = { cols, scale, fontScale };
  for (const [key, v] of Object.entries(positive)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`grid: ${key} must be a positive integer, got ${v}.`);
    }
  }
  if (!Number.isInteger(pad) || pad < 0) {
    throw new RangeError(`grid: pad must be a non-negative integer, got ${pad}.`);
  }
  if (labels !== undefined && labels.length > count) {
    throw new RangeError(`grid: ${labels.length} labels for ${count} tiles; give one per tile.`);
  }
  const rows = Math.ceil(count / cols);
  const textHeight = (TEXT_MARGIN_TOP + GLYPH_HEIGHT + TEXT_MARGIN_BOTTOM) * fontScale;
  const labelHeight = labels !== undefined ? textHeight : 0;
  const titleHeight = title !== undefined ? textHeight : 0;
  const th = tileHeight * scale, tw = tileWidth * scale;
  const cellHeight = th + labelHeight;
  return {
    rows,
    cols,
    tileHeight: th,
    tileWidth: tw,
    labelHeight,
    titleHeight,
    cellHeight,
    cellWidth: tw,
    height: titleHeight + rows * (cellHeight + pad) + pad,
    width: cols * (tw + pad) + pad,
  };
}

/** Longest prefix of `text` whose rendering fits in `width` pixels. */
function fitText(text: string, width: number, fontScale: number): string {
  const step = (GLYPH_WIDTH + GLYPH_SPACING) * fontScale;
  const n = Math.max(0, Math.floor((width + GLYPH_SPACING * fontScale) / step));
  return text.slice(0, n);
}

/**
 * Draws centred text strips, one per entry, into an RGB float buffer of shape
 * `[texts.length, height, width, 3]`.
 */
function textStrips(
  texts: readonly string[],
  height: number,
  width: number,
  fontScale: number,
  background: Rgb,
  color: Rgb,
): Float32Array {
  const out = new Float32Array(texts.length * height * width * 3);
  for (let i = 0; i < out.length; i += 3) {
    out[i] = background[0];
    out[i + 1] = background[1];
    out[i + 2] = background[2];
  }
  texts.forEach((text, n) => {
    const bitmap = renderText(fitText(text, width, fontScale), fontScale);
    const x0 = Math.floor((width - bitmap.width) / 2);
    const y0 = TEXT_MARGIN_TOP * fontScale;
    for (let y = 0; y < bitmap.height; y++) {
      for (let x = 0; x < bitmap.width; x++) {
        if (!bitmap.data[y * bitmap.width + x]) continue;
        const o = ((n * height + y0 + y) * width + x0 + x) * 3;
        out[o] = color[0];
        out[o + 1] = color[1];
        out[o + 2] = color[2];
      }
    }
  });
  return out;
}

/**
 * Lays out tiles in a labelled grid: each tile upscaled by an integer factor,
 * with an optional label under it and an optional title on top. Gray tiles are
 * shown as gray RGB; values are clipped to [0, 1] (map them with
 * {@link toDisplay} or {@link colormap} first). The figure's size is given by
 * {@link gridLayout}.
 *
 * @param tiles A `[count, h, w, 1 | 3]` batch, or a list of `[h, w, 1 | 3]`
 *   images of one size.
 * @param options Layout, labels and colours, see {@link GridOptions}.
 * @returns A new `[height, width, 3]` RGB figure.
 * @throws {RangeError} For no tiles, tiles of different sizes or bad options.
 */
export function grid(tiles: tf.Tensor4D | tf.Tensor3D[], options: GridOptions = {}): tf.Tensor3D {
  const { labels, title, background = [1, 1, 1], textColor = [0, 0, 0] } = options;
  checkRgb(background, "grid: background");
  checkRgb(textColor, "grid: textColor");
  let count: number, h: number, w: number;
  if (Array.isArray(tiles)) {
    if (tiles.length === 0) throw new RangeError("grid: needs at least one tile, got 0.");
    tiles.forEach((t, i) => checkImageTensor(t, `grid (tile ${i})`));
    [h, w] = tiles[0].shape;
    const odd = tiles.findIndex((t) => t.shape[0] !== h || t.shape[1] !== w);
    if (odd >= 0) {
      throw new RangeError(
        `grid: all tiles must have one size; tile 0 is ${h}x${w} but tile ${odd} is ` +
          `${tiles[odd].shape[0]}x${tiles[odd].shape[1]}. Resize them first.`,
      );
    }
    count = tiles.length;
  } else {
    if (!(tiles instanceof tf.Tensor) || tiles.rank !== 4 || ![1, 3].includes(tiles.shape[3])) {
      throw new RangeError(
        "grid: expected a [count, height, width, 1 | 3] batch or a list of images, got " +
          `${tiles instanceof tf.Tensor ? `shape [${tiles.shape.join(", ")}]` : typeof tiles}.`,
      );
    }
    [count, h, w] = tiles.shape;
  }
  const layout = gridLayout(count, h, w, options);
  const { rows, cols, cellHeight, cellWidth, labelHeight, titleHeight } = layout;
  const { pad = 2, scale = 1, fontScale = 1 } = options;
  return tf.tidy(() => {
    const batch = Array.isArray(tiles) ? tf.stack(tiles.map((t) => toRgb(t))) : tiles.toFloat();
    let x = tf.clipByValue(batch.shape[3] === 1 ? tf.tile(batch, [1, 1, 1, 3]) : batch, 0, 1);
    if (scale > 1) {
      x = tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [h * scale, w * scale], false, true);
    }
    if (labels !== undefined) {
      const texts = Array.from({ length: count }, (_, i) => labels[i] ?? "");
      const strips = textStrips(texts, labelHeight, cellWidth, fontScale, background, textColor);
      x = tf.concat([x, tf.tensor4d(strips, [count, labelHeight, cellWidth, 3])], 1);
    }
    // Work relative to the background so that padding with zeros paints it.
    const bg = tf.tensor1d([...background]);
    const cells = tf.pad(tf.sub(x, bg), [[0, rows * cols - count], [0, pad], [0, pad], [0, 0]]);
    const rowMajor = cells
      .reshape([rows, cols, cellHeight + pad, (cellWidth + pad) * 3])
      .transpose([0, 2, 1, 3])
      .reshape([rows * (cellHeight + pad), cols * (cellWidth + pad), 3]);
    let figure = tf.add(tf.pad(rowMajor, [[pad, 0], [pad, 0], [0, 0]]), bg) as tf.Tensor3D;
    if (title !== undefined) {
      const strip = textStrips(
        [title],
        titleHeight,
        layout.width,
        fontScale,
        background,
        textColor,
      );
      figure = tf.concat([tf.tensor3d(strip, [titleHeight, layout.width, 3]), figure], 0);
    }
    return figure;
  });
}

/**
 * Draws the outline of a rectangle on an image, e.g. a receptive field or a
 * bounding box. The outline lies inside the box, `thickness` pixels wide; parts
 * outside the image are not drawn (a box may extend past the image, as
 * receptive fields do). Coordinates are rounded to whole pixels.
 *
 * @param image A `[height, width, 1 | 3]` image in [0, 1]; gray becomes gray RGB.
 * @param box The rectangle, `y1`/`x1` exclusive.
 * @param color Outline colour.
 * @param thickness Outline width in pixels (a positive integer).
 * @returns A new `[height, width, 3]` image.
 */
export function drawBox(
  image: tf.Tensor3D,
  box: Box,
  color: Rgb = [1, 0, 0],
  thickness = 1,
): tf.Tensor3D {
  checkImageTensor(image, "drawBox");
  checkRgb(color, "drawBox: color");
  if (!Number.isInteger(thickness) || thickness < 1) {
    throw new RangeError(`drawBox: thickness must be a positive integer, got ${thickness}.`);
  }
  const coords = [box?.y0, box?.x0, box?.y1, box?.x1];
  if (!coords.every((v) => Number.isFinite(v))) {
    throw new RangeError(
      `drawBox: box must have finite y0, x0, y1, x1, got ${JSON.stringify(box)}.`,
    );
  }
  const [y0, x0, y1, x1] = coords.map(Math.round);
  const [h, w] = image.shape;
  const mask = new Float32Array(h * w);
  const mark = (ya: number, yb: number, xa: number, xb: number): void => {
    for (let y = Math.max(ya, 0); y < Math.min(yb, h); y++) {
      const lo = Math.max(xa, 0), hi = Math.min(xb, w);
      if (hi > lo) mask.fill(1, y * w + lo, y * w + hi);
    }
  };
  if (y1 > y0 && x1 > x0) {
    const t = thickness;
    mark(y0, Math.min(y0 + t, y1), x0, x1); // top
    mark(Math.max(y1 - t, y0), y1, x0, x1); // bottom
    mark(y0, y1, x0, Math.min(x0 + t, x1)); // left
    mark(y0, y1, Math.max(x1 - t, x0), x1); // right
  }
  return tf.tidy(() => {
    const m = tf.tensor3d(mask, [h, w, 1]);
    const c = tf.tensor1d([...color]);
    return tf.add(tf.mul(toRgb(image), tf.sub(1, m)), tf.mul(m, c));
  });
}
