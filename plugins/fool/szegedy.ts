/**
 * The smallest targeted perturbation of Szegedy et al., "Intriguing Properties of
 * Neural Networks" (ICLR 2014): minimize `c * |r|^2 + loss_target(x + r)` under
 * the box constraint `x + r in [0, 1]` (here by projected Adam instead of
 * L-BFGS-B), with a per-image search on `c` for the largest `c` (smallest `r`)
 * that still reaches the target.
 *
 * @example The smallest r that makes each image a 3
 * ```ts ignore
 * import { checkAttackOptions } from "./attack_options.ts";
 * import { szegedyAttack } from "./szegedy.ts";
 * const o = checkAttackOptions(net, 2, { method: "szegedy", targets: [3, 3] });
 * const adv = await szegedyAttack(net, pixels, [3, 3], o);
 * ```
 *
 * @module
 */
import { adamMoments } from "../../core/train/optimizers.ts";
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { l2PerImage, logProbObjective, pixelGradient, pixelProbabilities } from "./_common.ts";
import type { CheckedAttackOptions } from "./attack_options.ts";

/**
 * Szegedy's attack on one batch: the line search on `c`, each value by projected Adam.
 *
 * @param net The model.
 * @param x Images `[n, h, w, c]` in [0, 1].
 * @param targets Target class per image (all >= 0).
 * @param o Checked options (steps, searchSteps, initialC, learningRate).
 * @returns The smallest successful `x + r` per image (the last try where none
 *   succeeded); the caller owns it.
 */
export async function szegedyAttack(
  net: Net,
  x: tf.Tensor4D,
  targets: number[],
  o: CheckedAttackOptions,
): Promise<tf.Tensor4D> {
  const n = x.shape[0];
  const { objective, dispose } = logProbObjective(targets, targets.map(() => 1), net.numClasses);
  const c = Array(n).fill(o.initialC);
  const lo = Array(n).fill(0);
  const hi = Array(n).fill(Infinity);
  const bestL2 = Array(n).fill(Infinity);
  let best = x.clone();
  let last: tf.Tensor4D | undefined;
  // Checking every few iterations keeps the smallest successful r seen, at a forward
  // pass per check.
  const checkEvery = Math.max(1, Math.floor(o.steps / 8));
  try {
    for (let s = 0; s < o.searchSteps; s++) {
      const cT = tf.tensor(c, [n, 1, 1, 1]);
      let r = tf.zerosLike(x) as tf.Tensor4D;
      let m: tf.Tensor = tf.zerosLike(x);
      let v: tf.Tensor = tf.zerosLike(x);
      const succeeded = Array(n).fill(false);
      for (let t = 1; t <= o.steps; t++) {
        const adv = tf.tidy(() => x.add(r)) as tf.Tensor4D;
        const g = pixelGradient(net, adv, objective);
        adv.dispose();
        const [nr, nm, nv] = tf.tidy(() => {
          // Descend c |r|^2 - log p_target(x + r).
          const grad = g.neg().add(r.mul(cT).mul(2));
          const a = adamMoments(m, v, grad, t, 0.9, 0.999, 1e-8);
          const r2 = x.add(r.sub(a.direction.mul(o.learningRate))).clipByValue(0, 1).sub(x);
          return [r2, a.m, a.v];
        });
        tf.dispose([g, r, m, v]);
        r = nr as tf.Tensor4D;
        m = nm;
        v = nv;
        if (t % checkEvery === 0 || t === o.steps) {
          const adv2 = tf.tidy(() => x.add(r)) as tf.Tensor4D;
          const probs = pixelProbabilities(net, adv2);
          const p = probs.argMax(1);
          const pred = Array.from(await p.data(), Number);
          const l2T = l2PerImage(r, 0);
          const l2 = Array.from(await l2T.data(), Number);
          tf.dispose([probs, p, l2T]);
          const better = pred.map((q, i) => q === targets[i] && l2[i] < bestL2[i]);
          if (better.some(Boolean)) {
            const mask = tf.tensor(better.map(Number), [n, 1, 1, 1]);
            const nb = tf.tidy(() => tf.where(mask.cast("bool"), adv2, best)) as tf.Tensor4D;
            tf.dispose([mask, best]);
            best = nb;
            better.forEach((b, i) => b && (bestL2[i] = l2[i]));
          }
          pred.forEach((q, i) => q === targets[i] && (succeeded[i] = true));
          adv2.dispose();
        }
      }
      last?.dispose();
      last = tf.tidy(() => x.add(r)) as tf.Tensor4D;
      tf.dispose([cT, r, m, v]);
      // The line search on c: success means c can grow (a smaller r may do).
      for (let i = 0; i < n; i++) {
        if (succeeded[i]) {
          lo[i] = c[i];
          c[i] = Number.isFinite(hi[i]) ? (lo[i] + hi[i]) / 2 : c[i] * 10;
        } else {
          hi[i] = c[i];
          c[i] = lo[i] > 0 ? (lo[i] + hi[i]) / 2 : c[i] / 10;
        }
      }
    }
    // Images never fooled show their last attempt.
    const failed = tf.tensor(bestL2.map((d) => Number(!Number.isFinite(d))), [n, 1, 1, 1]);
    const out = tf.tidy(() => tf.where(failed.cast("bool"), last!, best)) as tf.Tensor4D;
    failed.dispose();
    return out;
  } finally {
    tf.dispose([best, ...(last ? [last] : [])]);
    dispose();
  }
}
