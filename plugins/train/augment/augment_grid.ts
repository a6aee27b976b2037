/**
 * `augment` (train): "change the pixels without changing the label", drawn.
 * One of the run's images under each transform of the pipeline (several
 * draws each) and under the whole standard pipeline; then an RGB demo on a
 * seeded procedural RGB set (no RGB data set can be had here) for the colour
 * transforms (brightness, contrast, saturation, hue, the whole jitter) and for
 * AlexNet's fancy PCA fitted on that set, with its eigenvalues and
 * eigenvectors drawn as colour ramps; and boxes travelling with the geometric
 * transforms.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { ParamValues } from "../../../core/params.ts";
import { definePlugin, type Plugin } from "../../../core/plugin.ts";
import { Result } from "../../../core/result.ts";
import { drawBox, grid } from "../../../core/images/grids.ts";
import { tensorSource } from "../../../core/data/source.ts";
import type { Random } from "../../../core/random.ts";
import { augmentPipeline } from "./pipeline.ts";
import { horizontalFlip, verticalFlip } from "./flip.ts";
import { randomResizedCrop, scaleAugmentation } from "./crop.ts";
import { randomAffine } from "./affine.ts";
import { lensDistortion } from "./lens_distortion.ts";
import { colorJitter } from "./color_jitter.ts";
import { cutout, randomErasing } from "./erasing.ts";
import { cutmix, mixup } from "./mixing.ts";
import { fancyPca, fitColorPca } from "./fancy_pca.ts";
import { proceduralRgb } from "./procedural_rgb.ts";
import { standardPipeline } from "./standard.ts";
import type { Transform } from "./transform.ts";

/** The parameters of the `augment` plugin: its schema, declared once. */
export const AUGMENT_PARAMS = {
  image: { type: "integer", default: 0, min: 0, help: "which input image to augment" },
  samples: { type: "integer", default: 6, min: 1, max: 16, help: "draws of each transform" },
  rgbSize: {
    type: "integer",
    default: 64,
    min: 16,
    max: 256,
    help: "side of the procedural RGB images",
  },
  rgbImages: {
    type: "integer",
    default: 256,
    min: 8,
    max: 4096,
    help: "procedural RGB images fancy PCA is fitted on",
  },
} as const;

/** The `augment` plugin's parameter values, typed from {@linkcode AUGMENT_PARAMS}. */
export type AugmentOptions = ParamValues<typeof AUGMENT_PARAMS>;

/** Integer upscaling so that a tile is at least 96 pixels on its short side. */
function upscale(h: number, w: number): number {
  return Math.max(1, Math.ceil(96 / Math.min(h, w)));
}

/** Each row one transform, `samples` draws of it on copies of one image. */
function rows(
  image: tf.Tensor4D,
  steps: { name: string; t: Transform | ReturnType<typeof augmentPipeline> }[],
  samples: number,
  rng: Random,
): { tiles: tf.Tensor4D; captions: string[] } {
  const captions: string[] = [];
  const tiles = tf.tidy(() => {
    const batch = tf.tile(image, [samples, 1, 1, 1]) as tf.Tensor4D;
    const labels = Array.from({ length: samples }, (_, i) => i % 10);
    const out = steps.map(({ name, t }) => {
      const p = "transforms" in t ? t : augmentPipeline([t]);
      const r = p.apply(batch, rng.fork(), p.mixesLabels ? { labels, classes: 10 } : {});
      r.labels?.dispose();
      captions.push(...Array.from({ length: samples }, (_, i) => i === 0 ? name : ""));
      const [h, w] = [image.shape[1], image.shape[2]];
      // Crops may change the size: show them at the image's size.
      return r.images.shape[1] === h && r.images.shape[2] === w
        ? r.images
        : tf.image.resizeBilinear(r.images, [h, w]);
    });
    return tf.concat(out).clipByValue(0, 1) as tf.Tensor4D;
  });
  return { tiles, captions };
}

/** The `augment` plugin. */
export const augment: Plugin<typeof AUGMENT_PARAMS> = definePlugin({
  name: "augment",
  family: "train",
  summary: "One image under each augmentation and the whole pipeline; colour and fancy PCA in RGB",
  params: AUGMENT_PARAMS,
  resultShape: () => ({}),
  demo: [{}],
  async run(ctx, p) {
    const { images } = ctx;
    const [n, h, w, c] = images.pixels.shape;
    if (p.image >= n) {
      throw new RangeError(`augment: image ${p.image} does not exist: give one from 0 to ${n - 1}`);
    }
    const result = new Result("augment", "Augmentation: the same image, other pixels");
    const image = tf.tidy(() => images.pixels.slice([p.image, 0, 0, 0], [1, -1, -1, -1]));
    const geometric: { name: string; t: Transform }[] = [
      { name: "horizontal flip", t: horizontalFlip() },
      { name: "vertical flip", t: verticalFlip() },
      { name: "scale aug. L in [256,480]/224", t: scaleAugmentation({ size: [h, w] }) },
      { name: "random resized crop", t: randomResizedCrop({ scale: [0.3, 1] }) },
      { name: "translation 15%", t: randomAffine({ translate: 0.15 }) },
      { name: "rotation 30 deg", t: randomAffine({ rotate: 30 }) },
      { name: "stretch 0.7-1.4", t: randomAffine({ stretch: [0.7, 1.4] }) },
      { name: "shear 20 deg", t: randomAffine({ shear: 20 }) },
      {
        name: "all four, one warp",
        t: randomAffine({ translate: 0.1, rotate: 20, stretch: [0.8, 1.25], shear: 10 }),
      },
      { name: "lens k1 in [-0.4,0.4]", t: lensDistortion({ k1: [-0.4, 0.4], k2: [-0.1, 0.1] }) },
    ];
    const photometric: { name: string; t: Transform }[] = [
      { name: "brightness 0.4", t: colorJitter({ brightness: 0.4 }) },
      { name: "contrast 0.6", t: colorJitter({ contrast: 0.6 }) },
      { name: "cutout 40%", t: cutout({ size: 0.4 }) },
      { name: "random erasing", t: randomErasing({ p: 1 }) },
    ];
    const batchOf = images.pixels.shape[0] > 1;
    const mixing: { name: string; t: Transform }[] = [];
    let partners: tf.Tensor4D | undefined;
    try {
      const first = rows(image, [...geometric, ...photometric], p.samples, ctx.rng);
      const whole = rows(
        image,
        [{ name: "whole pipeline", t: standardPipeline({ channels: c }) }],
        p.samples,
        ctx.rng,
      );
      const tiles = tf.concat([first.tiles, whole.tiles]) as tf.Tensor4D;
      tf.dispose([first.tiles, whole.tiles]);
      const captions = [...first.captions, ...whole.captions];
      const scale = upscale(h, w);
      const picture = tf.tidy(() => grid(tiles, { cols: p.samples, scale }));
      await result.addImage(
        "transforms",
        picture,
        `Image ${p.image} (${
          images.names[p.image]
        }) under each transform, ${p.samples} seeded draws ` +
          "per row; the last row is the whole standard pipeline (flip, one affine warp, lens, jitter, erasing)",
        { tiles: captions, cols: p.samples },
      );
      tf.dispose([tiles, picture]);
      // Mixup and cutmix need partners: the run's other images.
      if (batchOf) {
        partners = images.pixels;
        mixing.push({ name: "mixup", t: mixup({ alpha: 1 }) }, { name: "cutmix", t: cutmix() });
        const mixed = tf.tidy(() =>
          tf.concat(mixing.map(({ t }) => {
            const r = augmentPipeline([t]).apply(partners!, ctx.rng.fork(), {
              labels: images.labels.map((l) => Math.max(l, 0)),
              classes: Math.max(ctx.net.numClasses, ...images.labels.map((l) => l + 1)),
            });
            r.labels!.dispose();
            return r.images;
          }))
        );
        const mp = tf.tidy(() => grid(mixed.clipByValue(0, 1) as tf.Tensor4D, { cols: n, scale }));
        await result.addImage(
          "mixing",
          mp,
          "Mixup (top row, Beta(1, 1) weights) and cutmix (bottom row) of the run's images with a " +
            "seeded permutation of them; their labels are mixed by the same weights",
          {
            tiles: [
              ...mixing.flatMap(({ name }) =>
                Array.from({ length: n }, (_, i) => i === 0 ? name : "")
              ),
            ],
            cols: n,
          },
        );
        tf.dispose([mixed, mp]);
      }
      await rgbDemo(result, p, ctx.rng, ctx.seed);
      result.figure("transforms", geometric.length + photometric.length + mixing.length + 5);
      result.figure("channels", c).figure("imageSize", `${h}x${w}`).figure("tileScale", scale);
      if (c === 1) {
        result.note(
          "Gray images: colour jitter's saturation and hue leave a gray pixel unchanged, so only " +
            "brightness and contrast are drawn on them; the colour transforms are shown on the RGB set",
        );
      }
      return result;
    } catch (err) {
      result.dispose();
      throw err;
    } finally {
      image.dispose();
    }
  },
});

/** The RGB half: colour jitter, fancy PCA fitted on the procedural set, its eigenvectors, and boxes. */
async function rgbDemo(
  result: Result,
  p: AugmentOptions,
  rng: Random,
  seed: number,
): Promise<void> {
  const s = p.rgbSize;
  const set = proceduralRgb(p.rgbImages, s, s, seed);
  try {
    const pca = await fitColorPca(tensorSource(set.images, Array(p.rgbImages).fill(0), ["shapes"]));
    const one = tf.tidy(() => set.images.slice([0, 0, 0, 0], [1, -1, -1, -1]));
    const colour: { name: string; t: Transform }[] = [
      { name: "brightness 0.4", t: colorJitter({ brightness: 0.4 }) },
      { name: "contrast 0.6", t: colorJitter({ contrast: 0.6 }) },
      { name: "saturation 0.8", t: colorJitter({ saturation: 0.8 }) },
      { name: "hue 0.25", t: colorJitter({ hue: 0.25 }) },
      {
        name: "jitter, all four",
        t: colorJitter({ brightness: 0.3, contrast: 0.3, saturation: 0.5, hue: 0.1 }),
      },
      { name: "fancy PCA (paper)", t: fancyPca(pca) },
      { name: "fancy PCA, std x5", t: fancyPca(pca, { std: 0.5, magnitude: "std" }) },
    ];
    const r = rows(one, colour, p.samples, rng);
    const picture = tf.tidy(() => grid(r.tiles, { cols: p.samples, scale: upscale(s, s) }));
    await result.addImage(
      "colour",
      picture,
      "A procedural RGB image under colour jitter (each adjustment alone, then all four in a random " +
        "order per image) and under fancy PCA fitted on the procedural set (alphas of std 0.1 times " +
        "the eigenvalues, as in the paper; then std 0.5 times the square roots, to make it visible)",
      { tiles: r.captions, cols: p.samples },
    );
    tf.dispose([one, r.tiles, picture]);
    // Each eigenvector as a ramp of colours: mean + t sqrt(lambda) p for t in -3..3.
    const ts = [-3, -2, -1, 0, 1, 2, 3];
    const ramp = tf.tidy(() => {
      const cols = pca.eigenvectors.flatMap((v, k) =>
        ts.map((t) =>
          v.map((x, j) => pca.mean[j] + t * Math.sqrt(Math.max(pca.eigenvalues[k], 0)) * x)
        )
      );
      const sw = tf.tensor2d(cols, [cols.length, 3]).reshape([cols.length, 1, 1, 3]).tile([
        1,
        24,
        24,
        1,
      ]);
      return grid(sw.clipByValue(0, 1) as tf.Tensor4D, { cols: ts.length });
    });
    await result.addImage(
      "eigenvectors",
      ramp,
      "Fancy PCA's principal colour axes of the procedural set, one row per eigenvector (largest " +
        "eigenvalue first): the mean colour plus -3 to 3 standard deviations along it",
      {
        tiles: pca.eigenvectors.flatMap((_, k) => ts.map((t) => t === -3 ? `axis ${k + 1}` : "")),
        cols: ts.length,
      },
    );
    ramp.dispose();
    result.table(
      `Fancy PCA fitted on ${p.rgbImages} procedural RGB images (${pca.pixels} pixels): eigenvalues ` +
        "of the RGB covariance and their unit eigenvectors",
      ["axis", "eigenvalue", "std", "r", "g", "b"],
      pca.eigenvalues.map((l, k) => [
        k + 1,
        Number(l.toPrecision(4)),
        Number(Math.sqrt(Math.max(l, 0)).toPrecision(4)),
        ...pca.eigenvectors[k].map((x) => Number(x.toFixed(4))),
      ]),
    );
    pca.eigenvalues.forEach((l, k) =>
      result.figure(`eigenvalue${k + 1}`, Number(l.toPrecision(6)))
    );
    // Boxes travel with the geometric transforms.
    const k = Math.min(p.samples, p.rgbImages);
    const geo = augmentPipeline([
      horizontalFlip(),
      randomResizedCrop({ scale: [0.4, 1] }),
      randomAffine({ rotate: 25, translate: 0.1, shear: 10 }),
      lensDistortion({ k1: [-0.3, 0.3] }),
    ]);
    const sub = tf.tidy(() => set.images.slice([0, 0, 0, 0], [k, -1, -1, -1]));
    const moved = geo.apply(sub, rng.fork(), { boxes: set.boxes.slice(0, k) });
    const colours = [[1, 1, 1], [0, 0, 0]] as const;
    const drawn = tf.tidy(() => {
      const framed = Array.from({ length: k }, (_, i) => {
        let im = moved.images.slice([i, 0, 0, 0], [1, -1, -1, -1]).squeeze([0]).clipByValue(
          0,
          1,
        ) as tf.Tensor3D;
        for (const b of moved.boxes![i]) {
          im = drawBox(
            im,
            { y0: b.y, x0: b.x, y1: b.y + b.h, x1: b.x + b.w },
            colours[b.label ?? 0],
          );
        }
        return im;
      });
      const before = Array.from({ length: k }, (_, i) => {
        let im = sub.slice([i, 0, 0, 0], [1, -1, -1, -1]).squeeze([0]) as tf.Tensor3D;
        for (const b of set.boxes[i]) {
          im = drawBox(
            im,
            { y0: b.y, x0: b.x, y1: b.y + b.h, x1: b.x + b.w },
            colours[b.label ?? 0],
          );
        }
        return im;
      });
      return grid([...before, ...framed], { cols: k, scale: upscale(s, s) });
    });
    await result.addImage(
      "boxes",
      drawn,
      "Boxes travel with the pixels: the shapes' boxes (disc white, rectangle black) before (top) and " +
        "after (bottom) flip, random resized crop, one affine warp and lens distortion, re-boxed around " +
        "the moved outline and clipped to the view",
      { cols: k },
    );
    tf.dispose([sub, moved.images, drawn]);
  } finally {
    set.images.dispose();
  }
}
