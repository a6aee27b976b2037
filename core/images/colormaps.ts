/**
 * Colormaps for heatmaps: the 256-entry lookup tables (viridis, inferno,
 * coolwarm, gray), colouring of 2-D maps, and heatmap overlays on images.

 * Conventions: image tensors are float32 `[height, width, channels]` (or
 * `[batch, height, width, channels]`) with values in [0, 1] and 1 (gray) or 3
 * (RGB) channels. Every function that returns a tensor leaves
 * `tf.memory().numTensors` unchanged apart from the tensor it returns; inputs are
 * never disposed.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { checkImageTensor } from "./_checks.ts";
import { resize, toRgb } from "./display.ts";

/** Names of the built-in colormaps. */
export type ColormapName = "viridis" | "inferno" | "coolwarm" | "gray";

// Viridis and inferno: the 256-entry tables of matplotlib's colormaps (by
// Nathaniel Smith and Stefan van der Walt, CC0), as 8-bit RGB hex.
const VIRIDIS_HEX =
  "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467" +
  "48166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677" +
  "482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882" +
  "443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f4889" +
  "3e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c" +
  "38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e" +
  "31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e" +
  "2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e" +
  "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d" +
  "218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a" +
  "1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a884" +
  "23a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b" +
  "32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e" +
  "4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e" +
  "67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d549" +
  "89d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32" +
  "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11c" +
  "d2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61e" +
  "f6e620f8e621fbe723fde725";
const INFERNO_HEX =
  "00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d" +
  "09061f0a07220b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e" +
  "1b0c411c0c431e0c451f0c48210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c" +
  "320a5e340a5f3609613809623909633b09643d09653e0966400a67420a68440a68450a69470b6a490b6a" +
  "4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d57106e59106e5a116e5c126e5d126e5f136e" +
  "61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e71196e721a6e741a6e751b6e" +
  "771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a8a226a8c2369" +
  "8d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62" +
  "a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557" +
  "b93556ba3655bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149" +
  "cc4248ce4347cf4446d04545d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513a" +
  "de5238df5337e05536e15635e25734e35933e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429" +
  "eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711ff1731df2741cf3761bf37819f47918f57b17" +
  "f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0af98e09fa9008fa9207fa9407" +
  "fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0ffcac11fcae12" +
  "fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932" +
  "f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55d" +
  "f2e661f2e865f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96" +
  "f8fb9af9fc9dfafda1fcffa4";

// Coolwarm: Kenneth Moreland's diverging map ("Diverging Color Maps for
// Scientific Visualization", CoolWarmFloat33), 33 evenly spaced anchors.
const COOLWARM_ANCHORS: readonly (readonly [number, number, number])[] = [
  [0.2298, 0.2987, 0.7537],
  [0.2662, 0.3531, 0.8015],
  [0.3039, 0.4065, 0.8450],
  [0.3428, 0.4588, 0.8837],
  [0.3830, 0.5094, 0.9174],
  [0.4244, 0.5581, 0.9456],
  [0.4667, 0.6046, 0.9682],
  [0.5096, 0.6483, 0.9848],
  [0.5530, 0.6889, 0.9954],
  [0.5963, 0.7261, 0.9998],
  [0.6392, 0.7596, 0.9982],
  [0.6813, 0.7890, 0.9904],
  [0.7222, 0.8140, 0.9766],
  [0.7615, 0.8343, 0.9569],
  [0.7987, 0.8498, 0.9317],
  [0.8335, 0.8602, 0.9011],
  [0.8654, 0.8654, 0.8654],
  [0.8978, 0.8489, 0.8209],
  [0.9241, 0.8274, 0.7745],
  [0.9445, 0.8009, 0.7267],
  [0.9589, 0.7698, 0.6780],
  [0.9673, 0.7341, 0.6288],
  [0.9700, 0.6943, 0.5794],
  [0.9668, 0.6504, 0.5303],
  [0.9580, 0.6028, 0.4818],
  [0.9437, 0.5518, 0.4342],
  [0.9239, 0.4973, 0.3880],
  [0.8990, 0.4396, 0.3432],
  [0.8692, 0.3783, 0.3003],
  [0.8346, 0.3129, 0.2593],
  [0.7956, 0.2413, 0.2205],
  [0.7525, 0.1572, 0.1841],
  [0.7057, 0.0156, 0.1502],
];

const lutCache = new Map<ColormapName, Float32Array>();

function hexLut(hex: string): Float32Array {
  const out = new Float32Array(256 * 3);
  for (let i = 0; i < 256 * 3; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16) / 255;
  return out;
}

function anchorLut(anchors: readonly (readonly [number, number, number])[]): Float32Array {
  const out = new Float32Array(256 * 3);
  const last = anchors.length - 1;
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * last;
    const j = Math.min(last - 1, Math.floor(pos));
    const f = pos - j;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = anchors[j][c] * (1 - f) + anchors[j + 1][c] * f;
  }
  return out;
}

/**
 * The 256-entry lookup table of a built-in colormap, e.g. for a legend.
 *
 * @param name `"viridis"`, `"inferno"` (sequential), `"coolwarm"` (diverging) or `"gray"`.
 * @returns 256 RGB triples in [0, 1], flat (`lut[i * 3 + c]`); a fresh copy.
 * @throws {RangeError} For an unknown name.
 */
export function colormapLut(name: ColormapName): Float32Array {
  let lut = lutCache.get(name);
  if (!lut) {
    if (name === "viridis") lut = hexLut(VIRIDIS_HEX);
    else if (name === "inferno") lut = hexLut(INFERNO_HEX);
    else if (name === "coolwarm") lut = anchorLut(COOLWARM_ANCHORS);
    else if (name === "gray") lut = anchorLut([[0, 0, 0], [1, 1, 1]]);
    else {
      throw new RangeError(
        `Unknown colormap "${name}". Use "viridis", "inferno", "coolwarm" or "gray".`,
      );
    }
    lutCache.set(name, lut);
  }
  return lut.slice();
}

/** Options of {@link colormap}. */
export interface ColormapOptions {
  /**
   * Value mapped to the first colour. Defaults to the data's minimum, or to
   * `-max` when `symmetric`.
   *
   * @default {undefined}
   */
  min?: number;
  /**
   * Value mapped to the last colour. Defaults to the data's maximum, or to
   * `max|v|` when `symmetric`.
   *
   * @default {undefined}
   */
  max?: number;
  /**
   * When `min`/`max` are not given, use the range `[-max|v|, max|v|]` so that 0
   * falls on the centre colour (white-ish for coolwarm). Defaults to `true` for
   * `"coolwarm"` and `false` otherwise.
   *
   * @default {name === "coolwarm"}
   */
  symmetric?: boolean;
}

/**
 * Colours a 2-D map (or a batch of them) with a colormap, by a lookup in a
 * 256-entry table (one `gather`, batched on the backend).
 *
 * @param t A `[height, width]` map of any real values.
 * @param name Colormap: `"viridis"`, `"inferno"` (sequential), `"coolwarm"`
 *   (diverging blue-white-red) or `"gray"`.
 * @param options Value range, see {@link ColormapOptions}.
 * @returns A new `[height, width, 3]` RGB tensor in [0, 1].
 */
export function colormap(
  t: tf.Tensor2D,
  name: ColormapName,
  options?: ColormapOptions,
): tf.Tensor3D;
/**
 * Colours a batch of 2-D maps with a colormap (one range for the whole batch).
 *
 * @param t A `[batch, height, width]` batch of maps.
 * @param name Colormap, see above.
 * @param options Value range, see {@link ColormapOptions}.
 * @returns A new `[batch, height, width, 3]` RGB tensor in [0, 1].
 */
export function colormap(
  t: tf.Tensor3D,
  name: ColormapName,
  options?: ColormapOptions,
): tf.Tensor4D;
export function colormap(
  t: tf.Tensor2D | tf.Tensor3D,
  name: ColormapName,
  options: ColormapOptions = {},
): tf.Tensor3D | tf.Tensor4D {
  if (!(t instanceof tf.Tensor) || (t.rank !== 2 && t.rank !== 3)) {
    throw new RangeError(
      "colormap: expected a [height, width] map or a [batch, height, width] batch, got " +
        `${t instanceof tf.Tensor ? `shape [${t.shape.join(", ")}]` : typeof t}. ` +
        "Squeeze a channel axis first, e.g. t.squeeze([2]).",
    );
  }
  const lutValues = colormapLut(name);
  const { min, max, symmetric = name === "coolwarm" } = options;
  if (min !== undefined && max !== undefined && !(max > min)) {
    throw new RangeError(`colormap: max (${max}) must be greater than min (${min}).`);
  }
  return tf.tidy(() => {
    const x = t.toFloat();
    let u: tf.Tensor;
    if (min === undefined && max === undefined && symmetric) {
      const m = x.abs().max();
      const safeM = tf.where(tf.greater(m, 0), m, tf.onesLike(m));
      u = tf.add(0.5, tf.div(x, tf.mul(2, safeM)));
    } else {
      const abs = symmetric ? x.abs().max() : undefined;
      const lo = min !== undefined ? tf.scalar(min) : abs ? tf.neg(abs) : x.min();
      const hi = max !== undefined ? tf.scalar(max) : abs ? abs : x.max();
      const range = tf.sub(hi, lo);
      u = tf.div(tf.sub(x, lo), tf.where(tf.greater(range, 0), range, tf.onesLike(range)));
    }
    const index = tf.round(tf.mul(tf.clipByValue(u, 0, 1), 255)).toInt();
    const lut = tf.tensor2d(lutValues, [256, 3], "float32");
    return tf.gather(lut, index) as tf.Tensor as tf.Tensor3D | tf.Tensor4D;
  });
}

/**
 * Blends a heatmap over an image: `(1 - alpha) * image + alpha * heat`. A gray
 * image is shown as gray RGB; the heatmap is resized (bilinear) to the image's
 * size when they differ.
 *
 * @param image A `[height, width, 1 | 3]` image in [0, 1].
 * @param heat A `[h, w, 3]` (or `[h, w, 1]`) heatmap in [0, 1], e.g. from {@link colormap}.
 * @param alpha Weight of the heatmap, in [0, 1].
 * @returns A new `[height, width, 3]` tensor.
 */
export function overlay(image: tf.Tensor3D, heat: tf.Tensor3D, alpha = 0.5): tf.Tensor3D {
  checkImageTensor(image, "overlay (image)");
  checkImageTensor(heat, "overlay (heat)");
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new RangeError(`overlay: alpha must be in [0, 1], got ${alpha}.`);
  }
  const [h, w] = image.shape;
  return tf.tidy(() => {
    const rgb = toRgb(image);
    const heatRgb = resize(toRgb(heat), h, w, "bilinear");
    return tf.add(tf.mul(rgb, 1 - alpha), tf.mul(heatRgb, alpha));
  });
}
