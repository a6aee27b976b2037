/**
 * The one interface between a `Net` (`net.ts`) and the kind of TensorFlow.js model
 * it wraps. A LayersModel (`layers_adapter.ts`) and a GraphModel
 * (`graph_adapter.ts`) differ in how their layers are listed, run, tapped and
 * edited; the Net asks its adapter and never looks at the model's kind itself.
 *
 * @module
 */
import { tf } from "./tf.ts";
import type { Edit, ForwardResult, InputContract, LayerInfo } from "./net.ts";

/** One forward pass as a Net asks it of its adapter, names already checked. */
export interface ForwardRequest {
  /** The Net's layers, in execution order, the input first. */
  layers: readonly LayerInfo[];
  /** The layer giving the logits, when the model or its sidecar names one. */
  logitsName?: string;
  /** Layers whose activations to return. */
  taps: readonly string[];
  /** Layers whose activations to replace on the way through. */
  edits: Readonly<Record<string, Edit>>;
  /** Also return the logits. */
  logits: boolean;
  /** Run only what the taps (and the logits, when asked) depend on. */
  stopAtTaps: boolean;
  /** Activations given in place of layers (see `ForwardOptions.feed`). */
  feeds?: Readonly<Record<string, tf.Tensor>>;
  /** Hold the weights constant (see `ForwardOptions.constantWeights`). */
  constantWeights?: boolean;
}

/** What a Net needs of the model it wraps. */
export interface ModelAdapter {
  /** `layers` for a LayersModel, `graph` for a GraphModel. */
  readonly kind: "layers" | "graph";
  /** The wrapped model. */
  readonly model: tf.LayersModel | tf.GraphModel;
  /** The input shape without the batch dimension; `NaN` where the model leaves it free. */
  inputShape(): number[];
  /**
   * Every layer in execution order, the input first.
   * @param input The Net's input contract (a graph is run once at that size).
   */
  layers(input: InputContract): LayerInfo[];
  /**
   * Runs a batch through with taps and edits.
   * @returns The output (unless stopped at the taps), the logits if asked, the taps;
   * the caller owns them.
   */
  forward(x: tf.Tensor, request: ForwardRequest): ForwardResult;
  /** The first weight of a layer, as the model holds it (not a copy), if it has one. */
  kernel(name: string): tf.Tensor | undefined;
  /** Frees what the adapter made of the model's weights (not the weights themselves). */
  dispose(): void;
}

/**
 * Runs an edit so that the executor owns what it stores: a copy of whatever the
 * edit returns (a tensor the caller holds, such as a gradient variable, is never
 * disposed by the forward pass), with the edit's intermediates freed.
 *
 * @param edit The edit.
 * @param t The activation it replaces.
 * @returns `t` itself when the edit returns it, else a tensor the pass owns.
 */
export function applyEdit(edit: Edit, t: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const r = edit(t);
    return r === t ? t : r.clone();
  });
}
