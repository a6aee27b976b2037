/**
 * The model under study. A {@linkcode Net} wraps a TensorFlow.js LayersModel
 * (Sequential or functional, with branches and merges) or a GraphModel, knows its
 * input contract (size, channels, value range, mean/std, class labels), lists its
 * layers, and runs forward with *taps* (any layer's activation by name) and
 * *edits* (replace or mask a layer's activation on the way through).
 *
 * What differs between the two kinds of model sits behind one interface
 * (`model_adapter.ts`): `layers_adapter.ts` and `graph_adapter.ts`. Loading
 * (folder, `model.json` path or http(s) URL) lives in `load.ts`.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { ModelAdapter } from "./model_adapter.ts";
import { LayersAdapter } from "./layers_adapter.ts";
import { GraphAdapter } from "./graph_adapter.ts";

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
  /**
   * The output to explain, by output layer (or graph node) name or index, for a
   * model with several outputs.
   */
  output?: string | number;
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

/**
 * How a Net reads its output as classes:
 * - `softmax`: one score per class (a softmax output, or raw scores); the
 *   probabilities are the softmax of the logits.
 * - `binary`: one sigmoid unit; class 1 is its positive class, class 0 the
 *   complement; the logits are `[-z/2, z/2]` with z the pre-sigmoid value (or
 *   `logit(p)` where no layer gives z), so that their softmax is `[1 - p, p]`
 *   and each class's logit has a gradient.
 * - `multilabel`: k sigmoid units, each a class of its own: class i is unit i, its
 *   probability `sigmoid(z_i)` (the probabilities need not sum to 1).
 * - `features`: no class output (a feature extractor ending in a conv or pool
 *   layer): "class" c is channel c of the output, scored by its spatial mean;
 *   there are no probabilities.
 */
export type OutputHead = "softmax" | "binary" | "multilabel" | "features";

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
  /**
   * Activations given in place of layers, by name: such a layer does not run,
   * nor does anything that only it needs, and what comes after it reads the
   * given tensor (differentiably: a gradient with respect to an activation is
   * a gradient with respect to its feed). Edits of a fed layer apply to the feed.
   * @default {}
   */
  feed?: Readonly<Record<string, tf.Tensor>>;
  /**
   * Hold the weights constant, as explaining a model (not training it) does:
   * each batch norm at inference is folded into the convolution or dense
   * layer before it (unless that layer is tapped or edited), and a gradient
   * through the pass reaches the input and the activations, never the
   * weights (none is computed). Leave it unset inside `tf.variableGrads` or
   * any gradient with respect to the weights.
   * @default true outside a gradient, false inside one (convlens's own input
   *   gradients set it)
   */
  constantWeights?: boolean;
}

/** What {@linkcode Net.forward} returns; the caller owns every tensor. */
export interface ForwardResult {
  /** The model's output (probabilities for a classifier ending in softmax). */
  output: tf.Tensor;
  /** Unnormalized class scores `[n, classes]`, when asked for. */
  logits?: tf.Tensor;
  /**
   * How the logits turn into class probabilities: `softmax` across classes, or
   * `sigmoid` per class (multi-label heads). @default "softmax"
   */
  probability?: "softmax" | "sigmoid";
  /** Tapped activations by layer name. */
  taps: Record<string, tf.Tensor>;
}

/**
 * The Keras layer names of a graph's nodes: the longest scope every
 * path-named node shares is dropped, and each leading run of the rest's path
 * segments names the last node under it (a layer's output comes after its
 * inner ops). Names that are already node names are left alone.
 */
function layerAliases(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const scoped = names.filter((n) => n.includes("/"));
  if (scoped.length < 2) return out;
  let scope = scoped[0].split("/").slice(0, -1);
  for (const n of scoped) {
    const parts = n.split("/");
    let k = 0;
    while (k < scope.length && k < parts.length - 1 && scope[k] === parts[k]) k++;
    scope = scope.slice(0, k);
  }
  const known = new Set(names);
  for (const n of scoped) {
    const rest = n.split("/").slice(scope.length);
    for (let k = 1; k < rest.length; k++) {
      const alias = rest.slice(0, k).join("/");
      if (!known.has(alias)) out.set(alias, n);
    }
  }
  return out;
}

/** Error for a layer name the model does not have, listing the ones it does. */
export function unknownLayerError(name: string, known: readonly string[]): Error {
  const close = known.filter((k) => k.toLowerCase().includes(name.toLowerCase()));
  const list = (close.length ? close : known).slice(0, 30).join(", ");
  return new RangeError(
    `Unknown layer "${name}": this model has ${known.length} layers; use one of: ${list}`,
  );
}

/** Output names of a model, in order. */
function outputNames(model: tf.LayersModel | tf.GraphModel): string[] {
  if (model instanceof tf.GraphModel) return model.outputs.map((o) => o.name.replace(/:0$/, ""));
  return model.outputLayers.map((l) => l.name);
}

/**
 * The one output of a model to explain: the only one, or the one `output` names
 * (by name or index); a LayersModel is cut to that output.
 * @throws {RangeError} for several outputs and none picked, or an unknown one.
 */
function pickOutput(
  root: tf.LayersModel | tf.GraphModel,
  output: string | number | undefined,
): { model: tf.LayersModel | tf.GraphModel; index: number; name?: string } {
  const names = outputNames(root);
  const list = names.map((n, i) => `${i} "${n}"`).join(", ");
  if (output === undefined || output === "") {
    if (names.length <= 1) return { model: root, index: 0 };
    throw new RangeError(
      `This model has ${names.length} outputs (${list}); pick the one to explain with ` +
        '--output NAME|INDEX (the Lens option output, or "output" in convlens.json)',
    );
  }
  const asIndex = typeof output === "number" ? output : /^\d+$/.test(output) ? Number(output) : NaN;
  const index = Number.isInteger(asIndex) ? asIndex : names.indexOf(String(output));
  if (index < 0 || index >= names.length) {
    throw new RangeError(`Unknown output "${output}": this model's outputs are ${list}`);
  }
  if (names.length === 1 || root instanceof tf.GraphModel) {
    return { model: root, index, name: names[index] };
  }
  // A functional model of the one output shares the layers (and weights) of the whole.
  const model = tf.model({ inputs: root.inputs, outputs: root.outputs[index] });
  return { model, index, name: names[index] };
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
  /**
   * Other names of layers: for a GraphModel, each Keras layer name (the path
   * segment after the scope all nodes share, e.g. `block3_sepconv2_act` for
   * `StatefulPartitionedCall/model_1/block3_sepconv2_act/Relu`) names the last
   * node of that layer, its output.
   */
  readonly aliases: ReadonlyMap<string, string>;
  /** How the output reads as classes (see {@linkcode OutputHead}). */
  readonly head: OutputHead;
  /** The output explained, by name, for a model with several outputs. */
  readonly output?: string;
  readonly #logitsName?: string;
  readonly #adapter: ModelAdapter;
  readonly #root: tf.LayersModel | tf.GraphModel;
  // A sigmoid head whose pre-sigmoid value no layer gives: z = logit(p).
  readonly #logitFromP: boolean;

  private constructor(
    root: tf.LayersModel | tf.GraphModel,
    sidecar: Sidecar,
    source: string,
  ) {
    this.#root = root;
    const picked = pickOutput(root, sidecar.output);
    const model = picked.model;
    this.output = picked.name;
    this.#adapter = model instanceof tf.GraphModel
      ? new GraphAdapter(model, picked.index)
      : new LayersAdapter(model);
    this.model = model;
    this.source = source;
    this.kind = this.#adapter.kind;
    const inShape = this.#adapter.inputShape();
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
    this.layers = this.#adapter.layers(this.input);
    this.#byName = new Map(this.layers.map((l) => [l.name, l]));
    this.aliases = layerAliases(this.layers.map((l) => l.name));
    const last = this.layers[this.layers.length - 1];
    const outUnits = last.outputShape.at(-1) ?? 0;
    const sigmoid = last.activation === "sigmoid";
    this.head = last.outputShape.length !== 1
      ? "features"
      : sigmoid && outUnits === 1
      ? "binary"
      : sigmoid
      ? "multilabel"
      : "softmax";
    const classes = this.head === "binary" ? 2 : outUnits;
    let labels = sidecar.labels;
    // One label for a binary head names its positive class.
    if (this.head === "binary" && labels?.length === 1) labels = [`not ${labels[0]}`, labels[0]];
    this.labels = labels ?? Array.from({ length: classes }, (_, i) => String(i));
    if (sidecar.logits && !this.#byName.has(sidecar.logits)) {
      throw new RangeError(
        `convlens.json names "${sidecar.logits}" as the logits layer, but the model has no such layer`,
      );
    }
    this.#logitsName = sidecar.logits ?? this.#findLogits();
    // A LayersModel's fused sigmoid runs linear for z; a graph's fused one cannot.
    this.#logitFromP = sigmoid && !this.#logitsName && this.kind === "graph";
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

  /**
   * Number of classes: the output units; 2 for a binary sigmoid head; the output's
   * channels for a feature extractor (each channel a "class").
   */
  get numClasses(): number {
    return this.labels.length;
  }

  /** How the logits turn into class probabilities: `sigmoid` for multi-label heads. */
  get probability(): "softmax" | "sigmoid" {
    return this.head === "multilabel" ? "sigmoid" : "softmax";
  }

  /**
   * Class probabilities from logits `[n, classes]` as {@linkcode Net.logits}
   * gives them: the softmax, or each unit's sigmoid for a multi-label head.
   * @throws {RangeError} for a feature extractor, which has no class probabilities.
   */
  probabilitiesOf(logits: tf.Tensor): tf.Tensor2D {
    this.checkClassOutput("class probabilities");
    return tf.tidy(() =>
      this.head === "multilabel" ? tf.sigmoid(logits) : tf.softmax(logits as tf.Tensor2D)
    ) as tf.Tensor2D;
  }

  /**
   * Refuses what needs class probabilities on a model without a class output.
   * @param what What needed them, for the message.
   * @throws {RangeError} naming the targets such a model takes.
   */
  checkClassOutput(what: string): void {
    if (this.head !== "features") return;
    const last = this.layers[this.layers.length - 1];
    throw new RangeError(
      `This model has no class output (its output "${last.name}" has shape [${last.outputShape}]), ` +
        `so ${what} mean nothing: gradient methods (saliency, grad-cam, integrated-gradients ` +
        `and the like) take --class c as channel c of that output, scored by its spatial mean, ` +
        `with --target logit; deconvnet and guided-backprop also take a unit of any layer`,
    );
  }

  /** The layer's own name for a name or an alias (see {@linkcode Net.aliases}). */
  canonicalLayer(name: string): string {
    return this.#byName.has(name) ? name : this.aliases.get(name) ?? name;
  }

  /** The layer of that name (or alias), or a clear error listing the names there are. */
  layer(name: string): LayerInfo {
    const l = this.#byName.get(this.canonicalLayer(name));
    if (!l) throw unknownLayerError(name, this.layers.map((x) => x.name));
    return l;
  }

  /** Whether a layer of that name (or alias) exists. */
  hasLayer(name: string): boolean {
    return this.#byName.has(this.canonicalLayer(name));
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
      const what = this.head === "features"
        ? `this model has no class output; its output has ${this.numClasses} channels, ` +
          "each taken as a class"
        : `this model has ${this.numClasses} classes`;
      throw new RangeError(
        `Class index ${index} is out of range: ${what} (0 to ${this.numClasses - 1})`,
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
    const asked = [...(options.taps ?? [])];
    for (const name of [...asked, ...Object.keys(options.edits ?? {})]) this.layer(name);
    const taps = asked.map((t) => this.canonicalLayer(t));
    const edits = Object.fromEntries(
      Object.entries(options.edits ?? {}).map(([k, e]) => [this.canonicalLayer(k), e]),
    );
    const feeds = Object.fromEntries(
      Object.entries(options.feed ?? {}).map(([k, t]) => [this.canonicalLayer(k), t]),
    );
    const stop = options.stopAtTaps ?? false;
    const result = this.#adapter.forward(x, {
      layers: this.layers,
      logitsName: this.#logitsName,
      taps,
      edits,
      logits: options.logits ?? false,
      stopAtTaps: stop,
      feeds,
      constantWeights: options.constantWeights,
    });
    if (result.logits) {
      const raw = result.logits;
      result.logits = tf.tidy(() => this.#classLogits(raw));
      raw.dispose();
      if (this.head === "multilabel") result.probability = "sigmoid";
    }
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
    // Taps come back under the names they were asked by.
    asked.forEach((name, k) => {
      if (name === taps[k]) return;
      result.taps[name] = result.taps[taps[k]];
      if (!asked.includes(taps[k])) delete result.taps[taps[k]];
    });
    return result;
  }

  /**
   * Class probabilities for a batch (softmax of the logits; each unit's sigmoid
   * for a multi-label head).
   * @throws {RangeError} for a feature extractor.
   */
  probabilities(x: tf.Tensor): tf.Tensor2D {
    this.checkClassOutput("class probabilities");
    return tf.tidy(() => {
      const r = this.forward(x, { logits: true });
      return this.probabilitiesOf(r.logits!);
    });
  }

  /**
   * Unnormalized class scores `[n, classes]` for a batch: `[-z/2, z/2]` for a
   * binary sigmoid head, the spatial mean of each channel for a feature extractor.
   */
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
    const w = this.#adapter.kernel(name);
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
    this.#adapter.dispose();
    this.#root.dispose?.();
  }

  /** The adapter's scores (z, or p where z is out of reach) as `[n, classes]` logits. */
  #classLogits(raw: tf.Tensor): tf.Tensor {
    if (this.head === "features") {
      return raw.rank > 2 ? raw.mean(Array.from({ length: raw.rank - 2 }, (_, i) => i + 1)) : raw;
    }
    let z = raw;
    if (this.#logitFromP) {
      const p = raw.clipByValue(1e-7, 1 - 1e-7);
      z = p.log().sub(tf.sub(1, p).log());
    }
    if (this.head !== "binary") return z.clone();
    // [-z/2, z/2] rather than [0, z]: the same softmax, and class 0 gets a gradient.
    const half = z.mul(0.5);
    return tf.concat([half.neg(), half], 1);
  }

  #findLogits(): string | undefined {
    const last = this.layers[this.layers.length - 1];
    if (last.activation === "softmax" || last.activation === "sigmoid") {
      // A separate softmax (sigmoid) layer: its input gives the logits. A fused one is
      // handled in the forward pass by running that layer with a linear activation.
      if (
        last.type === "Activation" || last.type === "Softmax" || last.type === "Sigmoid" ||
        last.role === "pointwise"
      ) {
        return last.inputs[0];
      }
    }
    return undefined;
  }
}
