/**
 * The standard figure and result of an attribution plugin: per image the input,
 * the signed attribution, its map and the map over the image, with a per-image
 * table, so that every method of the family reads the same way in the report.
 *
 * @example The figure of an attribution
 * ```ts ignore
 * import { attributionMap } from "./attribution.ts";
 * import { renderAttribution } from "./figures.ts";
 * const map = attributionMap(attr);
 * const picture = renderAttribution(pixels, attr, map, ["first", "second"]);
 * ```
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { InputImages } from "../../core/plugin.ts";
import { Result } from "../../core/result.ts";
import { toDisplay } from "../../core/images/display.ts";
import { colormap } from "../../core/images/colormaps.ts";
import { drawBox, grid } from "../../core/images/grids.ts";
import type { Box } from "../../core/images/grids.ts";
import type { Colorbar } from "../../core/plots/colorbar.ts";
import { attributionMap, type MapReduction } from "./attribution.ts";
import { readOnce } from "./batches.ts";
import { predictedClasses } from "./targets.ts";
import type { Net } from "../../core/net.ts";

/** Options of {@linkcode renderAttribution}. */
export interface RenderOptions {
  /** Most images drawn. @default 16 */
  maxImages?: number;
  /** Boxes to draw on the overlays (one per image), e.g. the digit's box. @default undefined */
  boxes?: readonly Box[];
  /** Points to mark on the overlays (row, column per image), e.g. a map's argmax. @default undefined */
  points?: readonly (readonly [number, number])[];
  /** Heatmap opacity over the image. @default 0.6 */
  alpha?: number;
}

/**
 * The standard figure of an attribution: one row per image with the input, the
 * signed attribution (channel sum, blue negative, red positive, each image on its
 * own scale), the map (inferno, 99th percentile of each image to full) and the
 * map over the image. It holds no text: {@linkcode attributionTiles} gives the
 * tiles' captions and {@linkcode attributionColorbar} the key of the map, for
 * `Result.addImage`.
 *
 * @param pixels Display pixels `[n, h, w, c]` in [0, 1].
 * @param attribution The attribution `[n, h, w, c]`.
 * @param map Its map `[n, h, w]`.
 * @param options Boxes, points, limits.
 * @returns A new `[H, W, 3]` image in [0, 1], 4 tiles to a row.
 */
export function renderAttribution(
  pixels: tf.Tensor4D,
  attribution: tf.Tensor4D,
  map: tf.Tensor3D,
  options: RenderOptions = {},
): tf.Tensor3D {
  const n = Math.min(pixels.shape[0], options.maxImages ?? 16);
  const [, h, w] = pixels.shape;
  const alpha = options.alpha ?? 0.6;
  const scale = Math.max(1, Math.floor(112 / Math.max(h, w)));
  const rows = tf.tidy(() => {
    const px = pixels.slice([0, 0, 0, 0], [n, -1, -1, -1]);
    const rgb = px.shape[3] === 1 ? tf.tile(px, [1, 1, 1, 3]) : px;
    const signed = toDisplay(attribution.slice([0, 0, 0, 0], [n, -1, -1, -1]).sum(3), {
      mode: "symmetric",
      perItem: true,
    }) as tf.Tensor3D;
    const signedRgb = colormap(signed, "coolwarm", { min: 0, max: 1 });
    const m = toDisplay(map.slice([0, 0, 0], [n, -1, -1]), {
      mode: "percentile",
      percentile: 99,
      perItem: true,
    }) as tf.Tensor3D;
    const heat = colormap(m, "inferno", { min: 0, max: 1 });
    let over = tf.add(tf.mul(rgb, 1 - alpha), tf.mul(heat, alpha)) as tf.Tensor4D;
    if (options.boxes || options.points) {
      const tiles = tf.unstack(over) as tf.Tensor3D[];
      over = tf.stack(tiles.map((t, i) => {
        let out = t;
        const box = options.boxes?.[i];
        if (box) out = drawBox(out, box, [0, 1, 0], 1);
        const pt = options.points?.[i];
        if (pt) {
          out = drawBox(out, { y0: pt[0] - 1, x0: pt[1] - 1, y1: pt[0] + 2, x1: pt[1] + 2 }, [
            0,
            0.8,
            1,
          ], 1);
        }
        return out;
      })) as tf.Tensor4D;
    }
    // Interleave: input, signed, map, overlay for each image.
    return tf.stack([rgb, signedRgb, heat, over], 1).reshape([n * 4, h, w, 3]) as tf.Tensor4D;
  });
  try {
    return grid(rows, { cols: 4, scale });
  } finally {
    rows.dispose();
  }
}

/**
 * The captions of the tiles of {@linkcode renderAttribution}, in grid order:
 * per image its label, then "signed", "map" and "overlay".
 *
 * @param labels One caption per image.
 * @param count Images drawn.
 * @returns `4 * count` captions.
 */
export function attributionTiles(labels: readonly string[], count: number): string[] {
  const tiles: string[] = [];
  for (let i = 0; i < count; i++) tiles.push(labels[i] ?? "", "signed", "map", "overlay");
  return tiles;
}

/** What each reduction of the attribution makes of a pixel's channels. */
const REDUCED: Record<MapReduction, string> = {
  "max-abs": "max over channels of |attribution|",
  "sum-abs": "sum over channels of |attribution|",
  "sum": "sum over channels of attribution",
};

/**
 * The colour bar of the map tiles of {@linkcode renderAttribution}: inferno from 0
 * to each image's 99th percentile of the map (the figure scales every image on
 * its own, so the bar is in units of that percentile).
 *
 * @param what What the map is, e.g. "|dS/dx| (max over channels)".
 * @returns The colour bar for `Result.addImage`.
 */
export function attributionColorbar(what: string): Colorbar {
  return { colormap: "inferno", min: 0, max: 1, label: `${what} / each image's 99th pct` };
}

/** What {@linkcode attributionResult} puts in the standard result. */
export interface AttributionReport {
  /**
   * The model, to mark misclassified images (known label, another prediction)
   * beside their explanation. @default none: no marks
   */
  net?: Net;
  /** Plugin name. */
  plugin: string;
  /** Title of the result. */
  title: string;
  /** The attribution (the result takes ownership). */
  attribution: tf.Tensor4D;
  /** The class explained for each image (omit for unit projections). */
  classes?: readonly number[];
  /** Whether to draw the figure. */
  render: boolean;
  /** How the map is reduced from the attribution. @default "max-abs" */
  reduce?: MapReduction;
  /** Extra columns of the per-image table (column name -> one value per image). */
  columns?: Record<string, readonly (string | number)[]>;
  /** What the figure shows, for its caption. */
  caption?: string;
  /**
   * What the map's values are, for its colour bar, e.g. "|dS/dx| (max over channels)".
   * @default the reduction's words, e.g. "max over channels of |attribution|"
   */
  mapLabel?: string;
}

/**
 * The standard result of an attribution plugin: tensors `attribution` `[n, h, w,
 * c]` and `map` `[n, h, w]`, figures `method` and `classes`, a per-image table and
 * (when `render`) the figure of {@linkcode renderAttribution}.
 *
 * @param images The images explained.
 * @param report The attribution and what to say about it.
 * @returns The result.
 */
export async function attributionResult(
  images: InputImages,
  report: AttributionReport,
): Promise<Result> {
  const r = new Result(report.plugin, report.title);
  const map = attributionMap(report.attribution, report.reduce ?? "max-abs");
  r.tensor("attribution", report.attribution);
  r.tensor("map", map);
  r.figure("method", report.plugin);
  if (report.classes) r.figure("classes", report.classes.join(","));
  if (!report.render) return r;
  const n = images.x.shape[0];
  const [max, total] = tf.tidy(() => [
    map.reshape([n, -1]).max(1),
    report.attribution.reshape([n, -1]).sum(1),
  ]);
  const [maxes, totals] = await Promise.all([readOnce(max), readOnce(total)]);
  const stats = { max: maxes, total: totals };
  const extra = Object.entries(report.columns ?? {});
  const rows = Array.from({ length: n }, (_, i) => [
    images.names[i] ?? `image ${i}`,
    ...(report.classes ? [report.classes[i]] : []),
    images.labels[i] ?? -1,
    ...extra.map(([, v]) => v[i]),
    stats.max[i],
    stats.total[i],
  ]);
  r.table(
    "Per image",
    [
      "image",
      ...(report.classes ? ["class explained"] : []),
      "true label",
      ...extra.map(([k]) => k),
      "map max",
      "sum of attribution",
    ],
    rows,
  );
  // A wrong prediction is said next to its explanation, never left for the
  // reader to discover.
  const predicted = report.net && images.labels.some((l) => l >= 0)
    ? await predictedClasses(report.net, images.x)
    : undefined;
  const wrong = (i: number) =>
    predicted && images.labels[i] >= 0 && predicted[i] !== images.labels[i]
      ? ` [MISCLASSIFIED: predicted ${report.net!.labels[predicted[i]]}, label ${
        report.net!.labels[images.labels[i]]
      }]`
      : "";
  const captions = images.names.map((name, i) =>
    (report.classes ? `c${report.classes[i]} ${name}` : name) + wrong(i)
  );
  if (predicted) {
    const table = r.tables.at(-1)!;
    const at = table.columns.indexOf("true label") + 1;
    table.columns.splice(at, 0, "predicted");
    table.rows.forEach((row, i) => row.splice(at, 0, predicted[i]));
    const missed = predicted.filter((c, i) => images.labels[i] >= 0 && c !== images.labels[i]);
    if (missed.length) {
      r.note(
        `${missed.length} of ${n} images are misclassified by the model (marked in the figure ` +
          "and the table): their maps explain the class in the table, not the label",
      );
    }
  }
  const picture = renderAttribution(images.pixels, report.attribution, map);
  const shown = Math.min(n, 16);
  try {
    await r.addImage(
      report.plugin,
      picture,
      report.caption ??
        `${report.title}: per image the input, the signed attribution (channel sum; blue ` +
          "negative, red positive, each image on its own symmetric scale), the map and the " +
          `map over the input${shown < n ? ` (first ${shown} of ${n} images)` : ""}`,
      {
        tiles: attributionTiles(captions, shown),
        cols: 4,
        colorbar: attributionColorbar(report.mapLabel ?? REDUCED[report.reduce ?? "max-abs"]),
      },
    );
  } finally {
    picture.dispose();
  }
  return r;
}
