/**
 * FGSM, the fast gradient sign method of Goodfellow, Shlens & Szegedy, "Explaining
 * and Harnessing Adversarial Examples" (ICLR 2015): `x + eps * sign(d loss / dx)`
 * (or the L2 step `eps * g / |g|`); and iterative FGSM / projected gradient
 * descent (Kurakin et al. 2017; Madry et al., "Towards Deep Learning Models
 * Resistant to Adversarial Attacks", ICLR 2018): steps of size `alpha` projected
 * back onto the L-inf or L2 ball of radius `eps` around `x` and onto the box
 * [0, 1], from a random start inside the ball. All in display-pixel space.
 *
 * @example One FGSM direction serves a sweep over epsilon
 * ```ts ignore
 * import { fgsmDirection } from "./fgsm_pgd.ts";
 * const dir = fgsmDirection(net, pixels, labels);
 * const adv = tf.tidy(() => pixels.add(dir.mul(0.1)).clipByValue(0, 1));
 * ```
 *
 * @module
 */
import { batchSizeFor } from "../../core/memory_budget.ts";
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import type { Random } from "../../core/random.ts";
import {
  checkClassifier,
  l2PerImage,
  logProbObjective,
  normalNoise,
  pixelGradient,
  signOf,
  uniformNoise,
} from "./_common.ts";
import {
  type AttackNorm,
  checkAttackOptions,
  type CheckedAttackOptions,
} from "./attack_options.ts";

/** Projects `adv` onto the ball around `x` and onto the box [0, 1]. */
function project(adv: tf.Tensor, x: tf.Tensor, norm: AttackNorm, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    let d = adv.sub(x);
    if (norm === "linf") d = d.clipByValue(-eps, eps);
    else d = d.mul(tf.minimum(1, tf.div(eps, l2PerImage(d))));
    return x.add(d).clipByValue(0, 1) as tf.Tensor4D;
  });
}

/** The step direction: sign of g (L-inf) or g / |g| (L2). */
function direction(g: tf.Tensor, norm: AttackNorm): tf.Tensor {
  return tf.tidy(() => (norm === "linf" ? signOf(g) : g.div(l2PerImage(g))));
}

/**
 * FGSM (one step) or PGD (projected steps) on one batch, as the checked options say.
 *
 * @param net The model.
 * @param x Images `[n, h, w, c]` in [0, 1].
 * @param labels The class each image is taken to be.
 * @param targets Target class per image (-1: untargeted).
 * @param o Checked options.
 * @param rng Randomness of the start inside the ball.
 * @returns The adversarial images; the caller owns them.
 */
export function ballAttack(
  net: Net,
  x: tf.Tensor4D,
  labels: number[],
  targets: number[],
  o: CheckedAttackOptions,
  rng: Random,
): tf.Tensor4D {
  const k = net.numClasses;
  const cls = labels.map((l, i) => (targets[i] >= 0 ? targets[i] : l));
  const w = targets.map((t) => (t >= 0 ? 1 : -1));
  const { objective, dispose } = logProbObjective(cls, w, k);
  try {
    if (o.method === "fgsm") {
      const g = pixelGradient(net, x, objective);
      const out = tf.tidy(() =>
        x.add(direction(g, o.norm).mul(o.epsilon)).clipByValue(0, 1)
      ) as tf.Tensor4D;
      g.dispose();
      return out;
    }
    let adv: tf.Tensor4D;
    if (o.randomStart && o.epsilon > 0) {
      adv = tf.tidy(() => {
        if (o.norm === "linf") {
          return x.add(uniformNoise(rng, x.shape, o.epsilon)).clipByValue(0, 1);
        }
        // Uniform in the L2 ball: a normal direction, radius eps * u^(1/d).
        const d = x.size / x.shape[0];
        const dir = normalNoise(rng, x.shape);
        const radius = Array.from({ length: x.shape[0] }, () => o.epsilon * rng.next() ** (1 / d));
        const r = dir.div(l2PerImage(dir)).mul(tf.tensor(radius, [x.shape[0], 1, 1, 1]));
        return x.add(r).clipByValue(0, 1);
      }) as tf.Tensor4D;
    } else {
      adv = x.clone();
    }
    for (let s = 0; s < o.steps; s++) {
      const g = pixelGradient(net, adv, objective);
      const next = tf.tidy(() =>
        project(adv.add(direction(g, o.norm).mul(o.stepSize)), x, o.norm, o.epsilon)
      );
      tf.dispose([g, adv]);
      adv = next;
    }
    return adv;
  } finally {
    dispose();
  }
}

/**
 * The untargeted FGSM direction, `sign(d loss / dx)` (L-inf) or `g / |g|` (L2), in
 * batches: FGSM at any epsilon is `clip(x + eps * direction, 0, 1)`, so one gradient
 * serves a whole sweep over epsilon.
 *
 * @param net The model.
 * @param pixels Images `[n, h, w, c]` in [0, 1].
 * @param labels The class each image is taken to be.
 * @param norm `linf` or `l2`. @default "linf"
 * @param batchSize Images per pass. @default what fits the memory budget, at most 100
 * @returns The direction, shaped like `pixels`; the caller owns it.
 */
export function fgsmDirection(
  net: Net,
  pixels: tf.Tensor4D,
  labels: readonly number[],
  norm: AttackNorm = "linf",
  batchSize: number = batchSizeFor(net, 100),
): tf.Tensor4D {
  checkClassifier(net, "fgsmDirection");
  const n = pixels.shape[0];
  if (labels.length !== n) {
    throw new RangeError(`Got ${labels.length} labels for ${n} images: give one per image`);
  }
  for (const l of labels) net.checkClass(l);
  checkAttackOptions(net, n, { norm, batchSize });
  const parts: tf.Tensor4D[] = [];
  try {
    for (let i = 0; i < n; i += batchSize) {
      const m = Math.min(batchSize, n - i);
      const lab = labels.slice(i, i + m);
      const { objective, dispose } = logProbObjective(lab, lab.map(() => -1), net.numClasses);
      const x = pixels.slice([i, 0, 0, 0], [m, -1, -1, -1]);
      try {
        const g = pixelGradient(net, x, objective);
        parts.push(direction(g, norm) as tf.Tensor4D);
        g.dispose();
      } finally {
        x.dispose();
        dispose();
      }
    }
    return parts.length === 1 ? parts[0].clone() : tf.concat(parts);
  } finally {
    tf.dispose(parts);
  }
}
