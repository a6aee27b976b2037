/**
 * Label-mixing augmentations: mixup (Zhang et al., "mixup: Beyond Empirical
 * Risk Minimization", ICLR 2018: each image blended with a partner of the
 * batch, `lambda x + (1 - lambda) x'`, and the labels by the same weights) and
 * cutmix (Yun et al., "CutMix", ICCV 2019: a rectangle of the partner pasted
 * in, of area fraction `1 - lambda`, the labels weighted by the areas actually
 * kept). `lambda ~ Beta(alpha, alpha)` per image; the partners are a seeded
 * permutation of the batch. Both return soft labels `[n, classes]`; the boxes
 * of the image itself are kept (the partner's are not carried).
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Random } from "../../../core/random.ts";
import { checkDrawnParams, type Transform } from "./transform.ts";
import { rectMasks } from "./_rects.ts";

/** Gamma(shape, 1) by Marsaglia & Tsang's method (boosted below shape 1). */
function gamma(rng: Random, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(1 - rng.next(), 1 / shape);
  const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const z = rng.normal(), v = (1 + c * z) ** 3;
    if (v <= 0) continue;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * z * z + d - d * v + d * Math.log(v)) return d * v;
  }
}

/**
 * A Beta(a, b) draw.
 *
 * @param rng The generator.
 * @param a First shape.
 * @param b Second shape.
 * @returns A number in [0, 1].
 */
export function betaSample(rng: Random, a: number, b: number): number {
  const x = gamma(rng, a), y = gamma(rng, b);
  return x + y > 0 ? x / (x + y) : 0.5;
}

/** Options of {@linkcode mixup} and {@linkcode cutmix}. */
export interface MixOptions {
  /** The Beta distribution's alpha. @default 0.2 for mixup, 1 for cutmix */
  alpha?: number;
}

/** Parameters of a mix per image: its partner and weight (and cutmix's rectangle). */
export type MixParams = {
  partner: number[];
  lambda: number[];
  top: number[];
  left: number[];
  height: number[];
  width: number[];
};

function checkAlpha(what: string, a: number): number {
  if (!(a > 0 && Number.isFinite(a))) {
    throw new RangeError(`${what}: alpha ${a} is invalid: give a number > 0`);
  }
  return a;
}

function mixLabels(labels: tf.Tensor2D, p: MixParams): tf.Tensor2D {
  const n = labels.shape[0];
  checkDrawnParams("mix", p, "lambda", n);
  return tf.tidy(() => {
    const l = tf.tensor2d(p.lambda, [n, 1]);
    const other = tf.gather(labels, tf.tensor1d(p.partner, "int32"));
    return labels.mul(l).add(other.mul(tf.sub(1, l))) as tf.Tensor2D;
  });
}

/**
 * Mixup with a partner per image.
 *
 * @param options Beta's alpha.
 * @returns The transform (mix labels with its `mixLabels`).
 * @throws {RangeError} for alpha <= 0.
 */
export function mixup(options: MixOptions = {}): Transform<MixParams> {
  const alpha = checkAlpha("mixup", options.alpha ?? 0.2);
  const name = "mixup";
  return {
    name,
    kind: "mix",
    draw(rng, [n]) {
      const partner = rng.shuffle(Array.from({ length: n }, (_, i) => i));
      const zeros = Array(n).fill(0);
      return {
        partner,
        lambda: partner.map(() => betaSample(rng, alpha, alpha)),
        top: zeros,
        left: zeros,
        height: zeros,
        width: zeros,
      };
    },
    apply(x, p) {
      const n = x.shape[0];
      checkDrawnParams(name, p, "lambda", n);
      return tf.tidy(() => {
        const l = tf.tensor4d(p.lambda, [n, 1, 1, 1]);
        return x.mul(l).add(
          tf.gather(x, tf.tensor1d(p.partner, "int32")).mul(tf.sub(1, l)),
        ) as tf.Tensor4D;
      });
    },
    mixLabels,
  };
}

/**
 * CutMix with a partner per image.
 *
 * @param options Beta's alpha.
 * @returns The transform (mix labels with its `mixLabels`).
 * @throws {RangeError} for alpha <= 0.
 */
export function cutmix(options: MixOptions = {}): Transform<MixParams> {
  const alpha = checkAlpha("cutmix", options.alpha ?? 1);
  const name = "cutmix";
  return {
    name,
    kind: "mix",
    draw(rng, [n, h, w]) {
      const p: MixParams = {
        partner: rng.shuffle(Array.from({ length: n }, (_, i) => i)),
        lambda: [],
        top: [],
        left: [],
        height: [],
        width: [],
      };
      for (let i = 0; i < n; i++) {
        const lam = betaSample(rng, alpha, alpha);
        const cut = Math.sqrt(1 - lam);
        const ch = Math.round(h * cut), cw = Math.round(w * cut);
        const cy = Math.floor(rng.next() * h), cx = Math.floor(rng.next() * w);
        const y0 = Math.max(0, cy - Math.floor(ch / 2)),
          y1 = Math.min(h, cy - Math.floor(ch / 2) + ch);
        const x0 = Math.max(0, cx - Math.floor(cw / 2)),
          x1 = Math.min(w, cx - Math.floor(cw / 2) + cw);
        p.top.push(y0), p.left.push(x0), p.height.push(y1 - y0), p.width.push(x1 - x0);
        // The label weight is the area of the image actually kept.
        p.lambda.push(1 - ((y1 - y0) * (x1 - x0)) / (h * w));
      }
      return p;
    },
    apply(x, p) {
      const [n, h, w] = x.shape;
      checkDrawnParams(name, p, "lambda", n);
      return tf.tidy(() => {
        const m = rectMasks(n, h, w, p);
        const other = tf.gather(x, tf.tensor1d(p.partner, "int32"));
        return x.mul(tf.sub(1, m)).add(other.mul(m)) as tf.Tensor4D;
      });
    },
    mixLabels,
  };
}
