/**
 * Layers run with their weights held constant: how a Net's forward pass
 * explains a model rather than trains it. Two things follow from constant
 * weights, and both are exact (up to float rounding):
 *
 * - **Batch norm folded into the layer before it.** At inference a batch
 *   normalization is a per-channel affine map, `y = f (z - mean) + beta` with
 *   `f = gamma / sqrt(var + eps)`; after a convolution, depthwise convolution
 *   or dense layer with no activation of its own it folds into that layer's
 *   weights, `W' = W f` and `b' = (b - mean) f + beta`, so the pair runs as one
 *   kernel and the batch norm (and its gradient) costs nothing.
 * - **Input-only gradients.** tfjs's fused convolution computes the filter and
 *   bias gradients eagerly whenever a gradient passes through it, though an
 *   input gradient (saliency, Grad-CAM, DeepDream, attacks) throws them away.
 *   Here those layers are one op whose gradient is the input gradient alone.
 *   Their activation runs as its own op after them, so the ReLU rules of
 *   `gradients.ts` still reach it.
 *
 * Folded weights are computed once per model, when the first Net opens it,
 * and again whenever the layer's weights change (a new tensor behind any of
 * its variables: `setWeights`, training). They are freed with the model's own
 * weights (its `dispose`, or the Net's), so a Net made only to read a model's
 * layers leaves nothing behind once the model goes.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { LayerInfo } from "./net.ts";

/** A layer with weights that can run with them held constant. */
type WeightLayerKind = "conv" | "depthwise" | "dense";

interface Variables {
  kernel: tf.Tensor;
  bias?: tf.Tensor;
}

/** The folded weights of one layer (and the batch norm folded into it). */
interface Folded {
  /** The tensors the fold was computed from: a change in any makes it stale. */
  from: unknown[];
  kernel: tf.Tensor;
  bias: tf.Tensor;
}

/** One layer with weights and, where one folds into it, the batch norm after it. */
interface Plan {
  kind: WeightLayerKind;
  layer: tf.layers.Layer;
  /** The batch norm folded into it. */
  norm?: { name: string; layer: tf.layers.Layer };
  /** A ReLU (or ReLU6) layer that alone reads that batch norm (fused in, outside gradients). */
  relu?: { name: string; activation: "relu" | "relu6" };
  folded?: Folded;
}

// deno-lint-ignore no-explicit-any
type Any = any;

function kindOf(layer: tf.layers.Layer): WeightLayerKind | undefined {
  const l = layer as Any;
  const type = layer.getClassName();
  if (type === "Conv2D" && l.rank === 2 && l.dataFormat === "channelsLast") return "conv";
  if (type === "DepthwiseConv2D" && l.dataFormat === "channelsLast") return "depthwise";
  if (type === "Dense") return "dense";
  return undefined;
}

function variables(p: Plan): Variables {
  const l = p.layer as Any;
  const kernel = (p.kind === "depthwise" ? l.depthwiseKernel : l.kernel).read();
  return { kernel, bias: l.useBias && l.bias ? l.bias.read() : undefined };
}

function normVariables(layer: tf.layers.Layer): (tf.Tensor | undefined)[] {
  const n = layer as Any;
  return [
    n.gamma?.read(),
    n.beta?.read(),
    n.movingMean.read(),
    n.movingVariance.read(),
  ];
}

/**
 * A ReLU layer as a fused activation: an `Activation` of `relu`, `ReLU`
 * without a cap, or ReLU6 (`ReLU` capped at 6, MobileNet's).
 */
function reluKind(layer: tf.layers.Layer): "relu" | "relu6" | undefined {
  const l = layer as Any;
  const type = layer.getClassName();
  if (type === "ReLU") return l.maxValue == null ? "relu" : l.maxValue === 6 ? "relu6" : undefined;
  return type === "Activation" && l.activation?.getClassName?.().toLowerCase() === "relu"
    ? "relu"
    : undefined;
}

function linear(layer: tf.layers.Layer): boolean {
  const a = (layer as Any).activation;
  return a == null || a.getClassName() === "linear" || a.getClassName() === "Linear";
}

/** A batch norm over the last axis of an activation of this many dimensions. */
function lastAxisNorm(info: LayerInfo, layer: tf.layers.Layer): boolean {
  if (layer.getClassName() !== "BatchNormalization") return false;
  const rank = info.outputShape.length + 1;
  const axis = (layer as Any).axis;
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis;
  return (a < 0 ? a + rank : a) === rank - 1;
}

/**
 * The layers of a Net that run with constant weights, each with the batch
 * norm that folds into it; built when the Net opens the model.
 */
export class ConstantWeights {
  readonly #plans = new Map<string, Plan>();
  /** Batch norm name -> the layer it is folded into. */
  readonly #normOf = new Map<string, string>();
  /** ReLU name -> the folded batch norm it follows. */
  readonly #reluOf = new Map<string, string>();

  /**
   * @param layers The Net's layers, in execution order.
   * @param layerOf The layer object of a listed name.
   */
  constructor(
    layers: readonly LayerInfo[],
    layerOf: (name: string) => tf.layers.Layer | undefined,
  ) {
    const consumers = new Map<string, string[]>();
    for (const l of layers) {
      for (const i of l.inputs) consumers.set(i, [...(consumers.get(i) ?? []), l.name]);
    }
    const byName = new Map(layers.map((l) => [l.name, l]));
    for (const info of layers) {
      const layer = layerOf(info.name);
      if (!layer) continue;
      const kind = kindOf(layer);
      if (!kind) continue;
      const plan: Plan = { kind, layer };
      const next = consumers.get(info.name) ?? [];
      const normLayer = next.length === 1 ? layerOf(next[0]) : undefined;
      if (
        normLayer && linear(layer) && lastAxisNorm(byName.get(next[0])!, normLayer) &&
        (kind !== "dense" || info.outputShape.length === 1)
      ) {
        plan.norm = { name: next[0], layer: normLayer };
        this.#normOf.set(next[0], info.name);
        const after = consumers.get(next[0]) ?? [];
        const relu = after.length === 1 ? layerOf(after[0]) : undefined;
        const activation = relu ? reluKind(relu) : undefined;
        if (activation) {
          plan.relu = { name: after[0], activation };
          this.#reluOf.set(after[0], next[0]);
        }
      }
      this.#plans.set(info.name, plan);
    }
    for (const plan of this.#plans.values()) if (plan.norm) this.#refold(plan);
  }

  /**
   * The batch norm folded into `name`, if one is.
   * @param name A layer's name.
   * @returns The batch norm's name.
   */
  normAfter(name: string): string | undefined {
    return this.#plans.get(name)?.norm?.name;
  }

  /**
   * The ReLU (or ReLU6) that alone reads the batch norm folded into `name`.
   * @param name A layer's name.
   * @returns The ReLU layer's name.
   */
  reluAfter(name: string): string | undefined {
    return this.#plans.get(name)?.relu?.name;
  }

  /**
   * Whether `name` is a ReLU (or ReLU6) after a folded batch norm.
   * @param name A layer's name.
   * @returns The batch norm it follows.
   */
  reluAfterNorm(name: string): string | undefined {
    return this.#reluOf.get(name);
  }

  /**
   * Whether `name` is a batch norm folded into the layer before it.
   * @param name A layer's name.
   * @returns The layer it is folded into.
   */
  foldedInto(name: string): string | undefined {
    return this.#normOf.get(name);
  }

  /**
   * Whether `name` can run here with constant weights.
   * @param name A layer's name.
   * @returns True for convolutions, depthwise convolutions and dense layers.
   */
  has(name: string): boolean {
    return this.#plans.has(name);
  }

  /**
   * Runs layer `name` with its weights as constants.
   *
   * @param name The layer (one {@linkcode has} accepts).
   * @param x Its input.
   * @param fold Fold the batch norm after it in (the caller then skips that batch norm).
   * @param inputGradientOnly A gradient is being taken: make it reach `x` only.
   * @returns Its output (the batch norm's, when folded), or `undefined` where
   *   this input is one the layer's own call must handle.
   */
  run(
    name: string,
    x: tf.Tensor,
    fold: boolean,
    inputGradientOnly: boolean,
    relu = false,
  ): tf.Tensor | undefined {
    const plan = this.#plans.get(name)!;
    const l = plan.layer as Any;
    if (plan.kind === "dense" ? x.rank !== 2 : x.rank !== 4) return undefined;
    const dilated = plan.kind !== "dense" && (l.dilationRate as number[]).some((d) => d !== 1);
    // TF.js has no gradient through dilated convolutions: the layer's own call
    // fails with the message gradients.ts turns into advice.
    if (inputGradientOnly && dilated) return undefined;
    let kernel: tf.Tensor, bias: tf.Tensor | undefined;
    if (fold && plan.norm) {
      const f = this.#current(plan);
      kernel = f.kernel;
      bias = f.bias;
    } else {
      ({ kernel, bias } = variables(plan));
    }
    const forward = (v: tf.Tensor): tf.Tensor => {
      if (inputGradientOnly) {
        // Inside the op's own gradient: the kernels directly, since tfjs's
        // fused ops wrap themselves in a custom gradient of their own while a
        // gradient is taken (0.1 ms a layer, a third of a small net's saliency).
        return plan.kind === "dense"
          ? tf.tidy(() => {
            const y = tf.engine().runKernel("_FusedMatMul", {
              a: tf.reshape(v, [1, ...v.shape]),
              b: tf.reshape(kernel, [1, ...kernel.shape]),
              ...(bias ? { bias } : {}),
            }, { transposeA: false, transposeB: false, activation: "linear" }) as tf.Tensor;
            return tf.reshape(y, [v.shape[0], kernel.shape[1] as number]);
          })
          : tf.engine().runKernel(
            plan.kind === "conv" ? "FusedConv2D" : "FusedDepthwiseConv2D",
            { x: v, filter: kernel, ...(bias ? { bias } : {}) },
            {
              strides: l.strides,
              pad: l.padding,
              dataFormat: "NHWC",
              dilations: l.dilationRate,
              activation: "linear",
            } as unknown as tf.NamedAttrMap,
          ) as tf.Tensor;
      }
      // The ReLU after the folded batch norm, fused in (outside gradients only:
      // inside one, the ReLU rules of gradients.ts must reach it as its own op).
      const activation: "relu" | "relu6" | "linear" = relu && !inputGradientOnly && plan.relu
        ? plan.relu.activation
        : "linear";
      if (plan.kind === "dense") {
        return tf.fused.matMul({ a: v as tf.Tensor2D, b: kernel as tf.Tensor2D, bias, activation });
      }
      const geometry = {
        activation,
        x: v as tf.Tensor4D,
        filter: kernel as tf.Tensor4D,
        strides: l.strides as [number, number],
        pad: l.padding as "same" | "valid",
        dilations: l.dilationRate as [number, number],
        bias,
      };
      return plan.kind === "conv" ? tf.fused.conv2d(geometry) : tf.fused.depthwiseConv2d(geometry);
    };
    const inputGradient = (dy: tf.Tensor): tf.Tensor => {
      if (plan.kind === "dense") return tf.matMul(dy, kernel, false, true);
      return tf.engine().runKernel(
        plan.kind === "conv" ? "Conv2DBackpropInput" : "DepthwiseConv2dNativeBackpropInput",
        { dy, filter: kernel },
        {
          strides: l.strides,
          pad: l.padding,
          dataFormat: "NHWC",
          dilations: l.dilationRate,
          inputShape: x.shape,
        } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor;
    };
    // Named as tfjs names its ops' scopes (`name__op`), so that profiles list
    // the kernels inside rather than this wrapper as a kernel of its own.
    const z = inputGradientOnly
      ? tf.tidy(
        "constantWeights__op",
        () =>
          tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
            value: forward(args[0] as tf.Tensor),
            // tfjs keeps every gradient of a backward pass until the pass
            // ends; this one is read here only, so it goes now (the peak
            // memory of a ResNet-50 input gradient at batch 16: -40%).
            gradFunc: (dy: tf.Tensor) => {
              const dx = inputGradient(dy);
              dy.dispose();
              return dx;
            },
          }))(x),
      )
      : forward(x);
    if (linear(plan.layer)) return z;
    const y = l.activation.apply(z) as tf.Tensor;
    z.dispose();
    return y;
  }

  /**
   * A residual sum (a Keras `Add` of same-shaped tensors) whose gradient
   * saves nothing: tfjs's `add` keeps both inputs until the backward pass ends
   * only to read their shapes (a ResNet's every block input and branch
   * output), while the gradient of each input is dy itself.
   *
   * @param ins The same-shaped tensors to add.
   * @returns Their sum, or `undefined` where shapes differ (broadcasting: the
   *   layer's own call handles it).
   */
  add(ins: readonly tf.Tensor[]): tf.Tensor | undefined {
    const shape = ins[0].shape.join();
    if (ins.length < 2 || ins.some((t) => t.shape.join() !== shape || t.dtype !== "float32")) {
      return undefined;
    }
    return tf.tidy(
      "constantWeights__op",
      () =>
        tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
          const xs = args.slice(0, ins.length) as tf.Tensor[];
          return {
            value: xs.length === 2 ? tf.add(xs[0], xs[1]) : tf.addN(xs),
            gradFunc: (dy: tf.Tensor) => {
              // One tensor object per input (tfjs may dispose each on its own).
              const dxs = xs.map(() => dy.clone());
              dy.dispose();
              return dxs;
            },
          };
        })(...ins),
    );
  }

  /** Frees the folded weights. */
  dispose(): void {
    for (const plan of this.#plans.values()) {
      if (plan.folded) tf.dispose([plan.folded.kernel, plan.folded.bias]);
      plan.folded = undefined;
    }
  }

  #current(plan: Plan): Folded {
    const from = sources(plan);
    const stale = !plan.folded || plan.folded.from.some((d, i) => d !== from[i]);
    if (stale) this.#refold(plan);
    return plan.folded!;
  }

  #refold(plan: Plan): void {
    const { kernel, bias } = variables(plan);
    const norm = plan.norm!.layer as Any;
    const [gamma, beta, mean, variance] = normVariables(plan.norm!.layer);
    const [w, b] = tf.tidy(() => {
      const inv = tf.rsqrt(tf.add(variance!, norm.epsilon as number));
      const f = gamma ? tf.mul(gamma, inv) : inv;
      // A depthwise kernel [kh, kw, in, multiplier] gives channel in * m + k.
      const w = plan.kind === "depthwise"
        ? tf.mul(kernel, tf.reshape(f, kernel.shape.slice(2)))
        : tf.mul(kernel, f);
      const centred = bias ? tf.sub(bias, mean!) : tf.neg(mean!);
      const b = beta ? tf.add(tf.mul(centred, f), beta) : tf.mul(centred, f);
      return [w, b];
    });
    if (plan.folded) tf.dispose([plan.folded.kernel, plan.folded.bias]);
    // Kept: a refold happens inside the forward pass's tidy scopes and must outlive them.
    plan.folded = { from: sources(plan), kernel: tf.keep(w), bias: tf.keep(b) };
  }
}

/**
 * What a fold is computed from, by data: a variable keeps its object when
 * assigned a new value, but not its data id.
 */
function sources(plan: Plan): unknown[] {
  const { kernel, bias } = variables(plan);
  return [kernel, bias, ...normVariables(plan.norm!.layer)].map((t) => t?.dataId);
}

const byModel = new WeakMap<tf.LayersModel, ConstantWeights>();

/**
 * The constant-weight plan of a model, made on first asking and shared by
 * every Net on that model; freed when the model is disposed.
 *
 * @param model The model.
 * @param layers Its layers as a Net lists them.
 * @param layerOf The layer object of a listed name.
 * @returns The plan.
 */
export function constantWeightsOf(
  model: tf.LayersModel,
  layers: readonly LayerInfo[],
  layerOf: (name: string) => tf.layers.Layer | undefined,
): ConstantWeights {
  const known = byModel.get(model);
  if (known) return known;
  const plan = new ConstantWeights(layers, layerOf);
  byModel.set(model, plan);
  // The folds live exactly as long as the weights they were made from.
  const dispose = model.dispose.bind(model);
  model.dispose = () => {
    plan.dispose();
    byModel.delete(model);
    return dispose();
  };
  return plan;
}

let heldConstant = 0;

/**
 * Runs `fn` with the weights held constant: inside it, no gradient with
 * respect to a weight is ever read, so the backends may answer the kernels
 * that compute them (tfjs's fused convolutions compute their filter gradient
 * eagerly, GraphModels' included) without doing the work. convlens's input
 * and activation gradients run in this scope.
 *
 * @param fn A synchronous function that takes gradients with respect to inputs or activations only.
 * @returns What `fn` returns.
 */
export function holdingWeightsConstant<T>(fn: () => T): T {
  heldConstant++;
  try {
    return fn();
  } finally {
    heldConstant--;
  }
}

/**
 * Whether the weights are held constant now (see {@linkcode holdingWeightsConstant}).
 * @returns True inside `holdingWeightsConstant`.
 */
export function weightsHeldConstant(): boolean {
  return heldConstant > 0;
}
