/**
 * Exports a TensorFlow.js LayersModel as a real TensorFlow.js **GraphModel**
 * artifact (`model.json` with `"format": "graph-model"`, a TF `GraphDef` in JSON as
 * its `modelTopology`, a `signature`, and a weights manifest with `weights.bin`), the
 * same files `tensorflowjs_converter` writes for a Keras SavedModel. convlens uses
 * it to test its GraphModel code against the LayersModel it came from, and users
 * can use it to try the GraphModel path on their own Keras-style models.
 *
 * ```sh
 * deno run -A scripts/graph_export.ts models/mnist out/mnist_graph
 * deno run -A scripts/graph_export.ts models/mnist out/mnist_graph --fuse \
 *   --prefix StatefulPartitionedCall/sequential/
 * ```
 *
 * ## Node names
 *
 * Every node is named `<prefix><layer>/<op>`, as TensorFlow names the ops of a Keras
 * layer (the converter's own output reads `StatefulPartitionedCall/sequential/conv1/Relu`;
 * give that prefix with `--prefix` to get the same names). The **last op of a layer
 * gives the layer's output**, so a layer's activation is found by its name:
 *
 * | Keras layer | nodes (last one is the layer's output) |
 * | --- | --- |
 * | `InputLayer` | `<input layer name>` (`Placeholder`, no prefix) |
 * | `Conv2D` | `L/Conv2D`, `L/BiasAdd`, `L/Relu` (activation op: `Relu`, `Relu6`, `Elu`, `Selu`, `Sigmoid`, `Tanh`, `Softmax`, `Softplus`) |
 * | `DepthwiseConv2D` | `L/depthwise` (`DepthwiseConv2dNative`), `L/BiasAdd`, activation |
 * | `Dense` | `L/MatMul`, `L/BiasAdd`, activation |
 * | `MaxPooling2D`, `AveragePooling2D` | `L/MaxPool`, `L/AvgPool` |
 * | `GlobalAveragePooling2D`, `GlobalMaxPooling2D` | `L/Mean`, `L/Max` (axes const `L/Mean/reduction_indices`) |
 * | `Flatten`, `Reshape` | `L/Reshape` (shape const `L/Const`) |
 * | `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax` | `L/Relu`, `L/LeakyRelu`, ... (`L/Identity` for `linear`) |
 * | `BatchNormalization` | `L/FusedBatchNormV3` on 4-D inputs, else `L/batchnorm/mul_1` + `L/batchnorm/add_1` |
 * | `Dropout` (and other inference no-ops) | `L/Identity` |
 * | `Add`, `Subtract`, `Multiply`, `Maximum`, `Minimum`, `Average` | `L/add` (`AddV2`; `L/add_1`, ... for more inputs), `L/sub`, `L/mul`, `L/Maximum`, `L/Minimum`, `L/truediv` |
 * | `Concatenate` | `L/concat` (`ConcatV2`, axis const `L/concat/axis`) |
 *
 * The model output is an `Identity` node named `Identity`, as in converted SavedModels.
 * Weights are `Const` nodes named `L/Conv2D/ReadVariableOp`, `L/BiasAdd/ReadVariableOp`
 * and so on; their values live in `weights.bin` under the same names.
 *
 * With `--fuse` (option `fuse`) conv, depthwise and dense layers with a bias and a
 * `linear`, `relu`, `relu6` or `elu` activation become one `_FusedConv2D`,
 * `FusedDepthwiseConv2dNative` or `_FusedMatMul` node (`fused_ops` `BiasAdd` plus
 * the activation), named after the op it replaces (`L/Relu`, or `L/BiasAdd`), as the
 * converter's graph optimizer does.
 *
 * A `convlens.json` beside the LayersModel is copied with `logits` and `probs`
 * renamed from layer names to the nodes that give those layers' outputs.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../core/tf.ts";
import { writeFileAtomic } from "../core/files.ts";
import { initBackend } from "../backends/mod.ts";
import { loadNet } from "../core/load.ts";
import type { InputContract, Sidecar } from "../core/net.ts";

export type { InputContract, Sidecar };

/** Options of {@linkcode exportGraphModel} and {@linkcode graphArtifacts}. */
export interface GraphExportOptions {
  /** Prefix of every node name but the input and output, e.g. `StatefulPartitionedCall/sequential/`. @default "" */
  prefix?: string;
  /** Fuse conv/depthwise/dense + bias + activation into one node, as the TF converter does. @default false */
  fuse?: boolean;
  /** A `convlens.json` to write beside the model, with `logits`/`probs` renamed to node names. */
  sidecar?: Sidecar;
}

/** A GraphModel in memory: what {@linkcode exportGraphModel} writes. */
export interface GraphArtifacts {
  /** The `model.json` object (`format: "graph-model"`). */
  modelJson: {
    format: "graph-model";
    generatedBy: string;
    convertedBy: string;
    modelTopology: {
      node: NodeDef[];
      library: Record<string, never>;
      versions: { producer: number };
    };
    signature: {
      inputs: Record<string, TensorInfo>;
      outputs: Record<string, TensorInfo>;
    };
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  /** The bytes of `weights.bin`, in manifest order. */
  weightData: Uint8Array;
  /** For every Keras layer, the node whose output is the layer's output. */
  layerNodes: Record<string, string>;
  /** For every output layer, the graph's output node (`Identity`, `Identity_1`, ...). */
  outputNodes: Record<string, string>;
}

/** One node of the GraphDef, in the JSON encoding `tensorflowjs_converter` writes. */
export interface NodeDef {
  /** Node name. */
  name: string;
  /** TensorFlow op name. */
  op: string;
  /** Input node names (`name` or `name:k`). */
  input?: string[];
  /** Attributes (`{type}`, `{list: {i}}`, `{s}` base64, `{f}`, `{b}`, `{shape}`, `{tensor}`). */
  attr?: Record<string, unknown>;
}

/** A signature entry. */
export interface TensorInfo {
  /** Tensor name, `node:0`. */
  name: string;
  /** `DT_FLOAT`. */
  dtype: string;
  /** Shape with `-1` for the batch dimension. */
  tensorShape: { dim: { size: string }[] };
}

const FLOAT = { type: "DT_FLOAT" };
const INT = { type: "DT_INT32" };
const str = (s: string) => ({ s: btoa(s) });
const ints = (v: readonly number[]) => ({ list: { i: v.map(String) } });
const dims = (shape: readonly number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });
const NHWC = str("NHWC");

/** Keras activation -> TF op. `linear` has none. */
const ACTIVATION_OPS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  selu: "Selu",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  softmax: "Softmax",
  softplus: "Softplus",
};

/** Activations the converter folds into a fused conv/matmul. */
const FUSABLE = new Set(["linear", "relu", "relu6", "elu"]);

const SUPPORTED = [
  "InputLayer",
  "Conv2D",
  "DepthwiseConv2D",
  "Dense",
  "MaxPooling2D",
  "AveragePooling2D",
  "GlobalAveragePooling2D",
  "GlobalMaxPooling2D",
  "Flatten",
  "Reshape",
  "Activation",
  "ReLU",
  "LeakyReLU",
  "ELU",
  "Softmax",
  "BatchNormalization",
  "Dropout",
  "SpatialDropout1D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "Add",
  "Subtract",
  "Multiply",
  "Maximum",
  "Minimum",
  "Average",
  "Concatenate",
];

interface Weight {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  data: Float32Array | Int32Array;
}

class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly weights: Weight[] = [];
  readonly #names = new Set<string>();

  #claim(name: string): string {
    if (this.#names.has(name)) {
      throw new Error(
        `Two graph nodes would be named "${name}": give the model's layers unique names`,
      );
    }
    this.#names.add(name);
    return name;
  }

  constant(name: string, data: Float32Array | Int32Array, shape: number[]): string {
    const dtype = data instanceof Int32Array ? "int32" : "float32";
    const tfType = dtype === "int32" ? INT : FLOAT;
    this.nodes.push({
      name: this.#claim(name),
      op: "Const",
      attr: {
        value: { tensor: { dtype: tfType.type, tensorShape: shape.length ? dims(shape) : {} } },
        dtype: tfType,
      },
    });
    this.weights.push({ name, shape, dtype, data });
    return name;
  }

  op(name: string, op: string, input: string[], attr: Record<string, unknown> = {}): string {
    this.nodes.push({ name: this.#claim(name), op, input, attr });
    return name;
  }
}

function pair(v: unknown): [number, number] {
  if (Array.isArray(v)) return [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])];
  return [Number(v), Number(v)];
}

function unsupported(layer: tf.layers.Layer, why: string): Error {
  return new Error(
    `Layer "${layer.name}" (${layer.getClassName()}) cannot be exported to a GraphModel: ${why}`,
  );
}

/** A weight's values, read asynchronously (WebGPU cannot read GPU data synchronously). */
async function floats(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.data() as Float32Array);
}

/**
 * Builds the GraphModel artifacts of a LayersModel in memory (no files).
 *
 * @param model A single-input, single-output LayersModel (Sequential or functional)
 *   of the layers listed in this module's documentation, channels last.
 * @param options Node-name prefix and op fusion.
 * @returns `model.json`, the weight bytes and the layer -> node map.
 * @throws {Error} naming the layer when a layer cannot be expressed in the graph.
 */
export async function graphArtifacts(
  model: tf.LayersModel,
  options: GraphExportOptions = {},
): Promise<GraphArtifacts> {
  const fuse = options.fuse ?? false;
  if (model.inputs.length !== 1) {
    throw new Error(
      `This model has ${model.inputs.length} inputs; only single-input models can be exported`,
    );
  }
  const g = new GraphBuilder();
  const inputShape = model.inputs[0].shape.map((v) => v ?? -1);
  // Named as the converter names it: after the input layer (`<first layer>_input` in a Sequential).
  const inputName = model.inputLayers[0]?.name ?? model.inputs[0].name;
  g.op(inputName, "Placeholder", [], { dtype: FLOAT, shape: { shape: dims(inputShape) } });
  const tensorNode = new Map<number, string>([[model.inputs[0].id, inputName]]);
  const layerNodes: Record<string, string> = { [inputName]: inputName };

  const activation = (base: string, x: string, act: string, layer: tf.layers.Layer) => {
    if (act === "linear") return x;
    const op = ACTIVATION_OPS[act];
    if (!op) throw unsupported(layer, `activation "${act}" has no TensorFlow op here`);
    return g.op(`${base}/${op}`, op, [x], op === "Softmax" ? { T: FLOAT } : { T: FLOAT });
  };

  // A nested model is inlined: its layers become nodes under `<prefix><name>/`,
  // as a converter flattens it, and take the names Net gives them (`base/conv2`).
  const emit = async (container: tf.LayersModel, prefix: string, path: string) => {
    for (const layer of container.layers) {
      const type = layer.getClassName();
      if (type === "InputLayer") continue;
      if (layer instanceof tf.LayersModel) {
        const node = layer.inboundNodes.find((n) =>
          n.inputTensors.every((t) => tensorNode.has(t.id))
        );
        if (!node) throw unsupported(layer, "it is not reachable from the model's input");
        if (layer.inboundNodes.length > 1 || layer.outputs.length !== 1) {
          throw unsupported(layer, "a nested model must be called once and have one output");
        }
        layer.inputs.forEach((t, i) =>
          tensorNode.set(t.id, tensorNode.get(node.inputTensors[i].id)!)
        );
        await emit(layer, `${prefix}${layer.name}/`, `${path}${layer.name}/`);
        const out = tensorNode.get(layer.outputs[0].id)!;
        for (const t of node.outputTensors) tensorNode.set(t.id, out);
        layerNodes[`${path}${layer.name}`] = out;
        continue;
      }
      if (!SUPPORTED.includes(type)) {
        throw unsupported(layer, `supported layers are ${SUPPORTED.join(", ")}`);
      }
      const node = layer.inboundNodes.find((n) =>
        n.inputTensors.every((t) => tensorNode.has(t.id))
      );
      if (!node) throw unsupported(layer, "it is not reachable from the model's input");
      if (layer.inboundNodes.length > 1) {
        throw unsupported(layer, "shared layers (called more than once) are not supported");
      }
      const ins = node.inputTensors.map((t) => tensorNode.get(t.id)!);
      const inRank = node.inputTensors[0].shape.length;
      const outShape = node.outputTensors[0].shape;
      // deno-lint-ignore no-explicit-any
      const cfg = layer.getConfig() as any;
      if (cfg.dataFormat && cfg.dataFormat !== "channelsLast") {
        throw unsupported(layer, "only channelsLast data is supported");
      }
      const base = `${prefix}${layer.name}`;
      const w = layer.getWeights();
      const data = await Promise.all(w.map(floats));
      const x = ins[0];
      let out: string;
      switch (type) {
        case "Conv2D":
        case "DepthwiseConv2D": {
          const depthwise = type === "DepthwiseConv2D";
          const [sh, sw] = pair(cfg.strides ?? 1);
          const [dh, dw] = pair(cfg.dilationRate ?? 1);
          if (depthwise && (dh !== 1 || dw !== 1)) {
            // tfjs-layers 4.22 DepthwiseConv2D.call passes no dilation to the op, so the
            // LayersModel and a faithful graph would compute different things.
            throw unsupported(
              layer,
              `dilationRate [${dh}, ${dw}]: TF.js's DepthwiseConv2D layer ignores dilationRate, ` +
                "so no graph can match this LayersModel; rebuild it with dilationRate 1",
            );
          }
          const pad = String(cfg.padding ?? "valid");
          if (pad !== "same" && pad !== "valid") throw unsupported(layer, `padding "${pad}"`);
          const act = String(cfg.activation ?? "linear");
          const convName = depthwise ? `${base}/depthwise` : `${base}/Conv2D`;
          const kernel = g.constant(`${convName}/ReadVariableOp`, data[0], w[0].shape);
          const attr: Record<string, unknown> = {
            T: FLOAT,
            strides: ints([1, sh, sw, 1]),
            padding: str(pad.toUpperCase()),
            data_format: NHWC,
            dilations: ints([1, dh, dw, 1]),
            explicit_paddings: { list: {} },
          };
          if (!depthwise) attr.use_cudnn_on_gpu = { b: true };
          const useBias = cfg.useBias !== false && w.length > 1;
          if (fuse && useBias && FUSABLE.has(act)) {
            const bias = g.constant(`${base}/BiasAdd/ReadVariableOp`, data[1], w[1].shape);
            const ops = act === "linear" ? ["BiasAdd"] : ["BiasAdd", ACTIVATION_OPS[act]];
            out = g.op(
              `${base}/${ops[ops.length - 1]}`,
              depthwise ? "FusedDepthwiseConv2dNative" : "_FusedConv2D",
              [x, kernel, bias],
              {
                ...attr,
                fused_ops: { list: { s: ops.map(btoa) } },
                num_args: { i: "1" },
                epsilon: { f: 0 },
              },
            );
            break;
          }
          let y = g.op(convName, depthwise ? "DepthwiseConv2dNative" : "Conv2D", [x, kernel], attr);
          if (useBias) {
            const bias = g.constant(`${base}/BiasAdd/ReadVariableOp`, data[1], w[1].shape);
            y = g.op(`${base}/BiasAdd`, "BiasAdd", [y, bias], { T: FLOAT, data_format: NHWC });
          }
          out = activation(base, y, act, layer);
          break;
        }
        case "Dense": {
          if (inRank !== 2) {
            throw unsupported(
              layer,
              `it takes a rank-${inRank} input; only rank 2 (after Flatten) is supported`,
            );
          }
          const act = String(cfg.activation ?? "linear");
          const kernel = g.constant(`${base}/MatMul/ReadVariableOp`, data[0], w[0].shape);
          const attr = { T: FLOAT, transpose_a: { b: false }, transpose_b: { b: false } };
          const useBias = cfg.useBias !== false && w.length > 1;
          if (fuse && useBias && FUSABLE.has(act)) {
            const bias = g.constant(`${base}/BiasAdd/ReadVariableOp`, data[1], w[1].shape);
            const ops = act === "linear" ? ["BiasAdd"] : ["BiasAdd", ACTIVATION_OPS[act]];
            out = g.op(`${base}/${ops[ops.length - 1]}`, "_FusedMatMul", [x, kernel, bias], {
              ...attr,
              fused_ops: { list: { s: ops.map(btoa) } },
              num_args: { i: "1" },
              epsilon: { f: 0 },
            });
            break;
          }
          let y = g.op(`${base}/MatMul`, "MatMul", [x, kernel], attr);
          if (useBias) {
            const bias = g.constant(`${base}/BiasAdd/ReadVariableOp`, data[1], w[1].shape);
            y = g.op(`${base}/BiasAdd`, "BiasAdd", [y, bias], { T: FLOAT, data_format: NHWC });
          }
          out = activation(base, y, act, layer);
          break;
        }
        case "MaxPooling2D":
        case "AveragePooling2D": {
          const [kh, kw] = pair(cfg.poolSize);
          const [sh, sw] = pair(cfg.strides ?? cfg.poolSize);
          const pad = String(cfg.padding ?? "valid");
          const op = type === "MaxPooling2D" ? "MaxPool" : "AvgPool";
          const attr: Record<string, unknown> = {
            T: FLOAT,
            ksize: ints([1, kh, kw, 1]),
            strides: ints([1, sh, sw, 1]),
            padding: str(pad.toUpperCase()),
            data_format: NHWC,
          };
          if (op === "MaxPool") attr.explicit_paddings = { list: {} };
          out = g.op(`${base}/${op}`, op, [x], attr);
          break;
        }
        case "GlobalAveragePooling2D":
        case "GlobalMaxPooling2D": {
          const op = type === "GlobalAveragePooling2D" ? "Mean" : "Max";
          const axes = g.constant(`${base}/${op}/reduction_indices`, Int32Array.from([1, 2]), [2]);
          out = g.op(`${base}/${op}`, op, [x, axes], {
            T: FLOAT,
            Tidx: INT,
            keep_dims: { b: false },
          });
          break;
        }
        case "Flatten":
        case "Reshape": {
          const shape = [-1, ...outShape.slice(1).map((v) => v ?? -1)];
          const c = g.constant(`${base}/Const`, Int32Array.from(shape), [shape.length]);
          out = g.op(`${base}/Reshape`, "Reshape", [x, c], { T: FLOAT, Tshape: INT });
          break;
        }
        case "Activation":
          out = String(cfg.activation) === "linear"
            ? g.op(`${base}/Identity`, "Identity", [x], { T: FLOAT })
            : activation(base, x, String(cfg.activation), layer);
          break;
        case "ReLU": {
          if (cfg.maxValue == null) out = g.op(`${base}/Relu`, "Relu", [x], { T: FLOAT });
          else if (Number(cfg.maxValue) === 6) {
            out = g.op(`${base}/Relu6`, "Relu6", [x], { T: FLOAT });
          } else throw unsupported(layer, `maxValue ${cfg.maxValue} (only none or 6)`);
          break;
        }
        case "LeakyReLU":
          out = g.op(`${base}/LeakyRelu`, "LeakyRelu", [x], {
            T: FLOAT,
            alpha: { f: Number(cfg.alpha ?? 0.3) },
          });
          break;
        case "ELU":
          if (Number(cfg.alpha ?? 1) !== 1) throw unsupported(layer, `alpha ${cfg.alpha} (only 1)`);
          out = g.op(`${base}/Elu`, "Elu", [x], { T: FLOAT });
          break;
        case "Softmax": {
          const axis = Number(cfg.axis ?? -1);
          if (axis !== -1 && axis !== inRank - 1) {
            throw unsupported(layer, `axis ${axis} (only the last)`);
          }
          out = g.op(`${base}/Softmax`, "Softmax", [x], { T: FLOAT });
          break;
        }
        case "BatchNormalization": {
          const axis = Number(cfg.axis ?? -1);
          if (axis !== -1 && axis !== inRank - 1) {
            throw unsupported(layer, `axis ${axis} (only the channels axis, last)`);
          }
          const c = outShape[outShape.length - 1] as number;
          let k = 0;
          const gamma = cfg.scale !== false ? data[k++] : new Float32Array(c).fill(1);
          const beta = cfg.center !== false ? data[k++] : new Float32Array(c);
          const mean = data[k++];
          const variance = data[k++];
          const eps = Number(cfg.epsilon ?? 1e-3);
          if (inRank === 4) {
            const ins4 = [
              x,
              g.constant(`${base}/ReadVariableOp`, gamma, [c]),
              g.constant(`${base}/ReadVariableOp_1`, beta, [c]),
              g.constant(`${base}/FusedBatchNormV3/ReadVariableOp`, mean, [c]),
              g.constant(`${base}/FusedBatchNormV3/ReadVariableOp_1`, variance, [c]),
            ];
            out = g.op(`${base}/FusedBatchNormV3`, "FusedBatchNormV3", ins4, {
              T: FLOAT,
              U: FLOAT,
              epsilon: { f: eps },
              data_format: NHWC,
              is_training: { b: false },
              exponential_avg_factor: { f: 1 },
            });
          } else {
            // What TF's graph optimizer leaves of an inference batch norm: x * a + b.
            const a = gamma.map((gm, i) => gm / Math.sqrt(variance[i] + eps));
            const b = beta.map((bt, i) => bt - mean[i] * a[i]);
            const ca = g.constant(`${base}/batchnorm/mul`, a, [c]);
            const cb = g.constant(`${base}/batchnorm/sub`, b, [c]);
            const y = g.op(`${base}/batchnorm/mul_1`, "Mul", [x, ca], { T: FLOAT });
            out = g.op(`${base}/batchnorm/add_1`, "AddV2", [y, cb], { T: FLOAT });
          }
          break;
        }
        case "Dropout":
        case "SpatialDropout1D":
        case "GaussianNoise":
        case "GaussianDropout":
        case "AlphaDropout":
          out = g.op(`${base}/Identity`, "Identity", [x], { T: FLOAT });
          break;
        case "Add":
        case "Multiply":
        case "Average":
        case "Maximum":
        case "Minimum": {
          const [op, stem] = type === "Multiply"
            ? ["Mul", "mul"]
            : type === "Maximum"
            ? ["Maximum", "Maximum"]
            : type === "Minimum"
            ? ["Minimum", "Minimum"]
            : ["AddV2", "add"];
          let y = ins[0];
          for (let i = 1; i < ins.length; i++) {
            y = g.op(`${base}/${stem}${i > 1 ? `_${i - 1}` : ""}`, op, [y, ins[i]], { T: FLOAT });
          }
          if (type === "Average") {
            const inv = g.constant(`${base}/truediv/y`, Float32Array.from([1 / ins.length]), []);
            y = g.op(`${base}/truediv`, "Mul", [y, inv], { T: FLOAT });
          }
          out = y;
          break;
        }
        case "Subtract":
          out = g.op(`${base}/sub`, "Sub", [ins[0], ins[1]], { T: FLOAT });
          break;
        case "Concatenate": {
          const rank = outShape.length;
          let axis = Number(cfg.axis ?? -1);
          if (axis < 0) axis += rank;
          const a = g.constant(`${base}/concat/axis`, Int32Array.from([axis]), []);
          out = g.op(`${base}/concat`, "ConcatV2", [...ins, a], {
            T: FLOAT,
            N: { i: String(ins.length) },
            Tidx: INT,
          });
          break;
        }
        default:
          throw unsupported(layer, `supported layers are ${SUPPORTED.join(", ")}`);
      }
      for (const t of node.outputTensors) tensorNode.set(t.id, out);
      layerNodes[`${path}${layer.name}`] = out;
    }
  };
  await emit(model, options.prefix ?? "", "");

  // One Identity node per output, named as the converter names them.
  const outputNodes: Record<string, string> = {};
  const outputs: Record<string, TensorInfo> = {};
  model.outputs.forEach((o, i) => {
    const last = tensorNode.get(o.id);
    if (!last) throw new Error(`The model's output ${i} is not reachable from its input`);
    const name = i === 0 ? "Identity" : `Identity_${i}`;
    g.op(name, "Identity", [last], { T: FLOAT });
    const layer = model.outputLayers[i]?.name ?? o.sourceLayer.name;
    outputNodes[layer] = name;
    outputs[layer] = {
      name: `${name}:0`,
      dtype: "DT_FLOAT",
      tensorShape: dims(o.shape.map((v) => v ?? -1)),
    };
  });

  let size = 0;
  for (const w of g.weights) size += w.data.byteLength;
  const weightData = new Uint8Array(size);
  let off = 0;
  for (const w of g.weights) {
    weightData.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), off);
    off += w.data.byteLength;
  }
  return {
    modelJson: {
      format: "graph-model",
      generatedBy: `TensorFlow.js ${tf.version.tfjs} LayersModel`,
      convertedBy: "convlens scripts/graph_export.ts",
      modelTopology: { node: g.nodes, library: {}, versions: { producer: 1286 } },
      signature: {
        inputs: {
          [inputName]: { name: `${inputName}:0`, dtype: "DT_FLOAT", tensorShape: dims(inputShape) },
        },
        outputs,
      },
      weightsManifest: [{
        paths: ["weights.bin"],
        weights: g.weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
      }],
    },
    weightData,
    layerNodes,
    outputNodes,
  };
}

/**
 * A sidecar with `logits` and `probs` renamed from layer names to graph nodes,
 * and `output` from an output layer's name to its output node.
 *
 * @param sidecar The LayersModel's `convlens.json`.
 * @param layerNodes The layer -> node map of {@linkcode graphArtifacts}.
 * @param outputNodes The output layer -> output node map of {@linkcode graphArtifacts}.
 * @returns A copy with the names changed (names not in the map are kept).
 */
export function renameSidecar(
  sidecar: Sidecar,
  layerNodes: Record<string, string>,
  outputNodes: Record<string, string> = {},
): Sidecar {
  const out: Sidecar = { ...sidecar };
  for (const key of ["logits", "probs"] as const) {
    const v = sidecar[key];
    if (typeof v === "string" && layerNodes[v]) out[key] = layerNodes[v];
  }
  // The output to explain, named by its layer, becomes the graph's output node.
  if (typeof sidecar.output === "string" && outputNodes[sidecar.output]) {
    out.output = outputNodes[sidecar.output];
  }
  return out;
}

/**
 * Writes a LayersModel as a TensorFlow.js GraphModel: `model.json`
 * (`"format": "graph-model"`), `weights.bin` and, when a sidecar is given,
 * `convlens.json` with `logits`/`probs` renamed to node names. Each file is written
 * whole or not at all.
 *
 * @param model A single-input LayersModel, one output or several (see the module docs for the layers).
 * @param folder Output folder (created if missing).
 * @param options Node-name prefix, op fusion, sidecar.
 * @throws {Error} naming the layer that cannot be exported, before any file is written.
 * @example Export a small model and load it back
 * ```ts ignore
 * import { tf } from "../core/tf.ts";
 * import { initBackend } from "../backends/mod.ts";
 * import { loadNet } from "../core/load.ts";
 * import { exportGraphModel } from "./graph_export.ts";
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, activation: "relu", name: "c1" }),
 *   tf.layers.flatten({ name: "f" }),
 *   tf.layers.dense({ units: 3, activation: "softmax", name: "d" }),
 * ] });
 * await exportGraphModel(model, "out/tiny_graph");
 * const net = await loadNet("out/tiny_graph"); // net.kind === "graph"; taps such as "c1/Relu"
 * ```
 */
export async function exportGraphModel(
  model: tf.LayersModel,
  folder: string,
  options: GraphExportOptions = {},
): Promise<void> {
  const art = await graphArtifacts(model, options);
  await Deno.mkdir(folder, { recursive: true });
  await writeFileAtomic(`${folder}/weights.bin`, art.weightData);
  await writeFileAtomic(`${folder}/model.json`, JSON.stringify(art.modelJson));
  if (options.sidecar) {
    const sidecar = renameSidecar(options.sidecar, art.layerNodes, art.outputNodes);
    await writeFileAtomic(`${folder}/convlens.json`, JSON.stringify(sidecar, null, 2) + "\n");
  }
}

const USAGE =
  `Usage: deno run -A scripts/graph_export.ts <layers-model-folder> <out-folder> [--fuse] [--prefix P]

Writes the LayersModel in <layers-model-folder> (model.json + weights) as a TensorFlow.js
GraphModel in <out-folder>, with its convlens.json (logits/probs renamed to graph nodes).
  --fuse       fuse conv/dense + bias + relu into one node, as tensorflowjs_converter does
  --prefix P   prefix of node names, e.g. StatefulPartitionedCall/sequential/
  --backend B  TensorFlow.js backend to read the weights with (default cpu)`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      fuse: { type: "boolean", default: false },
      prefix: { type: "string", default: "" },
      backend: { type: "string", default: "cpu" },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    console.error(USAGE);
    return 2;
  }
  const [from, to] = positionals;
  await initBackend(values.backend, { quiet: true });
  const net = await loadNet(from);
  if (net.kind !== "layers") {
    console.error(`${from} holds a GraphModel already; give a LayersModel folder`);
    return 1;
  }
  let sidecar: Sidecar | undefined;
  const dir = from.endsWith(".json") ? from.slice(0, from.lastIndexOf("/") + 1) || "." : from;
  try {
    sidecar = JSON.parse(await Deno.readTextFile(`${dir.replace(/\/+$/, "")}/convlens.json`));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const model = net.model as tf.LayersModel;
  await exportGraphModel(model, to, { fuse: values.fuse, prefix: values.prefix, sidecar });
  const art = await graphArtifacts(model, { fuse: values.fuse, prefix: values.prefix });
  console.log(
    `Wrote a GraphModel of ${art.modelJson.modelTopology.node.length} nodes to ${to}` +
      (sidecar ? " (with convlens.json)" : ""),
  );
  for (const [layer, node] of Object.entries(art.layerNodes)) console.log(`  ${layer} -> ${node}`);
  net.dispose();
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`graph_export: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
