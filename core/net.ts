/**
 * The model under study. A {@linkcode Net} wraps a TensorFlow.js LayersModel
 * (Sequential or functional, with branches and merges) or a GraphModel, knows its
 * input contract (size, channels, value range, mean/std, class labels), lists its
 * layers, and runs forward with *taps* (any layer's activation by name) and
 * *edits* (replace or mask a layer's activation on the way through).
 *
 * Loading (folder, `model.json` path or http(s) URL) lives in `load.ts`.
 *
 * @module
 */
import { tf } from "./tf.ts";

/** What the model expects as input and how its outputs read. */
export interface InputContract {
  /** Input height in pixels. */
  height: number;
  /** Input width in pixels. */
  width: number;
  /** Input channels (1 or 3). */
  channels: number;
  /** Value range of raw pixels as the model takes them, before mean/std. @default [0, 1] */
  range: [number, number];
  /** Per-channel mean subtracted after scaling to `range`. @default [0] */
  mean: number[];
  /** Per-channel standard deviation divided by after the mean. @default [1] */
  std: number[];
}

/** The `convlens.json` sidecar beside a model's `model.json`. */
export interface Sidecar {
  /** A short name of the model. */
  name?: string;
  /** Input contract; fields left out are read from the model. */
  input?: Partial<InputContract>;
  /** Class labels, one per output unit. */
  labels?: string[];
  /** Name of the layer (or graph node) giving unnormalized class scores. */
  logits?: string;
  /** Name of the layer giving class probabilities. */
  probs?: string;
  /** Anything else (training figures and such) is kept as it is. */
  [key: string]: unknown;
}

/** One layer (or graph node) of a Net, as `summary` and the receptive-field code see it. */
export interface LayerInfo {
  /** Name by which taps and edits address it. */
  name: string;
  /** Class (LayersModel) or op (GraphModel), e.g. `Conv2D`, `MaxPooling2D`, `Relu`. */
  type: string;
  /** Names of the layers feeding it (the model input is `"input"`). */
  inputs: string[];
  /** Output shape without the batch dimension, e.g. `[26, 26, 16]`. */
  outputShape: number[];
  /** Number of weights (trainable and not). */
  params: number;
  /** Spatial kernel size for convs and pools. */
  kernel?: [number, number];
  /** Stride for convs and pools. */
  stride?: [number, number];
  /** Padding mode for convs and pools. */
  padding?: "same" | "valid" | "causal" | "explicit";
  /** Explicit padding (top, bottom, left, right) where the model gives it. */
  explicitPadding?: [number, number, number, number];
  /** Dilation for convs. */
  dilation?: [number, number];
  /** Fused activation, if any (`relu`, `softmax`, ...). */
  activation?: string;
  /** Kind of spatial operation, for receptive fields and multiply-adds. */
  role: LayerRole;
  /** Filters (output channels) for convs, units for dense layers. */
  units?: number;
}

/**
 * How a layer moves information across space:
 * `conv` and `depthwise` (weighted windows), `pool` (unweighted windows),
 * `dense` and `global` (see everything), `merge` (adds/concats of branches),
 * `pointwise` (anything per-position: activations, batch norm, dropout, reshapes
 * that keep the grid), `flatten` (grid to vector), `input`.
 */
export type LayerRole =
  | "input"
  | "conv"
  | "depthwise"
  | "pool"
  | "dense"
  | "global"
  | "merge"
  | "pointwise"
  | "flatten";

/** Replaces a layer's activation during a forward pass. */
export type Edit = (activation: tf.Tensor) => tf.Tensor;

/** Options of {@linkcode Net.forward}. */
export interface ForwardOptions {
  /** Layers whose activations to return. @default [] */
  taps?: readonly string[];
  /** Layers whose activations to replace on the way through. @default {} */
  edits?: Readonly<Record<string, Edit>>;
  /** Also return unnormalized class scores (the logits). @default false */
  logits?: boolean;
  /**
   * Stop once the taps (and the logits, when asked) are computed: the layers
   * after them do not run. `output` is then not computed, and reading it throws.
   * @default false
   */
  stopAtTaps?: boolean;
}

/** What {@linkcode Net.forward} returns; the caller owns every tensor. */
export interface ForwardResult {
  /** The model's output (probabilities for a classifier ending in softmax). */
  output: tf.Tensor;
  /** Unnormalized class scores, when asked for. */
  logits?: tf.Tensor;
  /** Tapped activations by layer name. */
  taps: Record<string, tf.Tensor>;
}

const ROLE_BY_CLASS: Record<string, LayerRole> = {
  InputLayer: "input",
  Conv2D: "conv",
  Conv2DTranspose: "conv",
  SeparableConv2D: "conv",
  DepthwiseConv2D: "depthwise",
  MaxPooling2D: "pool",
  AveragePooling2D: "pool",
  Dense: "dense",
  GlobalAveragePooling2D: "global",
  GlobalMaxPooling2D: "global",
  Add: "merge",
  Concatenate: "merge",
  Multiply: "merge",
  Average: "merge",
  Maximum: "merge",
  Minimum: "merge",
  Subtract: "merge",
  Flatten: "flatten",
  Reshape: "flatten",
};

const ROLE_BY_OP: Record<string, LayerRole> = {
  Placeholder: "input",
  Conv2D: "conv",
  _FusedConv2D: "conv",
  DepthwiseConv2dNative: "depthwise",
  FusedDepthwiseConv2dNative: "depthwise",
  MaxPool: "pool",
  AvgPool: "pool",
  MatMul: "dense",
  _FusedMatMul: "dense",
  Mean: "global",
  Max: "global",
  AddV2: "merge",
  Add: "merge",
  AddN: "merge",
  ConcatV2: "merge",
  Reshape: "flatten",
};

/** Ops that carry no computation a user would want to tap. */
const GRAPH_SKIP = new Set(["Const", "Identity", "NoOp", "Shape", "StridedSlice", "Pack"]);

function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])];
  if (typeof v === "number") return [v, v];
  return [fallback, fallback];
}

function prod(shape: readonly (number | null)[]): number {
  return shape.reduce((a: number, b) => a * (b ?? 1), 1);
}

/** Error for a layer name the model does not have, listing the ones it does. */
export function unknownLayerError(name: string, known: readonly string[]): Error {
  const close = known.filter((k) => k.toLowerCase().includes(name.toLowerCase()));
  const list = (close.length ? close : known).slice(0, 30).join(", ");
  return new RangeError(
    `Unknown layer "${name}": this model has ${known.length} layers; use one of: ${list}`,
  );
}

/**
 * Runs an edit so that the executor owns what it stores: a copy of whatever the
 * edit returns (a tensor the caller holds, such as a gradient variable, is never
 * disposed by the forward pass), with the edit's intermediates freed.
 */
function applyEdit(edit: Edit, t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const r = edit(t);
    return r === t ? t : r.clone();
  });
}

// A stand-in for a layer's softmax while the logits are computed.
const LINEAR = { apply: (x: tf.Tensor) => x, getClassName: () => "linear" };

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, { list?: { i?: string[] }; s?: string; i?: string; shape?: unknown }>;
}

/**
 * A model with its input contract, layer list, taps and edits.
 *
 * @example Tap a layer of a small Sequential model
 * ```ts
 * import { tf } from "./tf.ts";
 * import { Net } from "./net.ts";
 * const model = tf.sequential({ layers: [
 *   tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: "c1" }),
 *   tf.layers.flatten({ name: "f" }),
 *   tf.layers.dense({ units: 3, activation: "softmax", name: "d" }),
 * ] });
 * const net = Net.fromModel(model);
 * const { output, taps } = net.forward(tf.zeros([1, 8, 8, 1]), { taps: ["c1"] });
 * if (taps.c1.shape[3] !== 2 || output.shape[1] !== 3) throw new Error("shape");
 * tf.dispose([output, taps.c1]);
 * ```
 */
export class Net {
  /** The wrapped model. */
  readonly model: tf.LayersModel | tf.GraphModel;
  /** `layers` for a LayersModel, `graph` for a GraphModel. */
  readonly kind: "layers" | "graph";
  /** Input contract. */
  readonly input: InputContract;
  /** Class labels (one per output unit). */
  readonly labels: string[];
  /** The sidecar as given, with defaults filled in. */
  readonly sidecar: Sidecar;
  /** Where the model came from (a path, a URL, or `memory`). */
  readonly source: string;
  /** Every layer in execution order, the input first. */
  readonly layers: LayerInfo[];
  readonly #byName: Map<string, LayerInfo>;
  readonly #logitsName?: string;
  /** Graph node names that are model inputs / outputs. */
  readonly #graphInput?: string;
  readonly #graphOutput?: string;

  private constructor(
    model: tf.LayersModel | tf.GraphModel,
    sidecar: Sidecar,
    source: string,
  ) {
    this.model = model;
    this.source = source;
    this.kind = model instanceof tf.GraphModel ? "graph" : "layers";
    if (this.kind === "graph") {
      const g = model as tf.GraphModel;
      this.#graphInput = g.inputs[0].name;
      this.#graphOutput = g.outputs[0].name;
      if (g.inputs.length !== 1) {
        throw new RangeError(
          `This model has ${g.inputs.length} inputs; convlens works with single-input image models`,
        );
      }
    } else {
      const m = model as tf.LayersModel;
      if (m.inputs.length !== 1 || m.outputs.length !== 1) {
        throw new RangeError(
          `This model has ${m.inputs.length} inputs and ${m.outputs.length} outputs; ` +
            "convlens works with single-input, single-output image models",
        );
      }
    }
    const inShape = this.#inputShape();
    const given = sidecar.input ?? {};
    const channels = given.channels ?? inShape[2];
    this.input = {
      height: given.height ?? inShape[0],
      width: given.width ?? inShape[1],
      channels,
      range: given.range ?? [0, 1],
      mean: given.mean ?? [0],
      std: given.std ?? [1],
    };
    for (const k of ["height", "width", "channels"] as const) {
      if (!Number.isInteger(this.input[k]) || this.input[k] <= 0) {
        throw new RangeError(
          `The model's input ${k} is unknown (${
            this.input[k]
          }); give it in convlens.json ("input": {"${k}": ...})`,
        );
      }
    }
    this.layers = this.kind === "layers" ? this.#layersOfLayersModel() : this.#layersOfGraph();
    this.#byName = new Map(this.layers.map((l) => [l.name, l]));
    const outUnits = this.layers[this.layers.length - 1].outputShape.at(-1) ?? 0;
    this.labels = sidecar.labels ?? Array.from({ length: outUnits }, (_, i) => String(i));
    if (sidecar.logits && !this.#byName.has(sidecar.logits)) {
      throw new RangeError(
        `convlens.json names "${sidecar.logits}" as the logits layer, but the model has no such layer`,
      );
    }
    this.#logitsName = sidecar.logits ?? this.#findLogits();
    this.sidecar = { ...sidecar, input: this.input, labels: this.labels };
  }

  /**
   * Wraps a model already in memory.
   * @param model A LayersModel or GraphModel with one image input.
   * @param sidecar Input contract and labels (see `convlens.json`).
   * @param source Where it came from, for messages.
   * @returns The Net.
   */
  static fromModel(
    model: tf.LayersModel | tf.GraphModel,
    sidecar: Sidecar = {},
    source = "memory",
  ): Net {
    return new Net(model, sidecar, source);
  }

  /** Number of classes (output units). */
  get numClasses(): number {
    return this.labels.length;
  }

  /** The layer of that name, or a clear error listing the names there are. */
  layer(name: string): LayerInfo {
    const l = this.#byName.get(name);
    if (!l) throw unknownLayerError(name, this.layers.map((x) => x.name));
    return l;
  }

  /** Whether a layer of that name exists. */
  hasLayer(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Layers with a spatial grid (rank-3 output), in order, the input left out. */
  spatialLayers(): LayerInfo[] {
    return this.layers.filter((l) => l.role !== "input" && l.outputShape.length === 3);
  }

  /** Conv layers (with weights), in order. */
  convLayers(): LayerInfo[] {
    return this.layers.filter((l) => l.role === "conv" || l.role === "depthwise");
  }

  /**
   * Checks a class index.
   * @throws {RangeError} naming the valid range.
   */
  checkClass(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.numClasses) {
      throw new RangeError(
        `Class index ${index} is out of range: this model has ${this.numClasses} classes (0 to ${
          this.numClasses - 1
        })`,
      );
    }
    return index;
  }

  /**
   * Checks a batch of model inputs: rank 4, the model's height, width and channels.
   * @throws {RangeError} naming the expected shape.
   */
  checkInput(x: tf.Tensor): void {
    const { height, width, channels } = this.input;
    const ok = x.rank === 4 && x.shape[1] === height && x.shape[2] === width &&
      x.shape[3] === channels;
    if (!ok) {
      const hint = x.rank === 4 && x.shape[3] !== channels
        ? ` (the image has ${
          x.shape[3]
        } channels, the model takes ${channels}: convert it, e.g. to ${
          channels === 1 ? "grayscale" : "RGB"
        })`
        : " (resize the image to the model's input size)";
      throw new RangeError(
        `Input of shape [${x.shape}] does not fit this model: expected [batch, ${height}, ${width}, ${channels}]${hint}`,
      );
    }
  }

  /**
   * Maps display pixels in [0, 1] to model input space: scaled to the value range,
   * then `(v - mean) / std`.
   */
  fromPixels(pixels: tf.Tensor): tf.Tensor {
    const [lo, hi] = this.input.range;
    const { mean, std } = this.input;
    return tf.tidy(() => pixels.mul(hi - lo).add(lo).sub(tf.tensor1d(mean)).div(tf.tensor1d(std)));
  }

  /** Maps model input space back to display pixels (not clipped). */
  toPixels(x: tf.Tensor): tf.Tensor {
    const [lo, hi] = this.input.range;
    const { mean, std } = this.input;
    return tf.tidy(() => x.mul(tf.tensor1d(std)).add(tf.tensor1d(mean)).sub(lo).div(hi - lo));
  }

  /** Lowest and highest valid input values per channel, in model input space. */
  inputBounds(): { lo: number[]; hi: number[] } {
    const [a, b] = this.input.range;
    const c = this.input.channels;
    const m = (i: number) => this.input.mean[i % this.input.mean.length];
    const s = (i: number) => this.input.std[i % this.input.std.length];
    return {
      lo: Array.from({ length: c }, (_, i) => (a - m(i)) / s(i)),
      hi: Array.from({ length: c }, (_, i) => (b - m(i)) / s(i)),
    };
  }

  /**
   * Runs the model on a batch, tapping and editing layers on the way.
   * Differentiable: call it inside `tf.grad` or a {@linkcode gradient} objective.
   *
   * @param x A batch `[n, height, width, channels]` in model input space.
   * @param options Taps, edits and whether to return logits.
   * @returns The output, the logits (if asked) and the taps; the caller owns them.
   */
  forward(x: tf.Tensor, options: ForwardOptions = {}): ForwardResult {
    this.checkInput(x);
    const taps = [...(options.taps ?? [])];
    const edits = options.edits ?? {};
    for (const name of [...taps, ...Object.keys(edits)]) this.layer(name);
    const stop = options.stopAtTaps ?? false;
    const result = this.kind === "layers"
      ? this.#forwardLayers(x, taps, edits, options.logits ?? false, stop)
      : this.#forwardGraph(x, taps, edits, options.logits ?? false, stop);
    if (stop) {
      Object.defineProperty(result, "output", {
        enumerable: false,
        get() {
          throw new Error(
            "Net.forward ran with stopAtTaps, so the output was not computed; " +
              "drop stopAtTaps (or tap the output layer) to read it",
          );
        },
      });
    }
    return result;
  }

  /** Class probabilities for a batch (softmax of the logits). */
  probabilities(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const r = this.forward(x, { logits: true });
      return tf.softmax(r.logits as tf.Tensor2D);
    });
  }

  /** Unnormalized class scores for a batch. */
  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => this.forward(x, { logits: true }).logits as tf.Tensor2D);
  }

  /** Runs a batch through in chunks and returns the probabilities, for large sets. */
  predictInBatches(x: tf.Tensor4D, batchSize = 64): tf.Tensor2D {
    const parts: tf.Tensor2D[] = [];
    for (let i = 0; i < x.shape[0]; i += batchSize) {
      const n = Math.min(batchSize, x.shape[0] - i);
      parts.push(tf.tidy(() => this.probabilities(x.slice([i, 0, 0, 0], [n, -1, -1, -1]))));
    }
    const out = tf.concat(parts);
    tf.dispose(parts);
    return out;
  }

  /**
   * The kernel (first weight) of a conv or dense layer, as a copy the caller owns:
   * `[kh, kw, in, out]` for convs, `[kh, kw, in, multiplier]` for depthwise convs,
   * `[in, out]` for dense layers.
   * @throws {RangeError} for a layer without weights.
   */
  kernel(name: string): tf.Tensor {
    const info = this.layer(name);
    let w: tf.Tensor | undefined;
    if (this.kind === "layers") {
      const layer = (this.model as tf.LayersModel).getLayer(name);
      // SeparableConv2D keeps its depthwise kernel first, as wanted here.
      w = layer.getWeights()[0];
    } else {
      const node = this.#graphNodes().find((n) => n.name === name);
      const src = node?.input?.[1]?.replace(/:\d+$/, "");
      // deno-lint-ignore no-explicit-any
      w = src ? (this.model as any).weights?.[src]?.[0] : undefined;
    }
    if (!w || info.params === 0) {
      throw new RangeError(
        `Layer "${name}" (${info.type}) has no weights; give a conv or dense layer (${
          this.convLayers().map((l) => l.name).join(", ")
        })`,
      );
    }
    return w.clone();
  }

  /** Frees the model's weights. */
  dispose(): void {
    this.model.dispose?.();
  }

  // ---------------------------------------------------------------- LayersModel

  #inputShape(): number[] {
    if (this.kind === "graph") {
      const shape = (this.model as tf.GraphModel).inputs[0].shape ?? [];
      return shape.slice(1).map((v) => (v == null || v < 0 ? NaN : v));
    }
    const shape = (this.model as tf.LayersModel).inputs[0].shape;
    return shape.slice(1).map((v) => v ?? NaN);
  }

  #layersOfLayersModel(): LayerInfo[] {
    const m = this.model as tf.LayersModel;
    const nameOfTensor = new Map<number, string>([[m.inputs[0].id, "input"]]);
    const out: LayerInfo[] = [{
      name: "input",
      type: "InputLayer",
      inputs: [],
      outputShape: this.#inputShape(),
      params: 0,
      role: "input",
    }];
    for (const layer of m.layers) {
      const type = layer.getClassName();
      if (type === "InputLayer") continue;
      const node = layer.inboundNodes.find((n) =>
        n.inputTensors.every((t) => nameOfTensor.has(t.id))
      );
      if (!node) {
        throw new RangeError(`Layer "${layer.name}" is not reachable from the model's input`);
      }
      for (const t of node.outputTensors) nameOfTensor.set(t.id, layer.name);
      // deno-lint-ignore no-explicit-any
      const cfg = layer.getConfig() as any;
      const shape = (node.outputTensors[0].shape ?? []).slice(1).map((v) => v ?? NaN);
      let role: LayerRole = ROLE_BY_CLASS[type] ?? "pointwise";
      if (type === "Reshape" && shape.length === 3) role = "pointwise";
      const info: LayerInfo = {
        name: layer.name,
        type,
        inputs: node.inputTensors.map((t) => nameOfTensor.get(t.id)!),
        outputShape: shape,
        params: layer.countParams(),
        role,
      };
      if (role === "conv" || role === "depthwise" || role === "pool") {
        info.kernel = pair(cfg.kernelSize ?? cfg.poolSize, 1);
        info.stride = pair(cfg.strides ?? cfg.poolSize, 1);
        info.padding = cfg.padding ?? "valid";
        if (role !== "pool") info.dilation = pair(cfg.dilationRate, 1);
      }
      if (cfg.activation && cfg.activation !== "linear") info.activation = cfg.activation;
      if (type === "Activation" || type === "ReLU" || type === "Softmax") {
        info.activation = type === "Activation" ? cfg.activation : type.toLowerCase();
      }
      if (cfg.filters) info.units = cfg.filters;
      if (cfg.units) info.units = cfg.units;
      out.push(info);
    }
    return out;
  }

  #findLogits(): string | undefined {
    const last = this.layers[this.layers.length - 1];
    if (last.activation === "softmax") {
      // A separate softmax layer: its input gives the logits. A fused softmax is
      // handled in the forward pass by running that layer with a linear activation.
      if (last.type === "Activation" || last.type === "Softmax" || last.role === "pointwise") {
        return last.inputs[0];
      }
    }
    return undefined;
  }

  #forwardLayers(
    x: tf.Tensor,
    taps: string[],
    edits: Readonly<Record<string, Edit>>,
    wantLogits: boolean,
    stop: boolean,
  ): ForwardResult {
    const m = this.model as tf.LayersModel;
    const last = this.layers[this.layers.length - 1];
    const fusedSoftmax = wantLogits && !this.#logitsName && last.activation === "softmax";
    const keep = new Set([...taps, ...(this.#logitsName && wantLogits ? [this.#logitsName] : [])]);
    // The layers to run: all, or (stopping at the taps) those the taps and the
    // logits depend on.
    const run = new Set(this.layers.map((l) => l.name));
    if (stop) {
      run.clear();
      for (const name of keep) run.add(name);
      if (fusedSoftmax || (wantLogits && !this.#logitsName)) run.add(last.name);
      for (let i = this.layers.length - 1; i >= 0; i--) {
        const l = this.layers[i];
        if (run.has(l.name)) { for (const n of l.inputs) run.add(n); }
      }
    }
    // Count consumers so that intermediate activations are freed as soon as they
    // are used (inside tf.grad the tape keeps what the backward pass needs).
    const uses = new Map<string, number>();
    for (const l of this.layers) {
      if (run.has(l.name)) { for (const i of l.inputs) uses.set(i, (uses.get(i) ?? 0) + 1); }
    }
    const values = new Map<string, tf.Tensor>();
    const result: ForwardResult = { output: null as unknown as tf.Tensor, taps: {} };
    const store = (name: string, t: tf.Tensor) => {
      let v = t;
      const edit = edits[name];
      if (edit) {
        v = applyEdit(edit, t);
        if (v !== t) t.dispose();
      }
      if (keep.has(name)) {
        if (taps.includes(name)) result.taps[name] = v.clone();
        if (name === this.#logitsName && wantLogits) result.logits = v.clone();
      }
      values.set(name, v);
    };
    store("input", x.clone());
    const byName = new Map(m.layers.map((l) => [l.name, l]));
    for (const info of this.layers) {
      if (info.role === "input" || !run.has(info.name)) continue;
      const layer = byName.get(info.name)!;
      const ins = info.inputs.map((n) => values.get(n)!);
      let out: tf.Tensor;
      if (info === last && fusedSoftmax) {
        // deno-lint-ignore no-explicit-any
        const l = layer as any;
        const act = l.activation;
        l.activation = LINEAR;
        try {
          out = layer.apply(ins.length === 1 ? ins[0] : ins) as tf.Tensor;
        } finally {
          l.activation = act;
        }
        result.logits = out.clone();
        const probs = tf.softmax(out);
        out.dispose();
        out = probs;
      } else {
        out = layer.apply(ins.length === 1 ? ins[0] : ins) as tf.Tensor;
      }
      // Identity-like layers (Dropout at inference) hand back their input object.
      if (ins.includes(out)) out = out.clone();
      store(info.name, out);
      for (const n of info.inputs) {
        const left = (uses.get(n) ?? 1) - 1;
        uses.set(n, left);
        if (left === 0) values.get(n)!.dispose();
      }
    }
    if (stop) {
      // The taps and logits are copies; what the pass still holds is freed.
      if (wantLogits && !result.logits) result.logits = values.get(last.name)!.clone();
      for (const v of values.values()) if (!v.isDisposed) v.dispose();
      return result;
    }
    result.output = values.get(last.name)!;
    if (wantLogits && !result.logits) result.logits = result.output.clone();
    return result;
  }

  // ----------------------------------------------------------------- GraphModel

  #graphNodes(): GraphNode[] {
    const g = this.model as tf.GraphModel;
    // deno-lint-ignore no-explicit-any
    const topo = (g as any).artifacts?.modelTopology as { node?: GraphNode[] } | undefined;
    return topo?.node ?? [];
  }

  #layersOfGraph(): LayerInfo[] {
    const g = this.model as tf.GraphModel;
    const nodes = this.#graphNodes();
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const clean = (s: string) => s.replace(/^\^/, "").replace(/:\d+$/, "");
    const inputName = clean(this.#graphInput!);
    // The output shapes of a graph are known only by running it once.
    const kept = nodes.filter((n) => !GRAPH_SKIP.has(n.op) && n.name !== inputName);
    // The input contract, not the placeholder: a graph with free height/width (-1) gets
    // its size from convlens.json.
    const { height, width, channels } = this.input;
    const zeros = tf.zeros([1, height, width, channels]);
    const shapes = new Map<string, number[]>();
    try {
      const outs = g.execute({ [this.#graphInput!]: zeros }, kept.map((n) => n.name)) as
        | tf.Tensor
        | tf.Tensor[];
      const list = Array.isArray(outs) ? outs : [outs];
      kept.forEach((n, i) => shapes.set(n.name, list[i].shape.slice(1)));
      tf.dispose(list);
    } finally {
      zeros.dispose();
    }
    // Inputs of a kept node, seen through skipped ones (Identity and such).
    const keptNames = new Set(kept.map((n) => n.name));
    const visibleInputs = (n: GraphNode): string[] => {
      const res: string[] = [];
      for (const raw of n.input ?? []) {
        if (raw.startsWith("^")) continue;
        let name = clean(raw);
        while (name !== inputName && !keptNames.has(name)) {
          const src = byName.get(name);
          if (!src || src.op === "Const") {
            name = "";
            break;
          }
          const next = (src.input ?? []).find((s) => !s.startsWith("^"));
          if (!next) {
            name = "";
            break;
          }
          name = clean(next);
        }
        // A shape computed from an input (Shape -> StridedSlice -> Pack) leads back to a
        // tensor the node already reads: list each feeding layer once.
        const seen = name === inputName ? "input" : name;
        if (name && !res.includes(seen)) res.push(seen);
      }
      return res;
    };
    const weightShape = (n: GraphNode, k: number): number[] | undefined => {
      const src = byName.get(clean(n.input?.[k] ?? ""));
      // deno-lint-ignore no-explicit-any
      const w = src && (g as any).weights?.[src.name]?.[0];
      // Only float tensors are weights: int32 consts are shapes and axes (Reshape, Mean, ConcatV2).
      return w?.dtype === "float32" ? w.shape : undefined;
    };
    const out: LayerInfo[] = [{
      name: "input",
      type: "Placeholder",
      inputs: [],
      outputShape: [height, width, channels],
      params: 0,
      role: "input",
    }];
    for (const n of kept) {
      let role = ROLE_BY_OP[n.op] ?? "pointwise";
      const shape = shapes.get(n.name) ?? [];
      if (role === "flatten" && shape.length === 3) role = "pointwise";
      if (role === "global" && shape.length === 3) role = "pointwise";
      let params = 0;
      for (let k = 1; k < (n.input ?? []).length; k++) {
        const ws = weightShape(n, k);
        if (ws) params += prod(ws);
      }
      const info: LayerInfo = {
        name: n.name,
        type: n.op,
        inputs: visibleInputs(n),
        outputShape: shape,
        params,
        role,
      };
      if (role === "merge" && info.inputs.length < 2) info.role = "pointwise";
      const ints = (key: string) => (n.attr?.[key]?.list?.i ?? []).map(Number);
      if (role === "conv" || role === "depthwise") {
        const ws = weightShape(n, 1);
        if (ws) info.kernel = [ws[0], ws[1]];
        info.units = ws ? (role === "conv" ? ws[3] : ws[2] * ws[3]) : undefined;
        const s = ints("strides");
        info.stride = s.length === 4 ? [s[1], s[2]] : [1, 1];
        const d = ints("dilations");
        info.dilation = d.length === 4 ? [d[1], d[2]] : [1, 1];
      }
      if (role === "pool") {
        const k = ints("ksize");
        const s = ints("strides");
        info.kernel = k.length === 4 ? [k[1], k[2]] : [1, 1];
        info.stride = s.length === 4 ? [s[1], s[2]] : [1, 1];
      }
      if (role === "conv" || role === "depthwise" || role === "pool") {
        const p = atob(n.attr?.padding?.s ?? "");
        info.padding = p === "SAME" ? "same" : p === "EXPLICIT" ? "explicit" : "valid";
        const e = ints("explicit_paddings");
        if (e.length === 8) info.explicitPadding = [e[2], e[3], e[4], e[5]];
      }
      if (role === "dense") {
        const ws = weightShape(n, 1);
        if (ws) info.units = ws[1];
      }
      if (/^(Relu|Relu6|Softmax|Sigmoid|Tanh|Elu|Selu|LeakyRelu|Softplus)$/.test(n.op)) {
        info.activation = n.op.toLowerCase();
      }
      const fused = (n.attr?.fused_ops?.list as { s?: string[] } | undefined)?.s ?? [];
      for (const f of fused.map((s) => atob(s))) {
        if (/relu|elu|sigmoid/i.test(f)) info.activation = f.toLowerCase();
      }
      out.push(info);
    }
    return out;
  }

  #forwardGraph(
    x: tf.Tensor,
    taps: string[],
    edits: Readonly<Record<string, Edit>>,
    wantLogits: boolean,
    stop: boolean,
  ): ForwardResult {
    const g = this.model as tf.GraphModel;
    const outName = this.#graphOutput!;
    const last = this.layers[this.layers.length - 1];
    let logitsName = this.#logitsName;
    if (wantLogits && !logitsName && last.type === "Softmax") logitsName = last.inputs[0];
    const feeds: Record<string, tf.Tensor> = { [this.#graphInput!]: x };
    const owned: tf.Tensor[] = [];
    // Each edit is one pass up to the edited node; its edited value is then fed in
    // place of the node, so later passes see it (the executor stops at fed nodes).
    const order = this.layers.map((l) => l.name);
    const editNames = Object.keys(edits).sort((a, b) => order.indexOf(a) - order.indexOf(b));
    for (const name of editNames) {
      if (name === "input") {
        const v = applyEdit(edits[name], feeds[this.#graphInput!]);
        feeds[this.#graphInput!] = v;
        owned.push(v);
        continue;
      }
      const act = g.execute({ ...feeds }, name) as tf.Tensor;
      const v = applyEdit(edits[name], act);
      if (v !== act) act.dispose();
      feeds[name] = v;
      owned.push(v);
    }
    // The executor runs only the nodes the asked-for names depend on, so
    // stopping at the taps is leaving the output out of the names.
    const withOutput = !stop || (wantLogits && !logitsName);
    const names = [
      ...(withOutput ? [outName] : []),
      ...taps.map((t) => (t === "input" ? this.#graphInput! : t)),
    ];
    if (wantLogits && logitsName) names.push(logitsName);
    const list = names.length ? [g.execute(feeds, names) as tf.Tensor | tf.Tensor[]].flat() : [];
    const first = withOutput ? 1 : 0;
    const result: ForwardResult = { output: withOutput ? list[0] : x, taps: {} };
    taps.forEach((t, i) => (result.taps[t] = list[i + first]));
    if (wantLogits) result.logits = logitsName ? list[list.length - 1] : list[0].clone();
    // The executor hands back fed tensors (the input, edited values) themselves, and one
    // tensor for a node asked for twice: give the caller its own copy of each, so that
    // disposing a result never frees the caller's input, a freed feed or another result.
    const seen = new Set<tf.Tensor>();
    const own = (t: tf.Tensor) => {
      const mine = t === x || owned.includes(t) || seen.has(t) ? t.clone() : t;
      seen.add(mine);
      return mine;
    };
    if (stop) {
      // The output was left out (or only served as the logits, copied above).
      if (withOutput) list[0].dispose();
    } else {
      result.output = own(result.output);
    }
    for (const [k, v] of Object.entries(result.taps)) result.taps[k] = own(v);
    if (result.logits) result.logits = own(result.logits);
    tf.dispose(owned.filter((t) => t !== x));
    return result;
  }
}
