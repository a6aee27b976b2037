/**
 * The LayersModel side of a Net (Sequential or functional, with branches and
 * merges): its layers as the Keras config describes them, and a forward pass that
 * applies layer after layer so that each activation can be tapped or edited.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { ForwardResult, InputContract, LayerInfo, LayerRole } from "./net.ts";
import { applyEdit, type ForwardRequest, type ModelAdapter } from "./model_adapter.ts";
import { type ConstantWeights, constantWeightsOf } from "./folded_layers.ts";

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

function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0]), Number(v[v.length > 1 ? 1 : 0])];
  if (typeof v === "number") return [v, v];
  return [fallback, fallback];
}

// A stand-in for a layer's softmax while the logits are computed.
const LINEAR = { apply: (x: tf.Tensor) => x, getClassName: () => "linear" };

/**
 * The layer of a LayersModel at a path as a Net names it: a plain layer name, or
 * `base/conv2` for a layer inside the nested model `base`.
 *
 * @param model The model.
 * @param path The layer's name or path.
 * @returns The layer.
 * @throws {Error} where no layer has that path.
 */
export function layerAt(model: tf.LayersModel, path: string): tf.layers.Layer {
  const direct = model.layers.find((l) => l.name === path);
  if (direct) return direct;
  for (const l of model.layers) {
    if (l instanceof tf.LayersModel && path.startsWith(`${l.name}/`)) {
      return layerAt(l, path.slice(l.name.length + 1));
    }
  }
  throw new RangeError(`The model has no layer "${path}"`);
}

/** A LayersModel behind the {@linkcode ModelAdapter} interface. */
export class LayersAdapter implements ModelAdapter {
  /** Always `layers`. */
  readonly kind: "layers" = "layers";
  /** The wrapped model. */
  readonly model: tf.LayersModel;
  /** Each listed layer by name (path), `null` for a nested model's output entry. */
  readonly #runnable = new Map<string, tf.layers.Layer | null>();
  /** The layers that can run with constant weights (batch norm folded in). */
  #constant?: ConstantWeights;

  /**
   * @param model A LayersModel with one input and one output.
   * @throws {RangeError} for several inputs or outputs.
   */
  constructor(model: tf.LayersModel) {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new RangeError(
        `This model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; ` +
          "convlens works with single-input, single-output image models",
      );
    }
    this.model = model;
  }

  /** The input shape without the batch dimension; `NaN` where it is free. */
  inputShape(): number[] {
    return this.model.inputs[0].shape.slice(1).map((v) => v ?? NaN);
  }

  /**
   * Every layer in execution order, the input first, each with the layers that
   * feed it as the model's inbound nodes record them. The layers of a nested model
   * (a base model used as one layer) are listed by path, `base/conv2`, and the
   * nested model's own name gives its output.
   */
  layers(_input: InputContract): LayerInfo[] {
    const m = this.model;
    this.#runnable.clear();
    const out: LayerInfo[] = [{
      name: "input",
      type: "InputLayer",
      inputs: [],
      outputShape: this.inputShape(),
      params: 0,
      role: "input",
    }];
    this.#list(m, new Map([[m.inputs[0].id, "input"]]), "", out);
    this.#constant = constantWeightsOf(m, out, (n) => this.#runnable.get(n) ?? undefined);
    return out;
  }

  /**
   * Lists a model's layers into `out`, a nested model's own layers in its place
   * under `<name>/`, followed by one entry of the nested model's name that passes
   * its output on (its weights are counted in the layers inside).
   */
  #list(
    model: tf.LayersModel,
    nameOfTensor: Map<number, string>,
    prefix: string,
    out: LayerInfo[],
  ): void {
    for (const layer of model.layers) {
      const type = layer.getClassName();
      if (type === "InputLayer") continue;
      const name = prefix + layer.name;
      const node = layer.inboundNodes.find((n) =>
        n.inputTensors.every((t) => nameOfTensor.has(t.id))
      );
      if (!node) {
        throw new RangeError(`Layer "${name}" is not reachable from the model's input`);
      }
      const ins = node.inputTensors.map((t) => nameOfTensor.get(t.id)!);
      const shape = (node.outputTensors[0].shape ?? []).slice(1).map((v) => v ?? NaN);
      if (layer instanceof tf.LayersModel) {
        if (layer.outputs.length !== 1) {
          throw new RangeError(
            `The nested model "${name}" has ${layer.outputs.length} outputs; ` +
              "convlens works with nested models of one output",
          );
        }
        // The nested model's own tensors, its inputs named as the outer layers feeding it.
        const inner = new Map<number, string>(layer.inputs.map((t, i) => [t.id, ins[i]]));
        this.#list(layer, inner, `${name}/`, out);
        for (const t of node.outputTensors) nameOfTensor.set(t.id, name);
        out.push({
          name,
          type,
          inputs: [inner.get(layer.outputs[0].id)!],
          outputShape: shape,
          params: 0,
          role: "pointwise",
        });
        this.#runnable.set(name, null);
        continue;
      }
      for (const t of node.outputTensors) nameOfTensor.set(t.id, name);
      this.#runnable.set(name, layer);
      // deno-lint-ignore no-explicit-any
      const cfg = layer.getConfig() as any;
      let role: LayerRole = ROLE_BY_CLASS[type] ?? "pointwise";
      if (type === "Reshape" && shape.length === 3) role = "pointwise";
      const info: LayerInfo = {
        name,
        type,
        inputs: ins,
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
  }

  /** Runs the layers one by one, so that any of them can be tapped or edited. */
  forward(x: tf.Tensor, request: ForwardRequest): ForwardResult {
    const { layers, logitsName, taps, edits, logits: wantLogits, stopAtTaps: stop } = request;
    const last = layers[layers.length - 1];
    // A softmax or sigmoid fused into the last layer: run it linear for the logits.
    const fusedSoftmax = wantLogits && !logitsName &&
      (last.activation === "softmax" || last.activation === "sigmoid");
    const keep = new Set([...taps, ...(logitsName && wantLogits ? [logitsName] : [])]);
    const fed = request.feeds ?? {};
    // The layers to run: those the output (unless stopping at the taps), the
    // taps and the logits depend on, up to the fed layers.
    const run = new Set<string>(keep);
    if (!stop || fusedSoftmax || (wantLogits && !logitsName)) run.add(last.name);
    for (let i = layers.length - 1; i >= 0; i--) {
      const l = layers[i];
      if (run.has(l.name) && !(l.name in fed)) { for (const n of l.inputs) run.add(n); }
    }
    // Count consumers so that intermediate activations are freed as soon as they
    // are used (inside tf.grad the tape keeps what the backward pass needs).
    const uses = new Map<string, number>();
    for (const l of layers) {
      if (run.has(l.name) && !(l.name in fed)) {
        for (const i of l.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
      }
    }
    // Weights held constant (explaining, not training): batch norm folds into
    // the layer before it unless something looks at that layer's own output,
    // and a gradient through the pass reaches the input alone.
    const recording = tf.engine().state.gradientDepth > 0;
    const constant = this.#constant && (request.constantWeights ?? !recording)
      ? this.#constant
      : undefined;
    const folds = (name: string) => {
      const norm = constant?.normAfter(name);
      return norm !== undefined && run.has(norm) && !keep.has(name) && !(name in edits);
    };
    const folded = new Set<string>();
    // Batch norms whose ReLU is fused into the layer before them too.
    const reluFused = new Set<string>();
    const fusesRelu = (name: string) => {
      const norm = constant?.normAfter(name), relu = constant?.reluAfter(name);
      return !recording && norm !== undefined && relu !== undefined && run.has(relu) &&
        !keep.has(norm) && !(norm in edits);
    };
    const values = new Map<string, tf.Tensor>();
    // A layer has run: its inputs that nothing else needs are freed.
    const release = (info: LayerInfo) => {
      for (const n of info.inputs) {
        const left = (uses.get(n) ?? 1) - 1;
        uses.set(n, left);
        if (left === 0) values.get(n)!.dispose();
      }
    };
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
        if (name === logitsName && wantLogits) result.logits = v.clone();
      }
      values.set(name, v);
    };
    store("input", "input" in fed ? fed.input.clone() : x.clone());
    for (const info of layers) {
      if (info.role === "input" || !run.has(info.name)) continue;
      if (info.name in fed) {
        store(info.name, fed[info.name].clone());
        continue;
      }
      const layer = this.#runnable.get(info.name);
      const ins = info.inputs.map((n) => values.get(n)!);
      let out: tf.Tensor;
      const norm = constant?.reluAfterNorm(info.name);
      if (norm !== undefined && reluFused.has(norm)) {
        // A ReLU fused into the layer before its batch norm: handed over too.
        store(info.name, values.get(norm)!);
        values.delete(norm);
        continue;
      }
      const into = constant?.foldedInto(info.name);
      if (into !== undefined && folded.has(into)) {
        // A batch norm folded into the layer before it: that layer's output is
        // this one's, handed over (its only consumer is this batch norm) rather
        // than copied, which would cost a full copy of the gradient on the way back.
        store(info.name, values.get(into)!);
        values.delete(into);
        continue;
      }
      if (!layer) {
        // A nested model's entry: its last layer already ran.
        out = ins[0];
      } else if (info === last && fusedSoftmax) {
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
        const probs = act.apply(out) as tf.Tensor;
        out.dispose();
        out = probs;
      } else {
        if (constant && recording && info.type === "Add") {
          const sum = constant.add(ins);
          if (sum) {
            out = sum;
            store(info.name, out);
            release(info);
            continue;
          }
        }
        const fold = folds(info.name);
        const relu = fold && fusesRelu(info.name);
        // In a tidy: some layers' calls (ReLU with a maximum) leave an intermediate behind.
        const fast = constant?.has(info.name) && (fold || recording)
          ? tf.tidy(() => constant.run(info.name, ins[0], fold, recording, relu))
          : undefined;
        if (fast && fold) folded.add(info.name);
        if (fast && relu) reluFused.add(constant!.normAfter(info.name)!);
        out = fast ?? tf.tidy(() => layer.apply(ins.length === 1 ? ins[0] : ins) as tf.Tensor);
      }
      // Identity-like layers (Dropout at inference) hand back their input object.
      if (ins.includes(out)) out = out.clone();
      store(info.name, out);
      release(info);
    }
    if (stop) {
      // The taps and logits are copies; what the pass still holds is freed.
      if (wantLogits && !result.logits) result.logits = values.get(last.name)!.clone();
      for (const v of values.values()) if (!v.isDisposed) v.dispose();
      return result;
    }
    result.output = values.get(last.name)!;
    if (wantLogits && !result.logits) result.logits = result.output.clone();
    // What no layer consumed (the input, when fed layers cut it off).
    for (const v of values.values()) if (v !== result.output && !v.isDisposed) v.dispose();
    return result;
  }

  /**
   * The layer object of a listed name (a path for layers inside nested models),
   * `undefined` for a nested model's own entry.
   */
  layer(name: string): tf.layers.Layer | undefined {
    return this.#runnable.get(name) ?? undefined;
  }

  /** Frees the folded weights (the model's own are the Net's to free). */
  dispose(): void {
    this.#constant?.dispose();
  }

  /** The layer's first weight (SeparableConv2D keeps its depthwise kernel first, as wanted). */
  kernel(name: string): tf.Tensor | undefined {
    return this.#runnable.get(name)?.getWeights()[0];
  }
}
