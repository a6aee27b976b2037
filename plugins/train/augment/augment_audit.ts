/**
 * `augment-audit` (train): an audit of augmentation through the model. For
 * each transform at rising strength (a flip; rotation, translation and zoom
 * as one exact affine map each; lens distortion; brightness; contrast;
 * cutout), applied with exact strengths (random sign or direction per image)
 * to held-out images: how often the model's prediction flips, and whether the
 * Grad-CAM map (Selvaraju et al., via the exported `gradCamMap`) moves with
 * the image. For a geometric transform `T`, the map of the transformed image
 * `CAM(T x)` is compared (Pearson correlation per image, mean over images)
 * with the transformed map `T CAM(x)` (the same drawn parameters replayed on
 * the map) and with the map left where it was, `CAM(x)`; for a photometric
 * transform the map should stay where it was. Grad-CAM is taken for the class
 * predicted on the original image.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { ParamValues } from "../../../core/params.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import type { Net } from "../../../core/net.ts";
import type { Random } from "../../../core/random.ts";
import { Result } from "../../../core/result.ts";
import { linePlot, PLOT_PALETTE } from "../../../core/plots/plot.ts";
import { gradCamLayer, gradCamMap, upsampleToInput } from "../../attribute/grad_cam.ts";
import { disposeEvaluationImages, evaluationImages } from "../../attribute/eval/evaluation.ts";
import { horizontalFlip } from "./flip.ts";
import { randomAffine } from "./affine.ts";
import { lensDistortion } from "./lens_distortion.ts";
import { colorJitter } from "./color_jitter.ts";
import { cutout } from "./erasing.ts";
import type { DrawnParams, Transform } from "./transform.ts";

/** The parameters of the `augment-audit` plugin: its schema, declared once. */
export const AUGMENT_AUDIT_PARAMS = {
  images: { type: "integer", default: 200, min: 1, max: 5000, help: "held-out images audited" },
  batchSize: {
    type: "integer",
    default: 100,
    min: 1,
    max: 1000,
    help: "images per Grad-CAM batch",
  },
  levels: {
    type: "integer",
    default: 6,
    min: 2,
    max: 6,
    help: "strengths per transform (spread over its list, weakest and strongest kept)",
  },
  layer: { type: "layer", help: "Grad-CAM layer (default: the last with a spatial grid)" },
} as const;

/** The `augment-audit` plugin's parameter values, typed from {@linkcode AUGMENT_AUDIT_PARAMS}. */
export type AugmentAuditOptions = ParamValues<typeof AUGMENT_AUDIT_PARAMS>;

/** One audited transform: its strengths and how to make exact parameters at a strength. */
interface Family {
  name: string;
  unit: string;
  strengths: number[];
  geometric: boolean;
  t: Transform;
  params(n: number, h: number, w: number, s: number, rng: Random): DrawnParams;
}

const sign = (rng: Random) => (rng.next() < 0.5 ? -1 : 1);
const fill = (n: number, v: number) => Array(n).fill(v);
const affineAt = (n: number, o: Partial<Record<string, number[]>>) => ({
  angle: fill(n, 0),
  shear: fill(n, 0),
  zoom: fill(n, 1),
  stretch: fill(n, 1),
  tx: fill(n, 0),
  ty: fill(n, 0),
  ...o,
});
const jitterAt = (n: number, o: Partial<Record<string, number[]>>) => ({
  brightness: fill(n, 1),
  contrast: fill(n, 1),
  saturation: fill(n, 1),
  hue: fill(n, 0),
  order: fill(n, 0),
  ...o,
});

/** The audited transforms. */
function families(): Family[] {
  const affine = randomAffine();
  const jitter = colorJitter();
  const arr = (n: number, f: () => number) => Array.from({ length: n }, f);
  return [
    {
      name: "horizontal flip",
      unit: "flipped",
      strengths: [0, 1],
      geometric: true,
      t: horizontalFlip(),
      params: (n, _h, _w, s) => ({ flip: fill(n, s) }),
    },
    {
      name: "rotation",
      unit: "degrees",
      strengths: [0, 5, 10, 20, 30, 45],
      geometric: true,
      t: affine,
      params: (n, _h, _w, s, rng) => affineAt(n, { angle: arr(n, () => s * sign(rng)) }),
    },
    {
      name: "translation",
      unit: "fraction of the side",
      strengths: [0, 0.05, 0.1, 0.15, 0.2, 0.3],
      geometric: true,
      t: affine,
      params: (n, h, w, s, rng) => {
        const a = arr(n, () => 2 * Math.PI * rng.next());
        return affineAt(n, {
          tx: a.map((v) => s * w * Math.cos(v)),
          ty: a.map((v) => s * h * Math.sin(v)),
        });
      },
    },
    {
      name: "zoom",
      unit: "factor",
      strengths: [1, 1.1, 1.25, 1.5, 1.75, 2],
      geometric: true,
      t: affine,
      params: (n, _h, _w, s) => affineAt(n, { zoom: fill(n, s) }),
    },
    {
      name: "lens distortion",
      unit: "|k1|",
      strengths: [0, 0.1, 0.2, 0.3, 0.4, 0.5],
      geometric: true,
      t: lensDistortion(),
      params: (n, _h, _w, s, rng) => ({ k1: arr(n, () => s * sign(rng)), k2: fill(n, 0) }),
    },
    {
      name: "brightness",
      unit: "|factor - 1|",
      strengths: [0, 0.2, 0.4, 0.6, 0.8],
      geometric: false,
      t: jitter,
      params: (n, _h, _w, s, rng) => jitterAt(n, { brightness: arr(n, () => 1 + s * sign(rng)) }),
    },
    {
      name: "contrast",
      unit: "1 - factor",
      strengths: [0, 0.2, 0.4, 0.6, 0.8],
      geometric: false,
      t: jitter,
      params: (n, _h, _w, s) => jitterAt(n, { contrast: fill(n, 1 - s) }),
    },
    {
      name: "cutout",
      unit: "side fraction",
      strengths: [0, 0.2, 0.3, 0.4, 0.5, 0.6],
      geometric: false,
      t: cutout(),
      params: (n, h, w, s, rng) => {
        const side = Math.round(s * Math.min(h, w));
        return {
          top: arr(n, () => Math.floor(rng.next() * h) - Math.floor(side / 2)),
          left: arr(n, () => Math.floor(rng.next() * w) - Math.floor(side / 2)),
          height: fill(n, side),
          width: fill(n, side),
          seed: [0],
        };
      },
    },
  ];
}

/** `k` of the strengths, evenly spread, the first and the last kept. */
function spread(strengths: number[], k: number): number[] {
  if (k >= strengths.length) return strengths;
  const idx = Array.from(
    { length: k },
    (_, i) => Math.round((i * (strengths.length - 1)) / (k - 1)),
  );
  return [...new Set(idx)].map((i) => strengths[i]);
}

/** Pearson correlation per image of two `[n, h, w, 1]` maps; NaN where a map is constant. */
async function correlations(a: tf.Tensor4D, b: tf.Tensor4D): Promise<number[]> {
  const n = a.shape[0];
  const r = tf.tidy(() => {
    const ca = a.reshape([n, -1]), cb = b.reshape([n, -1]);
    const da = ca.sub(ca.mean(1, true)), db = cb.sub(cb.mean(1, true));
    return da.mul(db).sum(1).div(da.square().sum(1).mul(db.square().sum(1)).sqrt());
  });
  const v = Array.from(await r.data() as Float32Array);
  r.dispose();
  return v;
}

function meanFinite(v: number[]): number {
  const f = v.filter(Number.isFinite);
  return f.length ? f.reduce((s, x) => s + x, 0) / f.length : NaN;
}

/** Predictions and upsampled Grad-CAM maps (`[n, h, w, 1]`) of a batch of pixels, chunk by chunk. */
async function camsOf(
  net: Net,
  pixels: tf.Tensor4D,
  classes: number[] | undefined,
  layer: string,
  batchSize: number,
): Promise<{ predicted: number[]; cams: tf.Tensor4D }> {
  const n = pixels.shape[0];
  const predicted: number[] = [];
  const parts: tf.Tensor4D[] = [];
  try {
    for (let i = 0; i < n; i += batchSize) {
      const k = Math.min(batchSize, n - i);
      const x = tf.tidy(() =>
        net.fromPixels(pixels.slice([i, 0, 0, 0], [k, -1, -1, -1])) as tf.Tensor4D
      );
      try {
        const pr = tf.tidy(() => net.probabilities(x).argMax(1));
        const top = Array.from(await pr.data() as Int32Array);
        pr.dispose();
        predicted.push(...top);
        const cam = gradCamMap(net, x, classes ? classes.slice(i, i + k) : top, { layer });
        parts.push(
          tf.tidy(() =>
            upsampleToInput(cam, x).slice([0, 0, 0, 0], [-1, -1, -1, 1]) as tf.Tensor4D
          ),
        );
        cam.dispose();
      } finally {
        x.dispose();
      }
    }
    const cams = parts.length === 1 ? parts[0] : tf.concat(parts) as tf.Tensor4D;
    if (parts.length > 1) tf.dispose(parts);
    return { predicted, cams };
  } catch (err) {
    tf.dispose(parts);
    throw err;
  }
}

/** The `augment-audit` plugin. */
export const augmentAudit: Plugin<typeof AUGMENT_AUDIT_PARAMS> = definePlugin({
  name: "augment-audit",
  family: "train",
  summary: "Each augmentation at rising strength: prediction flips and whether Grad-CAM follows",
  params: AUGMENT_AUDIT_PARAMS,
  resultShape: () => ({}),
  demo: [{ images: 50 }],
  async run(ctx, p) {
    const { net } = ctx;
    const layer = gradCamLayer(net, p.layer);
    const ev = await evaluationImages(ctx, p.images, "augment-audit");
    const pixels = ev.images.pixels;
    const [n, h, w] = pixels.shape;
    const result = new Result(
      "augment-audit",
      "Augmentation audit: prediction flips and Grad-CAM under each transform",
    );
    let base: tf.Tensor4D | undefined;
    try {
      const orig = await camsOf(net, pixels, undefined, layer, p.batchSize);
      base = orig.cams;
      const rows: (string | number)[][] = [];
      const curves: {
        name: string;
        x: number[];
        flip: number[];
        moves: number[];
        stays: number[];
      }[] = [];
      const fams = families().map((f) => ({ ...f, strengths: spread(f.strengths, p.levels) }));
      const total = fams.reduce((s, f) => s + f.strengths.length, 0);
      let done = 0;
      for (const f of fams) {
        const c = {
          name: f.name,
          x: [] as number[],
          flip: [] as number[],
          moves: [] as number[],
          stays: [] as number[],
        };
        const top = f.strengths[f.strengths.length - 1], bottom = f.strengths[0];
        for (const s of f.strengths) {
          const params = f.params(n, h, w, s, ctx.rng);
          const moved = tf.tidy(() => f.t.apply(pixels, params).clipByValue(0, 1) as tf.Tensor4D);
          let after: { predicted: number[]; cams: tf.Tensor4D } | undefined;
          let carried: tf.Tensor4D | undefined;
          try {
            after = await camsOf(net, moved, orig.predicted, layer, p.batchSize);
            const flips = after.predicted.filter((q, i) => q !== orig.predicted[i]).length / n;
            carried = f.geometric ? f.t.apply(base, params) : undefined;
            const withImage = meanFinite(await correlations(after.cams, carried ?? base));
            const stays = meanFinite(await correlations(after.cams, base));
            rows.push([
              f.name,
              s,
              f.unit,
              flips,
              Number(withImage.toFixed(4)),
              Number(stays.toFixed(4)),
            ]);
            c.x.push((s - bottom) / (top - bottom));
            c.flip.push(100 * flips);
            c.moves.push(withImage);
            c.stays.push(stays);
            if (s === top) {
              const key = f.name.replace(/ (\w)/g, (_, a) => a.toUpperCase());
              result.figure(`${key}.flipRate`, flips);
              result.figure(`${key}.camWithImage`, Number(withImage.toFixed(4)));
              result.figure(`${key}.camStaysPut`, Number(stays.toFixed(4)));
            }
          } finally {
            tf.dispose([moved, ...(after ? [after.cams] : []), ...(carried ? [carried] : [])]);
          }
          ctx.progress(++done, total);
        }
        curves.push(c);
      }
      result.figure("images", n).figure("layer", layer);
      result.table(
        `Prediction flips and Grad-CAM (${layer}) under each transform at rising strength, ${ev.source}: ` +
          "flip rate (share of images whose top-1 class changes), the correlation of the transformed " +
          "image's map with the transformed map (moves with the image) and with the original map (stays put)",
        [
          "transform",
          "strength",
          "unit",
          "flip rate",
          "CAM r, moved map",
          "CAM r, map left in place",
        ],
        rows,
      );
      result.addPlot(
        "flips",
        linePlot(curves.map((c) => ({ name: c.name, x: c.x, y: c.flip })), {
          title: "How often the prediction flips",
          xLabel: "strength (fraction of each transform's largest, see the table)",
          yLabel: "prediction flips (%)",
          legend: true,
        }),
        "Share of images whose predicted class changes under each transform, against its strength",
      );
      result.addPlot(
        "grad-cam",
        linePlot(
          curves.filter((_, k) => fams[k].geometric).flatMap((c, k) => [
            { name: `${c.name}: moved map`, x: c.x, y: c.moves, color: PLOT_PALETTE[k] },
            {
              name: `${c.name}: map in place`,
              x: c.x,
              y: c.stays,
              dashed: true,
              color: PLOT_PALETTE[k],
            },
          ]),
          {
            title: "Does Grad-CAM move with the image?",
            xLabel: "strength (fraction of each transform's largest)",
            yLabel: "correlation with the transformed image's map",
            legend: true,
          },
        ),
        "For the geometric transforms: correlation of Grad-CAM of the transformed image with the " +
          "transformed map (solid) and with the map left where it was (dashed); solid above dashed means " +
          "the map follows the object",
      );
      return result;
    } catch (err) {
      result.dispose();
      throw err;
    } finally {
      base?.dispose();
      disposeEvaluationImages(ev);
    }
  },
});
