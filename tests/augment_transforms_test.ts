/**
 * Each augmentation transform against a hand-computed answer or a naive loop.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { initBackend } from "../backends/mod.ts";
import { seededRandom } from "../core/random.ts";
import { naiveWarp } from "./_warp_reference.ts";
import { arraySource } from "../core/data/source.ts";
import {
  type Affine,
  affineForward,
  colorJitter,
  cutmix,
  cutout,
  fancyPca,
  fitColorPca,
  horizontalFlip,
  invert,
  jitterMatrices,
  lensDistortion,
  mixup,
  randomAffine,
  randomErasing,
  randomResizedCrop,
  scaleAugmentation,
  symmetricEigen,
  verticalFlip,
  warpAffine,
} from "../plugins/train/augment/mod.ts";

await initBackend("wasm", { quiet: true });

const rand = (shape: [number, number, number, number], seed: number) =>
  tf.randomUniform(shape, 0, 1, "float32", seed) as tf.Tensor4D;

async function maxDiff(a: tf.Tensor, b: tf.Tensor | Float32Array): Promise<number> {
  const av = await a.data() as Float32Array;
  const bv = b instanceof Float32Array ? b : await b.data() as Float32Array;
  assert.equal(av.length, bv.length);
  let m = 0;
  for (let i = 0; i < av.length; i++) m = Math.max(m, Math.abs(av[i] - bv[i]));
  return m;
}

Deno.test("horizontalFlip() and verticalFlip() mirror exactly the images drawn, and only those", async () => {
  const x = rand([6, 5, 7, 3], 1);
  for (const [t, axis] of [[horizontalFlip(), 2], [verticalFlip(), 1]] as const) {
    const p = t.draw(seededRandom(3), x.shape);
    assert.ok(
      p.flip.includes(1) && p.flip.includes(0),
      "p = 0.5 over 6 images flips some, not all",
    );
    const y = t.apply(x, p);
    const want = tf.tidy(() =>
      tf.concat(p.flip.map((f, i) => {
        const xi = x.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        return f ? xi.reverse(axis) : xi;
      }))
    );
    assert.equal(await maxDiff(y, want), 0);
    tf.dispose([y, want]);
  }
  x.dispose();
});

Deno.test("randomResizedCrop() resamples the drawn window: an integer window at its own size is copied", async () => {
  const x = rand([4, 20, 24, 1], 2);
  const t = randomResizedCrop({ scale: [0.2, 0.6], size: [10, 12] });
  const p = t.draw(seededRandom(5), x.shape);
  for (let i = 0; i < 4; i++) {
    const area = p.height[i] * p.width[i] / (20 * 24);
    assert.ok(area >= 0.2 - 0.05 && area <= 0.6 + 0.05, `area ${area}`);
    const r = p.width[i] / p.height[i];
    assert.ok(r > 0.7 && r < 1.45, `ratio ${r}`);
  }
  // A window of exactly the output size is an exact copy of those pixels.
  const q = {
    top: [1, 3, 0, 10],
    left: [2, 0, 12, 5],
    height: [10, 10, 10, 10],
    width: [12, 12, 12, 12],
  };
  const y = t.apply(x, q);
  const want = tf.tidy(() =>
    tf.concat(q.top.map((top, i) => x.slice([i, top, q.left[i], 0], [1, 10, 12, 1])))
  );
  const copyDiff = await maxDiff(y, want);
  assert.ok(copyDiff < 1e-6, `copy differs by ${copyDiff}`);
  // Half-pixel convention: a 2x downsampling samples between pixel pairs.
  const down = randomResizedCrop({ size: [10, 12] }).apply(x, {
    top: [0, 0, 0, 0],
    left: [0, 0, 0, 0],
    height: [20, 20, 20, 20],
    width: [24, 24, 24, 24],
  });
  const xv = await x.data() as Float32Array;
  const dv = await down.data() as Float32Array;
  const px = (b: number, r: number, c: number) => xv[(b * 20 + r) * 24 + c];
  const want00 = (px(1, 2, 4) + px(1, 2, 5) + px(1, 3, 4) + px(1, 3, 5)) / 4;
  assert.ok(Math.abs(dv[(1 * 10 + 1) * 12 + 2] - want00) < 1e-6);
  tf.dispose([x, y, want, down]);
});

Deno.test("scaleAugmentation() draws the short side from its range and crops the model's size", () => {
  const x = rand([8, 32, 40, 3], 3);
  const t = scaleAugmentation({ shortSide: [36, 60], size: [28, 28] });
  const p = t.draw(seededRandom(1), x.shape);
  for (let i = 0; i < 8; i++) {
    const L = 32 * 28 / p.height[i]; // the crop is 28 rescaled pixels
    assert.ok(L >= 36 - 1e-9 && L <= 60 + 1e-9 && Math.abs(L - Math.round(L)) < 1e-9, `L ${L}`);
    assert.ok(p.top[i] >= 0 && p.top[i] + p.height[i] <= 32 + 1e-9);
    assert.ok(p.left[i] >= 0 && p.left[i] + p.width[i] <= 40 + 1e-9);
  }
  const y = t.apply(x, p);
  assert.deepEqual(y.shape, [8, 28, 28, 3]);
  // Default range: ResNet's [256, 480] for 224, i.e. [32, 60] for 28.
  const d = scaleAugmentation({ size: [28, 28] }).draw(seededRandom(2), [50, 28, 28, 1]);
  const sides = d.height.map((h) => Math.round(28 * 28 / h));
  assert.ok(Math.min(...sides) >= 32 && Math.max(...sides) <= 60 && Math.max(...sides) > 50);
  assert.throws(
    () => scaleAugmentation({ shortSide: [20, 30], size: [28, 28] }).draw(seededRandom(1), x.shape),
    /below the 28x28 crop/,
  );
  tf.dispose([x, y]);
});

for (const backend of ["wasm", "cpu"]) {
  Deno.test(`warpAffine() of a known rotation matches a naive bilinear loop on ${backend}`, async () => {
    await tf.setBackend(backend);
    try {
      const x = rand([3, 9, 11, 2], 4);
      const t = randomAffine({
        rotate: 30,
        translate: 0.2,
        zoom: [0.8, 1.2],
        stretch: [0.8, 1.25],
        shear: 15,
      });
      const p = t.draw(seededRandom(9), x.shape);
      const maps = t.inverse!(p, x.shape);
      const y = t.apply(x, p);
      const want = naiveWarp(await x.data() as Float32Array, x.shape, maps, 9, 11);
      assert.ok(await maxDiff(y, want) < 1e-5, "rotation/shear/zoom warp");
      // A hand-written matrix: 90 degrees about the centre of a 3x3 image.
      const img = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
      const r90 = warpAffine(img, [[0, 1, 0, -1, 0, 2]], [3, 3]);
      assert.deepEqual(Array.from(await r90.data()), [7, 4, 1, 8, 5, 2, 9, 6, 3]);
      tf.dispose([x, y, img, r90]);
    } finally {
      await tf.setBackend("wasm");
    }
  });
}

Deno.test("randomAffine() composes its effects into one matrix about the centre", () => {
  const p = { angle: [90], shear: [0], zoom: [2], stretch: [1], tx: [1], ty: [0] };
  const f = affineForward(p, 0, 5, 5); // centre (2, 2)
  // (3, 2) is one right of centre: rotated 90 degrees and zoomed 2x it is two below, then shifted 1 right.
  const [x, y] = [f[0] * 3 + f[1] * 2 + f[2], f[3] * 3 + f[4] * 2 + f[5]];
  assert.ok(Math.abs(x - 3) < 1e-12 && Math.abs(y - 4) < 1e-12, `${x}, ${y}`);
  const id = randomAffine().draw(seededRandom(1), [2, 5, 5, 1]);
  assert.deepEqual(invert(affineForward(id, 0, 5, 5)).map((v) => Math.round(v * 1e9) / 1e9 + 0), [
    1,
    0,
    0,
    0,
    1,
    0,
  ]);
  assert.throws(() => randomAffine({ rotate: -1 }), /rotate -1 is invalid/);
});

Deno.test("lensDistortion() samples at r (1 + k1 r^2 + k2 r^4) and its forward map inverts that", async () => {
  const x = rand([2, 15, 15, 1], 5);
  const t = lensDistortion();
  const p = { k1: [0.3, -0.2], k2: [0.05, 0] };
  const y = t.apply(x, p);
  const R = Math.hypot(7, 7);
  const maps: Affine[] = [];
  // Along the centre row a radial map is a 1-D scaling per pixel: compare pixels there.
  const xv = await x.data() as Float32Array, yv = await y.data() as Float32Array;
  for (let b = 0; b < 2; b++) {
    for (let col = 0; col < 15; col++) {
      const d = col - 7, r = Math.abs(d) / R;
      const s = 7 + d * (1 + p.k1[b] * r * r + p.k2[b] * r ** 4);
      const x0 = Math.floor(s), f = s - x0;
      const v = (c: number) => (c < 0 || c > 14 ? 0 : xv[(b * 15 + 7) * 15 + c]);
      const want = (1 - f) * v(x0) + f * v(x0 + 1);
      assert.ok(Math.abs(yv[(b * 15 + 7) * 15 + col] - want) < 1e-5, `image ${b} column ${col}`);
    }
    // forward(input point) lands where the sampling map reads that point.
    for (const [px, py] of [[1, 2], [12, 3], [7, 13]]) {
      const q = t.forward!(p, x.shape, b, px, py)!;
      const r = Math.hypot(q[0] - 7, q[1] - 7) / R, f = 1 + p.k1[b] * r * r + p.k2[b] * r ** 4;
      assert.ok(
        Math.abs(7 + (q[0] - 7) * f - px) < 1e-6 && Math.abs(7 + (q[1] - 7) * f - py) < 1e-6,
      );
    }
  }
  assert.equal(maps.length, 0);
  tf.dispose([x, y]);
});

Deno.test("colorJitter() is the identity at zero strength and matches each adjustment's formula", async () => {
  const x = rand([4, 6, 5, 3], 6);
  const id = colorJitter();
  const y0 = id.apply(x, id.draw(seededRandom(1), x.shape));
  assert.equal(await maxDiff(y0, x), 0);
  const t = colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, range: null });
  const p = t.draw(seededRandom(2), x.shape);
  const y = t.apply(x, p);
  // Naive: each adjustment in the drawn order, per pixel.
  const xv = await x.data() as Float32Array;
  const GRAY = [0.2989, 0.587, 0.114];
  const want = new Float32Array(xv.length);
  const orders: number[][] = [];
  const perm = (rest: number[], acc: number[]): void => {
    if (!rest.length) orders.push(acc);
    rest.forEach((v, i) => perm([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, v]));
  };
  perm([0, 1, 2, 3], []);
  const YIQ = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]];
  for (let b = 0; b < 4; b++) {
    let img = Array.from({ length: 30 }, (_, k) => [0, 1, 2].map((c) => xv[(b * 30 + k) * 3 + c]));
    for (const op of orders[p.order[b]]) {
      if (op === 0) img = img.map((px) => px.map((v) => v * p.brightness[b]));
      if (op === 1) {
        const m = img.reduce((s, px) => s + px.reduce((a, v, c) => a + v * GRAY[c], 0), 0) / 30;
        img = img.map((px) => px.map((v) => p.contrast[b] * v + (1 - p.contrast[b]) * m));
      }
      if (op === 2) {
        img = img.map((px) => {
          const g = px.reduce((a, v, c) => a + v * GRAY[c], 0);
          return px.map((v) => p.saturation[b] * v + (1 - p.saturation[b]) * g);
        });
      }
      if (op === 3) {
        const a = 2 * Math.PI * p.hue[b];
        img = img.map((px) => {
          const [Y, I, Q] = YIQ.map((r) => r.reduce((s, v, c) => s + v * px[c], 0));
          const i2 = Math.cos(a) * I - Math.sin(a) * Q, q2 = Math.sin(a) * I + Math.cos(a) * Q;
          // YIQ back to RGB by solving the 3x3 (Cramer-free: the standard inverse).
          return [
            Y + 0.9563 * i2 + 0.621 * q2,
            Y - 0.2721 * i2 - 0.6474 * q2,
            Y - 1.107 * i2 + 1.7046 * q2,
          ];
        });
      }
    }
    img.forEach((px, k) => px.forEach((v, c) => want[(b * 30 + k) * 3 + c] = v));
  }
  // The rounded textbook YIQ inverse differs from the exact one by ~1e-3.
  assert.ok(await maxDiff(y, want) < 5e-3, "jitter against the per-pixel formulas");
  // On gray images saturation and hue do nothing; brightness and contrast act.
  const g = rand([2, 4, 4, 1], 7);
  const gp = {
    brightness: [1, 1.5],
    contrast: [1, 1],
    saturation: [0.2, 1],
    hue: [0.3, 0],
    order: [0, 0],
  };
  const gy = colorJitter({ range: null }).apply(g, gp);
  const gv = await g.data() as Float32Array, gyv = await gy.data() as Float32Array;
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(gyv[i] - gv[i] * (i < 16 ? 1 : 1.5)) < 1e-6);
  const jm = jitterMatrices(gp, 0, 1);
  assert.deepEqual(jm.A, [[1]]);
  assert.throws(() => colorJitter({ hue: 0.7 }), /hue 0.7 is invalid/);
  const four = rand([1, 2, 2, 4], 1);
  assert.throws(() => t.apply(four, t.draw(seededRandom(1), four.shape)), /4 channels/);
  tf.dispose([x, y0, y, g, gy, four]);
});

Deno.test("symmetricEigen() recovers a known covariance's eigen-decomposition", () => {
  // C = V diag(0.09, 0.01, 0.0025) V^T with V an orthonormal basis.
  const s = Math.SQRT1_2, t = 1 / Math.sqrt(3), u = 1 / Math.sqrt(6);
  const V = [[t, t, t], [s, 0, -s], [u, -2 * u, u]];
  const L = [0.09, 0.01, 0.0025];
  const C = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => V.reduce((a, v, k) => a + L[k] * v[i] * v[j], 0))
  );
  const { values, vectors } = symmetricEigen(C);
  values.forEach((v, k) => assert.ok(Math.abs(v - L[k]) < 1e-15, `value ${k}`));
  vectors.forEach((v, k) => {
    const dot = v.reduce((a, x, j) => a + x * V[k][j], 0);
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-12, `vector ${k}`);
  });
  assert.throws(() => symmetricEigen([[1, 2], [3, 4]]), /symmetric/);
});

Deno.test("fitColorPca() streams the covariance of a data set, and fancyPca() offsets along its eigenvectors", async () => {
  // 40 images whose pixels are r, g, b from a known linear mix of two sources.
  const r = seededRandom(4);
  const n = 40, px = 6 * 6;
  const pixels = new Float32Array(n * px * 3);
  for (let i = 0; i < n * px; i++) {
    const a = r.next(), b = r.next();
    pixels.set([0.5 * a + 0.1 * b, 0.3 * a, 0.2 * a + 0.4 * b], i * 3);
  }
  const data = arraySource({
    name: "mix",
    pixels,
    shape: [6, 6, 3],
    labels: Array(n).fill(0),
    classes: ["x"],
  });
  const pca = await fitColorPca(data, { batchSize: 7 });
  // Naive covariance over all pixels.
  const mean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = 0; i < n * px; i++) s += pixels[i * 3 + c];
    return s / (n * px);
  });
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < n * px; k++) {
        s += (pixels[k * 3 + i] - mean[i]) * (pixels[k * 3 + j] - mean[j]);
      }
      assert.ok(Math.abs(pca.covariance[i][j] - s / (n * px)) < 1e-6, `cov ${i}${j}`);
    }
  }
  assert.equal(pca.pixels, n * px);
  // Two sources: the third eigenvalue is ~0.
  assert.ok(pca.eigenvalues[2] < 1e-6 && pca.eigenvalues[1] > 1e-3);
  const t = fancyPca(pca, { std: 0.1 });
  const x = rand([3, 2, 2, 3], 8);
  const p = t.draw(seededRandom(3), x.shape);
  const y = t.apply(x, p);
  const d = await tf.tidy(() => y.sub(x)).data() as Float32Array;
  for (let b = 0; b < 3; b++) {
    const want = [0, 1, 2].map((c) =>
      [0, 1, 2].reduce(
        (s, k) => s + p.alpha[b * 3 + k] * pca.eigenvalues[k] * pca.eigenvectors[k][c],
        0,
      )
    );
    for (let c = 0; c < 3; c++) {
      for (let k = 0; k < 4; k++) assert.ok(Math.abs(d[b * 12 + k * 3 + c] - want[c]) < 1e-6);
    }
  }
  await assert.rejects(() => fitColorPca(data, { count: 0 }), /count 0 is invalid/);
  const gray = rand([1, 2, 2, 1], 1);
  assert.throws(() => t.apply(gray, { alpha: [0] }), /fitted on 3-channel images/);
  tf.dispose([x, y, gray]);
});

Deno.test("cutout() and randomErasing() change exactly their rectangle", async () => {
  const x = tf.ones([2, 8, 8, 1]) as tf.Tensor4D;
  const y = cutout({ size: 0.5 }).apply(x, {
    top: [-2, 3],
    left: [1, 5],
    height: [4, 4],
    width: [4, 4],
    seed: [0],
  });
  const v = await y.data();
  let zeros = 0;
  for (let i = 0; i < 128; i++) zeros += v[i] === 0 ? 1 : 0;
  assert.equal(zeros, 2 * 4 + 4 * 3, "rows 0-1 x cols 1-4, and rows 3-6 x cols 5-7");
  const e = randomErasing({ p: 1 });
  const p = e.draw(seededRandom(1), [4, 16, 16, 3]);
  p.height.forEach((h, i) => {
    const a = h * p.width[i] / 256;
    assert.ok(a >= 0.01 && a <= 0.45 && p.top[i] + h <= 16 && p.left[i] + p.width[i] <= 16);
  });
  tf.dispose([x, y]);
});

Deno.test("mixup() and cutmix() mix images and labels by the same weights; soft labels sum to 1", async () => {
  const x = rand([6, 8, 8, 1], 9);
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3).toFloat() as tf.Tensor2D;
  for (const t of [mixup({ alpha: 0.4 }), cutmix()]) {
    const p = t.draw(seededRandom(11), x.shape);
    const y = t.apply(x, p);
    const l = t.mixLabels!(labels, p);
    const lv = await l.data();
    for (let i = 0; i < 6; i++) {
      assert.ok(
        Math.abs(lv[i * 3] + lv[i * 3 + 1] + lv[i * 3 + 2] - 1) < 1e-6,
        `${t.name} row ${i}`,
      );
    }
    // The mean pixel of the mix is the lambda-weighted mean for mixup; for
    // cutmix the kept area fraction is lambda.
    const xv = await x.data(), yv = await y.data();
    for (let i = 0; i < 6; i++) {
      const j = p.partner[i];
      let kept = 0, ok = 0;
      for (let k = 0; k < 64; k++) {
        const a = xv[i * 64 + k], b = xv[j * 64 + k], v = yv[i * 64 + k];
        if (t.name === "mixup") {
          ok += Math.abs(v - (p.lambda[i] * a + (1 - p.lambda[i]) * b)) < 1e-6 ? 1 : 0;
        } else {
          ok += Math.abs(v - a) < 1e-7 || Math.abs(v - b) < 1e-7 ? 1 : 0;
          const r = Math.floor(k / 8), c = k % 8;
          const inside = r >= p.top[i] && r < p.top[i] + p.height[i] && c >= p.left[i] &&
            c < p.left[i] + p.width[i];
          kept += inside ? 0 : 1;
        }
      }
      assert.equal(ok, 64);
      if (t.name === "cutmix") assert.ok(Math.abs(kept / 64 - p.lambda[i]) < 1e-9);
    }
    tf.dispose([y, l]);
  }
  assert.throws(() => mixup({ alpha: 0 }), /alpha 0 is invalid/);
  tf.dispose([x, labels]);
});

Deno.test("randomAffine({ wholePixels }) shifts by whole pixels: a copy, zeros coming in", async () => {
  const x = rand([6, 7, 9, 2], 12);
  const t = randomAffine({ translate: 0.3, wholePixels: true });
  const p = t.draw(seededRandom(4), x.shape);
  assert.ok(p.tx.every(Number.isInteger) && p.ty.every(Number.isInteger));
  assert.ok(p.ty.includes(0) || p.tx.some((v) => v !== 0), "some shift drawn");
  const y = t.apply(x, p);
  const xv = await x.data() as Float32Array, yv = await y.data() as Float32Array;
  for (let b = 0; b < 6; b++) {
    for (let r = 0; r < 7; r++) {
      for (let c = 0; c < 9; c++) {
        const sr = r - p.ty[b], sc = c - p.tx[b];
        for (let k = 0; k < 2; k++) {
          const want = sr < 0 || sr >= 7 || sc < 0 || sc >= 9
            ? 0
            : xv[((b * 7 + sr) * 9 + sc) * 2 + k];
          // cropAndResize's normalized coordinates round in float32: 1e-5.
          const got = yv[((b * 7 + r) * 9 + c) * 2 + k];
          assert.ok(Math.abs(got - want) < 1e-5, `image ${b} (${r}, ${c}): ${got} vs ${want}`);
        }
      }
    }
  }
  // A shift of the first row's start (ty = 0) with a column shift: the case the
  // WASM CropAndResize gets wrong without the workaround in warp.ts.
  const q = { ...p, tx: [2, -1, 0, 3, 1, -2], ty: [0, 0, 1, 0, -1, 0] };
  const z = t.apply(x, q);
  const zv = await z.data() as Float32Array;
  assert.ok(
    Math.abs(zv[((0 * 7 + 0) * 9 + 2) * 2] - xv[0]) < 1e-5,
    "image 0 starts 2 columns right",
  );
  tf.dispose([x, y, z]);
});
