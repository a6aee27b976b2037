/**
 * DropConnect (Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural
 * Networks using DropConnect", ICML 2013) as tfjs layers, next to dropout:
 * where dropout zeroes activations, DropConnect zeroes *weights*, each kept with
 * probability `1 - rate`, a fresh mask per training example (the paper's
 * scheme) or one per batch. Training only; at inference the layer uses the mean
 * weights: kept weights are scaled by `1 / (1 - rate)` in training ("inverted"
 * DropConnect), so the mean of the masked weights is the plain weight matrix and
 * inference is the plain dense (or conv) layer, exactly. (The paper's own
 * inference instead moment-matches a Gaussian over each unit's input; the mean
 * rule is what it compares against, and what MC-dropout marginalizes by
 * sampling: see `mc_dropout.ts`.)
 *
 * Masks come from the layer's `seed`, as tfjs's Dropout draws its mask: `fit`
 * gives each layer that says `reseedPerStep` a fresh seed every step (derived
 * from the run's seed), so training is repeatable and each step draws new
 * masks. The layers are registered with `tf.serialization.registerClass`, so a
 * saved model that holds them loads again (`loadNet`, `tf.loadLayersModel`)
 * once this module is imported.
 *
 * @example A DropConnect layer at inference is the dense layer of its weights
 * ```ts
 * import { tf } from "../../../core/tf.ts";
 * import { denseDropConnect } from "./drop_connect.ts";
 * const layer = denseDropConnect({ units: 3, rate: 0.5, seed: 1 });
 * const x = tf.ones([2, 4]);
 * const y = layer.apply(x) as tf.Tensor; // inference: x W + b
 * const [w, b] = layer.getWeights();
 * const want = tf.matMul(x, w).add(b);
 * if (tf.sub(y, want).abs().max().dataSync()[0] > 1e-6) throw new Error("mean weights");
 * tf.dispose([x, y, w, b, want]);
 * layer.dispose();
 * ```
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";

/** How many masks a training batch draws. */
export type MaskScope = "example" | "batch";

/** The activations a DropConnect layer applies after its weights. */
export type DropConnectActivation = "linear" | "relu" | "sigmoid" | "tanh" | "softmax" | "elu";

/** The weight initializations a DropConnect layer knows (seeded by `initSeed`). */
export type DropConnectInitializer = "glorotUniform" | "glorotNormal" | "heNormal" | "heUniform";

/** What every DropConnect layer takes besides its shape. */
export interface DropConnectCommonArgs {
  /** Layer name. @default a unique `dense_drop_connect_N` / `conv2d_drop_connect_N` */
  name?: string;
  /** Probability that a weight is dropped at a training step, in [0, 1). */
  rate: number;
  /** A mask per example (the paper's) or one per batch. @default "example" for dense, "batch" for conv */
  masks?: MaskScope;
  /** Seed of the masks (`fit` replaces it every step). @default unseeded */
  seed?: number;
  /** Activation after the weights. @default "linear" */
  activation?: DropConnectActivation;
  /** Add a bias (never dropped). @default true */
  useBias?: boolean;
  /** Initialization of the kernel. @default "glorotUniform" */
  kernelInitializer?: DropConnectInitializer;
  /** Seed of the kernel's initialization. @default unseeded */
  initSeed?: number;
  /** Shape of the model's input, for a model's first layer. @default none */
  inputShape?: number[];
  /** The input shape with its batch axis (as a saved config gives it). @default none */
  batchInputShape?: (number | null)[];
  /** Trainable. @default true */
  trainable?: boolean;
}

/** Arguments of {@linkcode DenseDropConnect}. */
export interface DenseDropConnectArgs extends DropConnectCommonArgs {
  /** Output units. */
  units: number;
}

/** Arguments of {@linkcode Conv2DDropConnect}. */
export interface Conv2DDropConnectArgs extends DropConnectCommonArgs {
  /** Output channels. */
  filters: number;
  /** Kernel height and width (one number for a square kernel). */
  kernelSize: number | [number, number];
  /** Stride. @default 1 */
  strides?: number | [number, number];
  /** Padding. @default "valid" */
  padding?: "valid" | "same";
}

const ACTIVATIONS: Record<DropConnectActivation, (y: tf.Tensor) => tf.Tensor> = {
  linear: (y) => y,
  relu: (y) => tf.relu(y),
  sigmoid: (y) => tf.sigmoid(y),
  tanh: (y) => tf.tanh(y),
  softmax: (y) => tf.softmax(y),
  elu: (y) => tf.elu(y),
};

const INITIALIZERS: Record<
  DropConnectInitializer,
  (seed?: number) => ReturnType<typeof tf.initializers.zeros>
> = {
  glorotUniform: (seed) => tf.initializers.glorotUniform({ seed }),
  glorotNormal: (seed) => tf.initializers.glorotNormal({ seed }),
  heNormal: (seed) => tf.initializers.heNormal({ seed }),
  heUniform: (seed) => tf.initializers.heUniform({ seed }),
};

function checkCommon(args: DropConnectCommonArgs, what: string): void {
  if (!(args.rate >= 0 && args.rate < 1)) {
    throw new RangeError(
      `${what} rate ${args.rate} is invalid: give the probability of dropping a weight, in [0, 1)`,
    );
  }
  if (args.masks !== undefined && args.masks !== "example" && args.masks !== "batch") {
    throw new RangeError(`${what} masks "${args.masks}" is invalid: give "example" or "batch"`);
  }
  if (args.activation !== undefined && !(args.activation in ACTIVATIONS)) {
    throw new RangeError(
      `${what} activation "${args.activation}" is unknown: give one of ${
        Object.keys(ACTIVATIONS).join(", ")
      }`,
    );
  }
  if (args.kernelInitializer !== undefined && !(args.kernelInitializer in INITIALIZERS)) {
    throw new RangeError(
      `${what} kernelInitializer "${args.kernelInitializer}" is unknown: give one of ${
        Object.keys(INITIALIZERS).join(", ")
      }`,
    );
  }
}

function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

/** The keyword arguments tfjs passes to a layer's `call` (`training` among them). */
export type Kwargs = Record<string, unknown>;

/**
 * A mask of kept weights scaled by `1 / (1 - rate)` (so its mean is 1): shape
 * `shape`, drawn from `seed`.
 */
function scaledMask(shape: number[], rate: number, seed: number | undefined): tf.Tensor {
  return tf.tidy(() =>
    tf.randomUniform(shape, 0, 1, "float32", seed).greaterEqual(rate).toFloat().div(1 - rate)
  );
}

/**
 * A fully connected layer with DropConnect on its weight matrix. Input `[n, d]`,
 * output `[n, units]`. In training with a mask per example, example i computes
 * `x_i (W * M_i) / (1 - rate) + b`; at inference, `x W + b`.
 */
export class DenseDropConnect extends tf.layers.Layer {
  /** The class name under which it is serialized. */
  static className = "DenseDropConnect";
  /** Tells `fit` to give the layer a fresh mask seed every step. */
  readonly reseedPerStep = true;
  /** Output units. */
  readonly units: number;
  /** Probability that a weight is dropped. */
  readonly rate: number;
  /** A mask per example or per batch. */
  readonly masks: MaskScope;
  /** Seed of the next masks. */
  seed?: number;
  readonly #activation: DropConnectActivation;
  readonly #useBias: boolean;
  readonly #init: DropConnectInitializer;
  readonly #initSeed?: number;
  #kernel?: tf.LayerVariable;
  #bias?: tf.LayerVariable;

  /**
   * Creates the layer.
   * @param args Units, rate, masks, seed, activation.
   * @throws {RangeError} for units, rate, masks, activation or initializer out of range.
   */
  constructor(args: DenseDropConnectArgs) {
    checkCommon(args, "DenseDropConnect");
    if (!Number.isInteger(args.units) || args.units < 1) {
      throw new RangeError(
        `DenseDropConnect units ${args.units} is invalid: give a positive integer`,
      );
    }
    super({
      name: args.name,
      inputShape: args.inputShape,
      batchInputShape: args.batchInputShape,
      trainable: args.trainable,
    });
    this.units = args.units;
    this.rate = args.rate;
    this.masks = args.masks ?? "example";
    this.seed = args.seed;
    this.#activation = args.activation ?? "linear";
    this.#useBias = args.useBias ?? true;
    this.#init = args.kernelInitializer ?? "glorotUniform";
    this.#initSeed = args.initSeed;
  }

  /** Creates the kernel `[d, units]` and the bias. */
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 2 || shape[1] === null) {
      throw new RangeError(
        `DenseDropConnect takes [batch, features] inputs, got [${shape}]: put a flatten or ` +
          "global pooling layer before it",
      );
    }
    this.#kernel = this.addWeight(
      "kernel",
      [shape[1] as number, this.units],
      "float32",
      INITIALIZERS[this.#init](this.#initSeed),
    );
    if (this.#useBias) {
      this.#bias = this.addWeight("bias", [this.units], "float32", tf.initializers.zeros());
    }
    this.built = true;
  }

  /** `[batch, units]`. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [shape[0], this.units];
  }

  /** Masked weights in training, the mean weights otherwise. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
      const w = this.#kernel!.read() as tf.Tensor2D;
      let y: tf.Tensor;
      if (kwargs["training"] === true && this.rate > 0) {
        if (this.masks === "example") {
          const n = x.shape[0];
          const m = scaledMask([n, w.shape[0], w.shape[1]], this.rate, this.seed);
          y = tf.matMul(x.expandDims(1), m.mul(w.expandDims(0)) as tf.Tensor3D).squeeze([1]);
        } else {
          y = tf.matMul(x, scaledMask(w.shape, this.rate, this.seed).mul(w) as tf.Tensor2D);
        }
      } else {
        y = tf.matMul(x, w);
      }
      if (this.#bias) y = y.add(this.#bias.read());
      return ACTIVATIONS[this.#activation](y);
    });
  }

  /** The layer's configuration, for saving. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      rate: this.rate,
      masks: this.masks,
      seed: this.seed ?? null,
      activation: this.#activation,
      useBias: this.#useBias,
      kernelInitializer: this.#init,
      initSeed: this.#initSeed ?? null,
    };
  }

  /** Rebuilds the layer from {@linkcode DenseDropConnect.getConfig}'s output. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(fromSaved(config));
  }
}

/** A config as saved, with `null` for what was left out. */
function fromSaved(config: tf.serialization.ConfigDict): never {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) if (v !== null) out[k] = v;
  return out as never;
}

/**
 * A 2-D convolution with DropConnect on its kernel. One mask per batch by
 * default (a mask per example needs a convolution per example); in training
 * the batch computes `conv(x, K * M / (1 - rate)) + b`, at inference
 * `conv(x, K) + b`.
 */
export class Conv2DDropConnect extends tf.layers.Layer {
  /** The class name under which it is serialized. */
  static className = "Conv2DDropConnect";
  /** Tells `fit` to give the layer a fresh mask seed every step. */
  readonly reseedPerStep = true;
  /** Output channels. */
  readonly filters: number;
  /** Kernel height and width. */
  readonly kernelSize: [number, number];
  /** Stride. */
  readonly strides: [number, number];
  /** Padding. */
  readonly padding: "valid" | "same";
  /** Probability that a weight is dropped. */
  readonly rate: number;
  /** A mask per example or per batch. */
  readonly masks: MaskScope;
  /** Seed of the next masks. */
  seed?: number;
  readonly #activation: DropConnectActivation;
  readonly #useBias: boolean;
  readonly #init: DropConnectInitializer;
  readonly #initSeed?: number;
  #kernel?: tf.LayerVariable;
  #bias?: tf.LayerVariable;

  /**
   * Creates the layer.
   * @param args Filters, kernel size, strides, padding, rate, masks, seed, activation.
   * @throws {RangeError} for arguments out of range.
   */
  constructor(args: Conv2DDropConnectArgs) {
    checkCommon(args, "Conv2DDropConnect");
    if (!Number.isInteger(args.filters) || args.filters < 1) {
      throw new RangeError(
        `Conv2DDropConnect filters ${args.filters} is invalid: give a positive integer`,
      );
    }
    super({
      name: args.name,
      inputShape: args.inputShape,
      batchInputShape: args.batchInputShape,
      trainable: args.trainable,
    });
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 3);
    this.strides = pair(args.strides, 1);
    this.padding = args.padding ?? "valid";
    this.rate = args.rate;
    this.masks = args.masks ?? "batch";
    this.seed = args.seed;
    this.#activation = args.activation ?? "linear";
    this.#useBias = args.useBias ?? true;
    this.#init = args.kernelInitializer ?? "glorotUniform";
    this.#initSeed = args.initSeed;
  }

  /** Creates the kernel `[kh, kw, c, filters]` and the bias. */
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4 || shape[3] === null) {
      throw new RangeError(
        `Conv2DDropConnect takes [batch, height, width, channels] inputs, got [${shape}]`,
      );
    }
    this.#kernel = this.addWeight(
      "kernel",
      [...this.kernelSize, shape[3] as number, this.filters],
      "float32",
      INITIALIZERS[this.#init](this.#initSeed),
    );
    if (this.#useBias) {
      this.#bias = this.addWeight("bias", [this.filters], "float32", tf.initializers.zeros());
    }
    this.built = true;
  }

  /** `[batch, h', w', filters]`. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const out = (size: number | null, k: number, st: number) =>
      size === null
        ? null
        : this.padding === "same"
        ? Math.ceil(size / st)
        : Math.floor((size - k) / st) + 1;
    return [
      s[0],
      out(s[1], this.kernelSize[0], this.strides[0]),
      out(s[2], this.kernelSize[1], this.strides[1]),
      this.filters,
    ];
  }

  /** Masked kernel in training, the mean kernel otherwise. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const k = this.#kernel!.read() as tf.Tensor4D;
      const conv = (xs: tf.Tensor4D, kernel: tf.Tensor4D) =>
        tf.conv2d(xs, kernel, this.strides, this.padding);
      let y: tf.Tensor;
      if (kwargs["training"] === true && this.rate > 0) {
        if (this.masks === "batch") {
          y = conv(x, scaledMask(k.shape, this.rate, this.seed).mul(k) as tf.Tensor4D);
        } else {
          // One convolution per example, each with its own mask.
          const n = x.shape[0];
          const m = scaledMask([n, ...k.shape], this.rate, this.seed);
          y = tf.concat(
            Array.from({ length: n }, (_, i) =>
              conv(
                x.slice([i, 0, 0, 0], [1, -1, -1, -1]),
                m.slice([i, 0, 0, 0, 0], [1, -1, -1, -1, -1]).squeeze([0]).mul(k) as tf.Tensor4D,
              )),
          );
        }
      } else {
        y = conv(x, k);
      }
      if (this.#bias) y = y.add(this.#bias.read());
      return ACTIVATIONS[this.#activation](y);
    });
  }

  /** The layer's configuration, for saving. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      rate: this.rate,
      masks: this.masks,
      seed: this.seed ?? null,
      activation: this.#activation,
      useBias: this.#useBias,
      kernelInitializer: this.#init,
      initSeed: this.#initSeed ?? null,
    };
  }

  /** Rebuilds the layer from {@linkcode Conv2DDropConnect.getConfig}'s output. */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(fromSaved(config));
  }
}

tf.serialization.registerClass(DenseDropConnect);
tf.serialization.registerClass(Conv2DDropConnect);

/**
 * A {@linkcode DenseDropConnect} layer (the factory form, like `tf.layers.dense`).
 * @param args Units, rate, masks, seed, activation.
 * @returns The layer.
 */
export function denseDropConnect(args: DenseDropConnectArgs): DenseDropConnect {
  return new DenseDropConnect(args);
}

/**
 * A {@linkcode Conv2DDropConnect} layer (the factory form, like `tf.layers.conv2d`).
 * @param args Filters, kernel size, strides, padding, rate, masks, seed, activation.
 * @returns The layer.
 */
export function conv2dDropConnect(args: Conv2DDropConnectArgs): Conv2DDropConnect {
  return new Conv2DDropConnect(args);
}
