/**
 * The GraphModel side of a Net: its computing nodes as layers (read from the
 * graph's topology, with shapes from one run), and a forward pass through the
 * graph executor in which taps are extra output names and edits are feeds.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { ForwardResult, InputContract, LayerInfo, LayerRole } from "./net.ts";
import { applyEdit, type ForwardRequest, type ModelAdapter } from "./model_adapter.ts";

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

function prod(shape: readonly (number | null)[]): number {
  return shape.reduce((a: number, b) => a * (b ?? 1), 1);
}

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, { list?: { i?: string[] }; s?: string; i?: string; shape?: unknown }>;
}

/** A GraphModel behind the {@linkcode ModelAdapter} interface. */
export class GraphAdapter implements ModelAdapter {
  /** Always `graph`. */
  readonly kind: "graph" = "graph";
  /** The wrapped model. */
  readonly model: tf.GraphModel;
  /** Graph node names of the model's input and output. */
  readonly #input: string;
  readonly #output: string;

  /**
   * @param model A GraphModel with one input.
   * @param output Index of the output to explain (its layers end at that node).
   * @throws {RangeError} for several inputs.
   */
  constructor(model: tf.GraphModel, output = 0) {
    this.model = model;
    this.#input = model.inputs[0].name;
    this.#output = model.outputs[output].name;
    if (model.inputs.length !== 1) {
      throw new RangeError(
        `This model has ${model.inputs.length} inputs; convlens works with single-input image models`,
      );
    }
  }

  /** The input shape without the batch dimension; `NaN` where it is free (-1). */
  inputShape(): number[] {
    const shape = this.model.inputs[0].shape ?? [];
    return shape.slice(1).map((v) => (v == null || v < 0 ? NaN : v));
  }

  /**
   * Every computing node in execution order, the input first; output shapes come
   * from one run on zeros of the input contract's size.
   */
  layers(input: InputContract): LayerInfo[] {
    const g = this.model;
    const nodes = this.#nodes();
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const clean = (s: string) => s.replace(/^\^/, "").replace(/:\d+$/, "");
    const inputName = clean(this.#input);
    // The output shapes of a graph are known only by running it once.
    // With several outputs, only what the explained one depends on is listed.
    const needed = new Set<string>();
    const stack = [clean(this.#output)];
    while (stack.length) {
      const name = stack.pop()!;
      if (needed.has(name)) continue;
      needed.add(name);
      for (const i of byName.get(name)?.input ?? []) stack.push(clean(i));
    }
    const several = g.outputs.length > 1;
    const kept = nodes.filter((n) =>
      !GRAPH_SKIP.has(n.op) && n.name !== inputName && (!several || needed.has(n.name))
    );
    // The input contract, not the placeholder: a graph with free height/width (-1) gets
    // its size from convlens.json.
    const { height, width, channels } = input;
    const zeros = tf.zeros([1, height, width, channels]);
    const shapes = new Map<string, number[]>();
    try {
      const outs = g.execute({ [this.#input]: zeros }, kept.map((n) => n.name)) as
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

  /**
   * Runs the graph with the taps among the asked-for node names; each edit is a
   * pass up to the edited node whose edited value is then fed in its place.
   */
  forward(x: tf.Tensor, request: ForwardRequest): ForwardResult {
    const { layers, taps, edits, logits: wantLogits, stopAtTaps: stop } = request;
    const g = this.model;
    const outName = this.#output;
    const last = layers[layers.length - 1];
    let logitsName = request.logitsName;
    if (wantLogits && !logitsName && last.type === "Softmax") logitsName = last.inputs[0];
    const feeds: Record<string, tf.Tensor> = { [this.#input]: x };
    // Fed activations: the executor stops at fed nodes, so what only they need never runs.
    const fed = Object.entries(request.feeds ?? {});
    for (const [name, t] of fed) feeds[name === "input" ? this.#input : name] = t;
    // The caller's (handed back as copies, never freed here).
    const given = fed.map(([, t]) => t);
    const owned: tf.Tensor[] = [];
    // Each edit is one pass up to the edited node; its edited value is then fed in
    // place of the node, so later passes see it (the executor stops at fed nodes).
    const order = layers.map((l) => l.name);
    const editNames = Object.keys(edits).sort((a, b) => order.indexOf(a) - order.indexOf(b));
    for (const name of editNames) {
      if (name === "input") {
        const v = applyEdit(edits[name], feeds[this.#input]);
        feeds[this.#input] = v;
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
      ...taps.map((t) => (t === "input" ? this.#input : t)),
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
      const mine = t === x || owned.includes(t) || given.includes(t) || seen.has(t) ? t.clone() : t;
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

  /** The weight a conv or matmul node reads as its second input. */
  kernel(name: string): tf.Tensor | undefined {
    const node = this.#nodes().find((n) => n.name === name);
    const src = node?.input?.[1]?.replace(/:\d+$/, "");
    // deno-lint-ignore no-explicit-any
    return src ? (this.model as any).weights?.[src]?.[0] : undefined;
  }

  /** Nothing to free: the graph's weights are the Net's. */
  dispose(): void {}

  #nodes(): GraphNode[] {
    const g = this.model;
    // deno-lint-ignore no-explicit-any
    const topo = (g as any).artifacts?.modelTopology as { node?: GraphNode[] } | undefined;
    return topo?.node ?? [];
  }
}
