/**
 * The arithmetic cost of each layer of a model: multiply-adds (the convs' and
 * dense layers' weighted sums, the figure published tables give: VGG16 15.35 G
 * at 224) and FLOPs (a multiply-add is 2 FLOPs; bias adds, batch norm,
 * activations, merges and pools add their per-element work). Every layer type
 * is either counted by a stated rule or flagged "not counted": never a silent
 * zero, the most common complaint about fvcore, ptflops and thop.
 *
 * @example A 3x3 conv from 8 to 16 channels on a 10x10 image
 * ```ts
 * import { tf } from "../../core/tf.ts";
 * import { Net } from "../../core/net.ts";
 * import { modelCosts } from "./costs.ts";
 * const model = tf.sequential({ layers: [tf.layers.conv2d({
 *   inputShape: [10, 10, 8], filters: 16, kernelSize: 3, padding: "same", useBias: false })] });
 * const costs = modelCosts(Net.fromModel(model));
 * if (costs.multiplyAdds !== 10 * 10 * 16 * 9 * 8) throw new Error(`${costs.multiplyAdds}`);
 * if (costs.flops !== 2 * costs.multiplyAdds) throw new Error(`${costs.flops}`);
 * model.dispose();
 * ```
 *
 * @module
 */
import type { LayerInfo, Net } from "../../core/net.ts";

/** The cost of one layer for one image. */
export interface LayerCost {
  /** Multiply-adds of its weighted sums (0 for layers without weights). */
  multiplyAdds: number;
  /** Floating-point operations: 2 per multiply-add plus per-element work. */
  flops: number;
  /** False where no rule knows the layer's type: its cost is missing from the totals. */
  counted: boolean;
  /** How it was counted, e.g. `2 FLOPs per element` or `not counted: Lambda`. */
  rule: string;
}

/** Totals of a model. */
export interface ModelCosts {
  /** Every weight, trainable or not (batch norm's moving statistics included, as Keras counts). */
  params: number;
  /** Multiply-adds of one forward pass of one image. */
  multiplyAdds: number;
  /** FLOPs of one forward pass of one image. */
  flops: number;
  /** Each layer's cost, by name. */
  perLayer: Map<string, LayerCost>;
  /** `name (type)` of each layer whose cost no rule knows. */
  notCounted: string[];
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Types whose forward pass does no arithmetic (moves, copies, reshapes, training-only noise). */
const FREE = new Set([
  "InputLayer",
  "Placeholder",
  "Flatten",
  "Reshape",
  "Permute",
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "AlphaDropout",
  "GaussianDropout",
  "GaussianNoise",
  "ZeroPadding2D",
  "Cropping2D",
  "Concatenate",
  "ConcatV2",
  "RepeatVector",
  "Identity",
  "Pad",
  "PadV2",
  "Squeeze",
  "ExpandDims",
  "Transpose",
]);

/** Types that are one operation per output element. */
const ONE_PER_ELEMENT = new Set([
  "Activation",
  "ReLU",
  "LeakyReLU",
  "PReLU",
  "ELU",
  "ThresholdedReLU",
  "Relu",
  "Relu6",
  "LeakyRelu",
  "Elu",
  "Selu",
  "Sigmoid",
  "Tanh",
  "Softplus",
  "BiasAdd",
  "Mul",
  "Sub",
  "RealDiv",
  "Maximum",
  "Minimum",
  "Rescaling",
]);

/** Elementwise merges of k inputs: k - 1 operations per element. */
const MERGES = new Set(["Add", "AddV2", "AddN", "Subtract", "Multiply", "Maximum", "Minimum"]);

/** Nested models: their layers are listed (and counted) one by one. */
const CONTAINERS = new Set(["Functional", "Sequential", "Model"]);

/** Weighted layers: kernel weights from (kernel, channels), the rest of the parameters are biases. */
function weighted(
  layer: LayerInfo,
  inputShape: readonly number[],
): { macs: number; kernelWeights: number } | undefined {
  const out = layer.outputShape;
  const cin = inputShape.at(-1) ?? 0;
  const [kh, kw] = layer.kernel ?? [1, 1];
  const spatial = out.length === 3 ? out[0] * out[1] : NaN;
  switch (layer.type) {
    case "Conv2D":
    case "_FusedConv2D":
      return { macs: spatial * out[2] * kh * kw * cin, kernelWeights: kh * kw * cin * out[2] };
    case "Conv2DTranspose": {
      const inSpatial = (inputShape[0] ?? NaN) * (inputShape[1] ?? NaN);
      return { macs: inSpatial * cin * kh * kw * out[2], kernelWeights: kh * kw * cin * out[2] };
    }
    case "DepthwiseConv2D":
    case "DepthwiseConv2dNative":
    case "FusedDepthwiseConv2dNative":
      return { macs: spatial * out[2] * kh * kw, kernelWeights: kh * kw * out[2] };
    case "SeparableConv2D": {
      // The depth multiplier is not in LayerInfo; the parameter count fixes it:
      // kh*kw*cin*m (depthwise) + cin*m*cout (pointwise) [+ cout biases].
      const per = cin * (kh * kw + out[2]);
      const m = Math.max(1, Math.floor(layer.params / per));
      return {
        macs: spatial * cin * m * (kh * kw + out[2]),
        kernelWeights: per * m,
      };
    }
    case "Dense":
    case "MatMul":
    case "_FusedMatMul": {
      const units = out.at(-1) ?? 0;
      return { macs: prod(out.slice(0, -1)) * cin * units, kernelWeights: cin * units };
    }
  }
  return undefined;
}

/**
 * The cost of one layer for one image.
 *
 * @param layer The layer.
 * @param inputShapes The shapes (without batch) of the tensors it reads, one per input.
 * @returns Its multiply-adds, FLOPs, and whether (and how) it was counted.
 */
export function layerCost(
  layer: LayerInfo,
  inputShapes: readonly (readonly number[])[],
): LayerCost {
  const type = layer.type;
  const elements = prod(layer.outputShape);
  const inShape = inputShapes[0] ?? [];
  const w = weighted(layer, inShape);
  if (w) {
    if (!Number.isFinite(w.macs)) {
      return { multiplyAdds: 0, flops: 0, counted: false, rule: `not counted: ${type} shape` };
    }
    const bias = layer.params > w.kernelWeights ? elements : 0;
    const act = layer.activation ? elements : 0;
    const extra = [bias ? "bias" : "", act ? layer.activation : ""].filter(Boolean).join(", ");
    return {
      multiplyAdds: w.macs,
      flops: 2 * w.macs + bias + act,
      counted: true,
      rule: `2 FLOPs per multiply-add${extra ? ` + 1 per element (${extra})` : ""}`,
    };
  }
  const per = (n: number, what: string): LayerCost => ({
    multiplyAdds: 0,
    flops: n * elements,
    counted: true,
    rule: `${n} FLOP${n === 1 ? "" : "s"} per element (${what})`,
  });
  if (FREE.has(type)) return { multiplyAdds: 0, flops: 0, counted: true, rule: "no arithmetic" };
  if (CONTAINERS.has(type)) {
    return { multiplyAdds: 0, flops: 0, counted: true, rule: "nested model: its layers count" };
  }
  if (type === "BatchNormalization" || /^FusedBatchNorm/.test(type)) {
    return per(2, "scale and shift, inference form");
  }
  if (type === "LayerNormalization") return per(7, "mean, variance, normalize, scale, shift");
  if (type === "Softmax" || (type === "Activation" && layer.activation === "softmax")) {
    return per(3, "exp, sum, divide");
  }
  if (MERGES.has(type) && inputShapes.length > 1) {
    return per(inputShapes.length - 1, `${inputShapes.length}-input merge`);
  }
  if (type === "Average") return per(inputShapes.length, `${inputShapes.length}-input mean`);
  if (ONE_PER_ELEMENT.has(type)) return per(1, type);
  if (layer.role === "pool" && layer.kernel) {
    const [kh, kw] = layer.kernel;
    return per(kh * kw, `${kh}x${kw} window`);
  }
  if (layer.role === "global" && inShape.length === 3) {
    const n = prod(inShape);
    return { multiplyAdds: 0, flops: n, counted: true, rule: "1 FLOP per input element" };
  }
  return { multiplyAdds: 0, flops: 0, counted: false, rule: `not counted: ${type}` };
}

/**
 * Parameters, multiply-adds and FLOPs of a whole model, layer by layer, through
 * branches and nested models.
 *
 * @param net The model.
 * @returns The totals, each layer's cost, and the layers no rule counts.
 */
export function modelCosts(net: Net): ModelCosts {
  const byName = new Map(net.layers.map((l) => [l.name, l]));
  const perLayer = new Map<string, LayerCost>();
  const notCounted: string[] = [];
  let params = 0, multiplyAdds = 0, flops = 0;
  for (const l of net.layers) {
    params += l.params;
    const shapes = l.inputs.map((n) => byName.get(n)?.outputShape ?? []);
    const cost = layerCost(l, shapes);
    perLayer.set(l.name, cost);
    multiplyAdds += cost.multiplyAdds;
    flops += cost.flops;
    if (!cost.counted) notCounted.push(`${l.name} (${l.type})`);
  }
  return { params, multiplyAdds, flops, perLayer, notCounted };
}
