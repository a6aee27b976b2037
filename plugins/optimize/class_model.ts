/**
 * `class-model` (optimize): class model visualization (Simonyan, Vedaldi &
 * Zisserman, "Deep Inside Convolutional Networks: Visualising Image
 * Classification Models and Saliency Maps", 2014): the image that maximizes a
 * class score, argmax_X s_y(X) - lambda ||X||^2, found by gradient ascent from
 * the zero image (of mean-subtracted inputs, that is, the data's mean image). All classes asked for run as one batch; each image is reported
 * with the probability the net gives its class.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { ParamValues } from "../../core/params.ts";
import { type Context, definePlugin, type Plugin } from "../../core/plugin.ts";
import type { Net } from "../../core/net.ts";
import { Result } from "../../core/result.ts";
import { toDisplay } from "../../core/images/display.ts";
import { grid } from "../../core/images/grids.ts";
import { classScore, l2, sum } from "./objectives.ts";
import { render } from "./loop.ts";
import { clampRange } from "./priors.ts";
import { optimizerByName, OPTIMIZERS } from "./_common.ts";

/** The parameters of the `class-model` plugin: its schema, declared once. */
export const CLASS_MODEL_PARAMS = {
  classes: {
    type: "numbers",
    default: [] as number[],
    help: "classes to visualize (default: all)",
  },
  steps: { type: "integer", default: 200, min: 1, max: 100000, help: "steps of ascent" },
  lr: { type: "number", default: 0.05, min: 0, help: "step size" },
  lambda: { type: "number", default: 0.01, min: 0, help: "weight of the L2 regularizer" },
  optimizer: {
    type: "enum",
    choices: OPTIMIZERS,
    default: "momentum",
    help: "ascent (normalized steps), momentum or adam",
  },
  clamp: { type: "boolean", default: false, help: "clamp pixels to the valid input range" },
  start: {
    type: "enum",
    choices: ["mean", "zero"],
    default: "mean",
    help: "start from (and regularize toward) the data's mean image, Simonyan's zero image " +
      "of mean-subtracted inputs; or from the zero input",
  },
  scale: { type: "integer", default: 4, min: 1, max: 32, help: "upscaling of each tile" },
} as const;

/** The `class-model` plugin's parameter values, typed from {@linkcode CLASS_MODEL_PARAMS} (defaults there). */
export type ClassModelOptions = ParamValues<typeof CLASS_MODEL_PARAMS>;

function classesOf(net: Net, given: number[]): number[] {
  const list = given.length ? given : Array.from({ length: net.numClasses }, (_, i) => i);
  for (const c of list) net.checkClass(c);
  return list;
}

/**
 * The mean of the first 256 images of the run's data set, in model input
 * space, or undefined (with a warning) when the model has no data set.
 */
async function meanImage(ctx: Context): Promise<tf.Tensor4D | undefined> {
  let data;
  try {
    data = await ctx.data();
  } catch (err) {
    ctx.warn(`start "mean": no data set (${(err as Error).message}); starting from zeros`);
    return undefined;
  }
  const n = Math.min(256, data.size);
  const { x, y } = await data.batch(Array.from({ length: n }, (_, i) => i));
  y.dispose();
  return tf.tidy(() => {
    const mean = ctx.net.fromPixels(x).mean(0, true) as tf.Tensor4D;
    x.dispose();
    return mean;
  });
}

/** The `class-model` plugin. */
export const classModel: Plugin<typeof CLASS_MODEL_PARAMS> = definePlugin({
  name: "class-model",
  family: "optimize",
  summary:
    "Image maximizing each class score, s_y(X) - lambda ||X - mean||^2, from the mean (Simonyan)",
  params: CLASS_MODEL_PARAMS,
  resultShape(net, p) {
    const { height, width, channels } = net.input;
    return { images: [classesOf(net, p.classes).length, height, width, channels] };
  },
  demo: [{}],
  async run(ctx, p) {
    const { net } = ctx;
    const classes = classesOf(net, p.classes);
    const { height, width, channels } = net.input;
    // Simonyan et al. subtract the training set's mean image from every input,
    // so their "zero image" is the mean image; a net whose units are all off
    // at the zero input (common with ReLUs) would give no gradient there.
    let center: tf.Tensor4D | undefined;
    if (p.start === "mean") center = await meanImage(ctx);
    const init = center
      ? tf.tidy(() => center!.tile([classes.length, 1, 1, 1])) as tf.Tensor4D
      : tf.zeros([classes.length, height, width, channels]) as tf.Tensor4D;
    let images: tf.Tensor4D;
    try {
      images = (await render(net, {
        objective: sum(classScore(classes), l2(p.lambda, center)),
        init,
        steps: p.steps,
        optimizer: optimizerByName(p.optimizer, p.lr),
        priors: p.clamp ? [clampRange(net.inputBounds())] : [],
        rng: ctx.rng,
        progress: (d, t) => ctx.progress(d, t),
      })).images;
    } finally {
      tf.dispose([init, center as tf.Tensor]);
    }
    // Read after the tidy, asynchronously (WebGPU cannot read GPU data synchronously).
    const read = tf.tidy(() => {
      const logits = net.logits(images);
      const idx = tf.tensor1d(classes, "int32");
      const mask = tf.oneHot(idx, net.numClasses).toFloat();
      return [net.probabilitiesOf(logits).mul(mask).sum(1), logits.mul(mask).sum(1)];
    });
    let probs: number[], scores: number[];
    try {
      [probs, scores] = (await Promise.all(read.map((t) => t.data()))).map((v) => Array.from(v));
    } catch (err) {
      images.dispose();
      throw err;
    } finally {
      tf.dispose(read);
    }
    // Unclamped images have no fixed range: each tile is stretched to [0, 1].
    const shown = tf.tidy(() =>
      toDisplay(p.clamp ? net.toPixels(images) : images, { mode: "minmax", perItem: true })
    ) as tf.Tensor4D;
    const picture = tf.tidy(() =>
      grid(shown, { scale: p.scale, cols: Math.ceil(Math.sqrt(classes.length)) })
    );
    const r = new Result("class-model", "Class model visualization (Simonyan et al. 2014)");
    r.tensor("images", shown);
    images.dispose();
    r.figure("classes", classes.length).figure("steps", p.steps).figure("lambda", p.lambda);
    r.figure("minProbability", Math.min(...probs));
    r.figure("meanProbability", probs.reduce((a, b) => a + b, 0) / probs.length);
    r.table(
      "Each class model and the net's verdict on it",
      ["class", "label", "score s_y", "probability p_y"],
      classes.map((c, i) => [c, net.labels[c], scores[i], probs[i]]),
    );
    await r.addImage(
      "class-models",
      picture,
      `Class models: argmax_X s_y(X) - ${p.lambda} ||X - X0||^2 from X0 = ${
        center ? "the data's mean image" : "zeros"
      }, ${p.steps} steps, ` +
        "each image scaled to its own min and max; labelled by class and p_y",
      {
        tiles: classes.map((c, i) => `${net.labels[c]} ${(probs[i] * 100).toFixed(1)}%`),
        cols: Math.ceil(Math.sqrt(classes.length)),
      },
    );
    picture.dispose();
    return r;
  },
});
