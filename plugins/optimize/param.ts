/**
 * Parameterizations of the optimized image: what the loop's optimizer actually
 * changes, and the differentiable map from it to the image the net sees.
 *
 * - {@linkcode pixels}: raw pixels in model input space (the lecture's X).
 * - {@linkcode lowres}: pixels at a lower resolution, bilinearly upsampled (by
 *   matmuls) onto a fixed base image; DeepDream's octaves for fixed-size nets.
 * - {@linkcode fourier}: beyond the lecture, Olah et al.'s (Lucid's) Fourier-space
 *   image with 1/f scaling, decorrelated colour and a sigmoid into the valid
 *   range. The inverse real DFT is written as matmuls by precomputed cos/sin
 *   matrices (exact, differentiable, on every backend: WASM has no FFT kernels).
 *
 * Each one maps back from an image (`fromImage`), so a loop starts from any image
 * and the step priors (blur, clipping) act on images whatever the
 * parameterization.
 *
 * @module
 */
import { tf } from "../../core/tf.ts";

/** What the optimizer changes, and how it becomes an image. */
export interface Parameterization {
  /** Short name for captions. */
  readonly name: string;
  /** The parameter tensor that gives these images (model input space). */
  fromImage(image: tf.Tensor4D): tf.Tensor;
  /** The image (model input space) of a parameter tensor; differentiable. */
  toImage(param: tf.Tensor): tf.Tensor4D;
}

/**
 * Raw pixels: the parameter is the image itself.
 *
 * @returns The parameterization.
 */
export function pixels(): Parameterization {
  return {
    name: "pixels",
    fromImage: (image) => image.clone(),
    toImage: (param) => param.clone() as tf.Tensor4D,
  };
}

/** `[rows, cols]` matrix as a flat array (row-major). */
interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** Half-pixel-centre bilinear interpolation from `n` samples to `m` (an m x n matrix). */
function upsampleMatrix(m: number, n: number): Matrix {
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const src = Math.min(Math.max((i + 0.5) * (n / m) - 0.5, 0), n - 1);
    const j0 = Math.floor(src), j1 = Math.min(j0 + 1, n - 1), f = src - j0;
    data[i * n + j0] += 1 - f;
    data[i * n + j1] += f;
  }
  return { rows: m, cols: n, data };
}

/** The pseudo-inverse (U^T U)^-1 U^T of a full-column-rank matrix, by Gauss-Jordan. */
function pseudoInverse(u: Matrix): Matrix {
  const { rows: m, cols: n, data } = u;
  const a = new Float64Array(n * 2 * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += data[k * n + i] * data[k * n + j];
      a[i * 2 * n + j] = s;
    }
    a[i * 2 * n + n + i] = 1;
  }
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) {
      if (Math.abs(a[r * 2 * n + c]) > Math.abs(a[p * 2 * n + c])) p = r;
    }
    for (let k = 0; k < 2 * n; k++) {
      [a[c * 2 * n + k], a[p * 2 * n + k]] = [a[p * 2 * n + k], a[c * 2 * n + k]];
    }
    const d = a[c * 2 * n + c];
    for (let k = 0; k < 2 * n; k++) a[c * 2 * n + k] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r * 2 * n + c];
      if (f === 0) continue;
      for (let k = 0; k < 2 * n; k++) a[r * 2 * n + k] -= f * a[c * 2 * n + k];
    }
  }
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * 2 * n + n + k] * data[j * n + k];
      out[i * m + j] = s;
    }
  }
  return { rows: n, cols: m, data: out };
}

function transposed(u: Matrix): Matrix {
  const data = new Float64Array(u.rows * u.cols);
  for (let i = 0; i < u.rows; i++) {
    for (let j = 0; j < u.cols; j++) data[j * u.rows + i] = u.data[i * u.cols + j];
  }
  return { rows: u.cols, cols: u.rows, data };
}

function tensorOf(u: Matrix): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from(u.data), [u.rows, u.cols]);
}

/**
 * Applies `L` on the rows axis and `R` on the columns axis of every channel of a
 * batch: out[:, :, :, c] = L x[:, :, :, c] R^T, as two 2D matmuls.
 */
function separable(x: tf.Tensor4D, lT: tf.Tensor2D, rT: tf.Tensor2D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const outH = lT.shape[1], outW = rT.shape[1];
  const byCol = x.transpose([0, 3, 1, 2]).reshape([n * c * h, w]).matMul(rT); // [n c h, W]
  const byRow = byCol.reshape([n * c, h, outW]).transpose([0, 2, 1]).reshape([n * c * outW, h])
    .matMul(lT); // [n c W, H]
  return byRow.reshape([n, c, outW, outH]).transpose([0, 3, 2, 1]) as tf.Tensor4D;
}

/**
 * Pixels at a lower resolution, upsampled bilinearly (half-pixel centres, as
 * `tf.image.resizeBilinear`) onto a base image: image = base + up(param).
 * `fromImage` takes the least-squares low-resolution detail of image - base.
 *
 * @param height Low-resolution height.
 * @param width Low-resolution width.
 * @param outHeight The net's input height.
 * @param outWidth The net's input width.
 * @param base The image the detail is added to, `[1 | n, outHeight, outWidth, c]`
 *   in model space (the caller keeps it alive); default: none (zero).
 * @returns The parameterization; `dispose` frees its matrices.
 */
export function lowres(
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
  base?: tf.Tensor4D,
): Parameterization & { dispose(): void } {
  for (const [k, v] of Object.entries({ height, width, outHeight, outWidth })) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(`lowres: ${k} must be a whole number > 0, got ${v}`);
    }
  }
  if (height > outHeight || width > outWidth) {
    throw new RangeError(
      `lowres: ${height}x${width} is larger than the output ${outHeight}x${outWidth}`,
    );
  }
  const uh = upsampleMatrix(outHeight, height), uw = upsampleMatrix(outWidth, width);
  const upH = tensorOf(transposed(uh)), upW = tensorOf(transposed(uw));
  const downH = tensorOf(transposed(pseudoInverse(uh))),
    downW = tensorOf(transposed(pseudoInverse(uw)));
  return {
    name: `lowres(${height}x${width})`,
    fromImage: (image) => tf.tidy(() => separable(base ? image.sub(base) : image, downH, downW)),
    toImage: (param) =>
      tf.tidy(() => {
        const up = separable(param as tf.Tensor4D, upH, upW);
        return base ? up.add(base) : up;
      }),
    dispose: () => tf.dispose([upH, upW, downH, downW]),
  };
}

/** Options of {@linkcode fourier}. */
export interface FourierOptions {
  /** Lowest value per channel, model space (e.g. `net.inputBounds().lo`). */
  lo: readonly number[];
  /** Highest value per channel, model space. */
  hi: readonly number[];
  /** Power of the 1/f scaling of the spectrum. @default 1 */
  decay?: number;
  /** Decorrelate the colour of 3-channel images (Lucid's ImageNet matrix). @default true */
  decorrelate?: boolean;
}

/** Lucid's square root of the ImageNet colour correlation (columns normalized to max norm 1). */
const COLOR_SQRT = [[0.26, 0.09, 0.02], [0.27, 0.0, -0.05], [0.27, -0.09, 0.03]];

function colorMatrix(): number[][] {
  const norms = [0, 1, 2].map((j) => Math.hypot(...COLOR_SQRT.map((r) => r[j])));
  const max = Math.max(...norms);
  return COLOR_SQRT.map((r) => r.map((v) => v / max));
}

function invert3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}

/** numpy's `fftfreq(n)`. */
function fftfreq(n: number): number[] {
  return Array.from({ length: n }, (_, k) => (k < Math.ceil(n / 2) ? k : k - n) / n);
}

/**
 * Olah et al.'s Fourier parameterization (Lucid's `fft_image` + `to_valid_rgb`):
 * the parameter is a half spectrum `[n, c, h, 2 * (floor(w/2) + 1)]` (real parts,
 * then imaginary parts), scaled by 1/f^decay, turned into an image by an inverse
 * real 2D DFT (two matmuls by cos/sin matrices), divided by 4, decorrelated in
 * colour and squashed by a sigmoid into the valid range [lo, hi].
 *
 * @param height Image height.
 * @param width Image width.
 * @param channels Channels (1 or 3).
 * @param options Range, decay, colour decorrelation.
 * @returns The parameterization; `dispose` frees its matrices.
 */
export function fourier(
  height: number,
  width: number,
  channels: number,
  options: FourierOptions,
): Parameterization & { dispose(): void } {
  const { lo, hi, decay = 1, decorrelate = true } = options;
  const h = height, w = width, wf = Math.floor(w / 2) + 1;
  const fy = fftfreq(h), fx = Array.from({ length: wf }, (_, l) => l / w);
  const scale = new Float32Array(h * 2 * wf);
  for (let k = 0; k < h; k++) {
    for (let l = 0; l < wf; l++) {
      const f = Math.max(Math.hypot(fy[k], fx[l]), 1 / Math.max(h, w));
      const s = Math.sqrt(h * w) / f ** decay;
      scale[k * 2 * wf + l] = s;
      scale[k * 2 * wf + wf + l] = s;
    }
  }
  // Columns: l-th frequency counts twice except DC (and Nyquist for even w).
  const weight = (l: number) => (l === 0 || (w % 2 === 0 && l === w / 2) ? 1 : 2);
  // Step 1 along columns: [Zr | Zi] [.., 2wf] x m1 [2wf, 2w] = [Vr | Vi].
  const m1 = new Float32Array(2 * wf * 2 * w);
  for (let l = 0; l < wf; l++) {
    for (let v = 0; v < w; v++) {
      const t = (2 * Math.PI * l * v) / w, c = weight(l) * Math.cos(t), s = weight(l) * Math.sin(t);
      m1[l * 2 * w + v] = c; // Zr -> Vr
      m1[l * 2 * w + w + v] = s; // Zr -> Vi
      m1[(wf + l) * 2 * w + v] = -s; // Zi -> Vr
      m1[(wf + l) * 2 * w + w + v] = c; // Zi -> Vi
    }
  }
  // Step 2 along rows, real part: [Vr | Vi] [.., 2h] x m2 [2h, h] / (h w).
  const m2 = new Float32Array(2 * h * h);
  for (let k = 0; k < h; k++) {
    for (let u = 0; u < h; u++) {
      const t = (2 * Math.PI * k * u) / h;
      m2[k * h + u] = Math.cos(t) / (h * w);
      m2[(h + k) * h + u] = -Math.sin(t) / (h * w);
    }
  }
  // Inverse along columns: x [.., w] x a1 [w, 2wf] = [Ar | Ai] (real DFT, e^{-i..}).
  const a1 = tf.tidy(() => {
    const m = new Float32Array(w * 2 * wf);
    for (let v = 0; v < w; v++) {
      for (let l = 0; l < wf; l++) {
        const t = (2 * Math.PI * l * v) / w;
        m[v * 2 * wf + l] = Math.cos(t);
        m[v * 2 * wf + wf + l] = -Math.sin(t);
      }
    }
    return tf.tensor2d(m, [w, 2 * wf]);
  });
  // Inverse along rows: [Ar | Ai] [.., 2h] x b [2h, 2h] = [Zr | Zi].
  const b = tf.tidy(() => {
    const m = new Float32Array(2 * h * 2 * h);
    for (let u = 0; u < h; u++) {
      for (let k = 0; k < h; k++) {
        const t = (2 * Math.PI * k * u) / h, co = Math.cos(t), si = Math.sin(t);
        m[u * 2 * h + k] = co; // Ar -> Zr
        m[(h + u) * 2 * h + k] = si; // Ai -> Zr
        m[u * 2 * h + h + k] = -si; // Ar -> Zi
        m[(h + u) * 2 * h + h + k] = co; // Ai -> Zi
      }
    }
    return tf.tensor2d(m, [2 * h, 2 * h]);
  });
  const color = channels === 3 && decorrelate
    ? colorMatrix()
    : Array.from({ length: channels }, (_, i) =>
      Array.from({ length: channels }, (_, j) => +(i === j)));
  const colorInv = channels === 3 && decorrelate ? invert3(color) : color;
  const t = {
    scale: tf.tensor2d(scale, [h, 2 * wf]),
    m1: tf.tensor2d(m1, [2 * wf, 2 * w]),
    m2: tf.tensor2d(m2, [2 * h, h]),
    // x_flat [N, c] x color^T.
    colorT: tf.tensor2d(color[0].map((_, j) => color.map((r) => r[j])).flat(), [
      channels,
      channels,
    ]),
    lo: tf.tensor1d([...Array(channels)].map((_, i) => lo[i % lo.length])),
    span: tf.tensor1d([...Array(channels)].map((_, i) => hi[i % hi.length] - lo[i % lo.length])),
    // The inverse: pre_flat [N, c] = q_flat x colorInv^T.
    colorInvT: tf.tensor2d(colorInv[0].map((_, j) => colorInv.map((r) => r[j])).flat(), [
      channels,
      channels,
    ]),
    a1,
    b,
  };
  return {
    name: `fourier(decay ${decay}${channels === 3 && decorrelate ? ", decorrelated" : ""})`,
    toImage: (param) =>
      tf.tidy(() => {
        const [n, c] = param.shape;
        const z = param.mul(t.scale).reshape([n * c * h, 2 * wf]);
        const v = z.matMul(t.m1).reshape([n * c, h, 2, w]).transpose([0, 3, 2, 1])
          .reshape([n * c * w, 2 * h]);
        const img = v.matMul(t.m2).reshape([n, c, w, h]).transpose([0, 3, 2, 1]).div(4);
        const mixed = img.reshape([-1, c]).matMul(t.colorT).reshape([n, h, w, c]);
        return tf.sigmoid(mixed).mul(t.span).add(t.lo) as tf.Tensor4D;
      }),
    fromImage(image) {
      const [n, ih, iw, c] = image.shape;
      if (ih !== h || iw !== w || c !== channels) {
        throw new RangeError(
          `fourier: image of shape [${image.shape}] does not fit [n, ${h}, ${w}, ${channels}]`,
        );
      }
      // Tensor ops, not a read into JS: WebGPU cannot read GPU data synchronously.
      return tf.tidy(() => {
        // Undo the sigmoid, the colour mixing and the /4.
        const u = image.sub(t.lo).div(t.span).clipByValue(1e-4, 1 - 1e-4);
        const q = tf.log(u.div(tf.sub(1, u)));
        const pre = q.reshape([-1, c]).matMul(t.colorInvT).mul(4).reshape([n, h, w, c]);
        // Forward real DFT: Z[k, l] = sum_u sum_v x[u, v] e^{-2 pi i (k u / h + l v / w)},
        // along columns (a1) then rows (b), as in toImage.
        const a = pre.transpose([0, 3, 1, 2]).reshape([n * c * h, w]).matMul(t.a1)
          .reshape([n * c, h, 2, wf]).transpose([0, 3, 2, 1]).reshape([n * c * wf, 2 * h]);
        const z = a.matMul(t.b).reshape([n * c, wf, 2, h]).transpose([0, 3, 2, 1])
          .reshape([n, c, h, 2 * wf]);
        return z.div(t.scale) as tf.Tensor4D;
      });
    },
    dispose: () => tf.dispose(Object.values(t)),
  };
}
