/**
 * Measured latency per layer: each layer of a LayersModel run alone on the
 * activations that feed it (taken from one forward pass), a few times, the
 * median kept, the result read back so that the time includes the backend's
 * work. Beside the whole model's forward time it shows where the time goes,
 * which multiply-adds alone do not (memory-bound batch norm and elementwise
 * layers, depthwise convs).
 *
 * @module
 */
import { tf } from "../../core/tf.ts";
import type { Net } from "../../core/net.ts";
import { layerAt } from "../../core/layers_adapter.ts";

/** Options of {@linkcode layerLatencies}. */
export interface LatencyOptions {
  /** Timed runs per layer after one warm-up run; the median is kept. @default 3 */
  repeats?: number;
}

/** Per-layer and whole-model times. */
export interface Latencies {
  /** Median milliseconds per layer (layers inside nested models by their path). */
  perLayer: Map<string, number>;
  /** Median milliseconds of the whole forward pass. */
  forwardMs: number;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(repeats: number, run: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    const y = run();
    const ys = Array.isArray(y) ? y : [y];
    for (const t of ys) await t.data();
    const ms = performance.now() - t0;
    tf.dispose(ys);
    if (r > 0) times.push(ms);
  }
  return median(times);
}

/**
 * Times every layer of a LayersModel on a batch.
 *
 * @param net The model (a LayersModel: a GraphModel runs as one graph).
 * @param x A batch in model input space (one image gives batch-1 latency).
 * @param options Repeats.
 * @returns Per-layer medians and the forward pass's median.
 * @throws {RangeError} for a GraphModel or repeats outside 1..100.
 */
export async function layerLatencies(
  net: Net,
  x: tf.Tensor4D,
  options: LatencyOptions = {},
): Promise<Latencies> {
  const repeats = options.repeats ?? 3;
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100) {
    throw new RangeError(`repeats must be a whole number from 1 to 100, got ${repeats}`);
  }
  if (net.kind !== "layers") {
    throw new RangeError(
      "Per-layer latency needs a LayersModel: a GraphModel runs as one graph " +
        "(run summary with latency=false, or load the Keras/LayersModel form)",
    );
  }
  const model = net.model as tf.LayersModel;
  const timedLayers = net.layers.filter((l) => {
    if (l.role === "input") return false;
    // A nested model's own entry passes its inner output on; its layers are timed.
    return !(layerAt(model, l.name) instanceof tf.LayersModel);
  });
  const forwardMs = await timed(repeats, () => net.forward(x).output);
  const { taps, output } = net.forward(x, {
    taps: net.layers.filter((l) => l.role !== "input").map((l) => l.name),
  });
  output.dispose();
  const perLayer = new Map<string, number>();
  try {
    for (const l of timedLayers) {
      const layer = layerAt(model, l.name);
      const ins = l.inputs.map((n) => (n === "input" ? x : taps[n]));
      perLayer.set(
        l.name,
        await timed(repeats, () => layer.apply(ins.length === 1 ? ins[0] : ins) as tf.Tensor),
      );
    }
  } finally {
    tf.dispose(Object.values(taps));
  }
  return { perLayer, forwardMs };
}
