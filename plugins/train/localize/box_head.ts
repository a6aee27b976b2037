/**
 * The regression head of "classification + localization" (the lecture's simple
 * recipe: take a trained classifier, attach a new fully-connected "regression
 * head" that outputs a box `(x, y, w, h)`, train the head only, and at test time
 * use both heads). The head attaches at any layer of a Net (conv, pool or dense;
 * a layer inside a nested model by its path `base/conv2`), is class-agnostic (4
 * outputs) or per-class (4 per class; the true class's box is trained, the
 * predicted class's box is read out), and trains with the L2, smooth-L1 or GIoU
 * loss (`box_loss.ts`) while the base stays frozen.
 *
 * The head on a layer with a spatial grid is: average pooling down to at most
 * `grid x grid` cells, flatten, a hidden ReLU dense layer, and a linear dense
 * layer to the box. Not global pooling: a global average throws away where in
 * the grid the object lies, which is the very thing a box needs; flattening the
 * whole grid keeps it but makes the first dense layer huge on early layers
 * (64x64x16 = 65,536 inputs at the canvas model's conv1), so the grid is pooled
 * to a coarse one first (8x8 cells keep position to a few pixels on a 64-pixel
 * image, and the features inside a cell still say where in the cell things are).
 * An optional 1x1 ReLU convolution (`squeeze`) cuts the channels before
 * flattening: on the canvas model's 64-channel stages, 16 channels make the first
 * dense layer four times smaller at about the same IoU (measured here at conv4 with
 * 4,000 training canvases: mean held-out IoU 0.785 squeezed, 0.789 not). On a dense
 * layer the head is the two dense layers alone.
 *
 * Training: the pooling has no weights and the base is frozen, so the pooled
 * features are computed once per image, by the transfer family's `layerFeatures`
 * (adaptive average pooling; inference mode: batch normalization uses its moving
 * statistics, dropout is off), and the head is trained on them with
 * {@linkcode fit} and its `loss` hook (one training loop for the library). The
 * base's weights are never among the trained variables, so they come out bit for
 * bit as they went in. At test time {@linkcode BoxHead.predict} makes one forward
 * pass for the class and the box, and {@linkcode BoxHead.localizer} builds the
 * whole thing as one functional LayersModel (input -> layer -> head) with two
 * outputs, class probabilities and box.
 *
 * @module
 */
import { tf } from "../../../core/tf.ts";
import type { Net } from "../../../core/net.ts";
import { type DataSource, tensorSource } from "../../../core/data/source.ts";
import { type EpochLog, fit } from "../../../core/train/fit.ts";
import type { OptimizerName } from "../../../core/train/optimizers.ts";
import type { Progress } from "../../../core/progress.ts";
import type { Box } from "../../../core/images/grids.ts";
import { adaptiveAvgPool, layerFeatures, pooledGrid } from "../transfer/features.ts";
import { boxesToXywh } from "./iou.ts";
import { boxLoss, type BoxLossName, checkBoxLoss } from "./box_loss.ts";

/** Options of {@linkcode boxFeatures}. */
export interface BoxFeatureOptions {
  /** A layer's grid is average-pooled to at most `grid x grid` cells. @default 8 */
  grid?: number;
  /** Images per forward pass. @default what the memory budget allows, at most 256 */
  batchSize?: number;
}

/** The pooled features of one attach layer over a data set. */
export interface BoxFeatures {
  /** The attach layer. */
  layer: string;
  /** `[n, gh, gw, c]` pooled grid, or `[n, 1, 1, d]` for a dense layer (the caller frees it). */
  features: tf.Tensor4D;
  /** The class label of each image. */
  labels: number[];
  /** The layer's output shape (without the batch axis). */
  shape: number[];
  /** The pooled grid `[gh, gw]` (`[1, 1]` for a vector). */
  grid: [number, number];
  /** Whether the layer's output is a vector (a dense layer) rather than a grid. */
  vector: boolean;
}

/**
 * Checks an attach layer: it must exist and give a grid `[h, w, c]` or a vector.
 * @returns The layer's canonical name and its output shape.
 * @throws {RangeError} naming the layers there are.
 */
function attachLayer(net: Net, layer: string): { name: string; shape: number[] } {
  const info = net.layer(layer);
  const shape = info.outputShape;
  if (shape.length !== 3 && shape.length !== 1) {
    throw new RangeError(
      `Layer "${layer}" gives [${shape}]; a box head attaches to a layer with a grid ` +
        `[h, w, c] or a vector, such as ${
          net.layers.filter((l) => ["conv", "pool", "dense", "global"].includes(l.role))
            .map((l) => l.name).join(", ")
        }`,
    );
  }
  return { name: info.name, shape };
}

/** Pools a tapped activation to the head's input `[n, gh, gw, c]` (or `[n, 1, 1, d]`). */
function poolTap(a: tf.Tensor, grid: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    if (a.rank === 2) return a.reshape([a.shape[0], 1, 1, a.shape[1]!]);
    return adaptiveAvgPool(a as tf.Tensor4D, grid[0], grid[1]);
  });
}

/**
 * The pooled features of attach layers over a data set, computed once with the
 * transfer family's {@linkcode layerFeatures} (the base in inference mode; each
 * grid average-pooled to at most `grid x grid` cells, adaptively).
 *
 * @param net The model (its input contract maps the source's pixels).
 * @param data Images with labels.
 * @param layers Attach layers.
 * @param options Grid and batch size.
 * @returns One entry per layer (the caller frees each `features`).
 * @throws {RangeError} for an unknown layer, or one without a grid or vector.
 */
export async function boxFeatures(
  net: Net,
  data: DataSource,
  layers: readonly string[],
  options: BoxFeatureOptions = {},
): Promise<BoxFeatures[]> {
  const grid = options.grid ?? 8;
  if (!Number.isInteger(grid) || grid < 1) {
    throw new RangeError(`boxFeatures: grid ${grid} must be a positive integer, e.g. 8`);
  }
  const checked = layers.map((l) => attachLayer(net, l));
  const out: BoxFeatures[] = [];
  try {
    for (const { name, shape } of checked) {
      const vector = shape.length === 1;
      // A budget of grid * grid * channels features makes layerFeatures pool to grid x grid.
      const dims = vector ? shape[0] : grid * grid * shape[2];
      const sources = await layerFeatures(net, data, {
        layers: [name],
        dims,
        batchSize: options.batchSize,
      });
      const source = sources.get(name)!;
      const { x, y } = await source.batch(Array.from({ length: source.size }, (_, i) => i));
      const labels = Array.from(await y.data());
      y.dispose();
      out.push({
        layer: name,
        features: x,
        labels,
        shape,
        grid: vector ? [1, 1] : pooledGrid(shape, "grid", dims),
        vector,
      });
    }
    return out;
  } catch (err) {
    for (const f of out) f.features.dispose();
    throw err;
  }
}

/** Options of {@linkcode trainBoxHead}. */
export interface BoxHeadOptions {
  /** Four outputs per class (the true class's box trained) instead of four. @default false */
  perClass?: boolean;
  /** The loss. @default "l2" */
  loss?: BoxLossName;
  /** Units of the hidden ReLU layer; 0 for a linear head. @default 256 */
  hidden?: number;
  /**
   * Channels of a 1x1 ReLU convolution that squeezes a grid's channels before it
   * is flattened (fewer weights in the first dense layer); 0 for none. @default 0
   */
  squeeze?: number;
  /** Passes over the training images. @default 30 */
  epochs?: number;
  /** Images per step. @default 64 */
  batchSize?: number;
  /** The update rule (the lecture names SGD; Adam gets there in fewer epochs). @default "adam" */
  optimizer?: OptimizerName;
  /** Learning rate (cosine-decayed to 0 over the run). @default 0.001 */
  learningRate?: number;
  /** Seed of the head's initializers and of shuffling. @default 0 */
  seed?: number;
  /** Progress reporting. @default silent */
  progress?: Progress;
}

/** What a {@linkcode BoxHead} predicts for a batch (the caller frees the tensors). */
export interface BoxPrediction {
  /** Class probabilities `[n, classes]` of the Net's own classifier. */
  probs: tf.Tensor2D;
  /** The predicted class of each image. */
  classes: number[];
  /** `[n, 4]` normalized `(x, y, w, h)`: the predicted class's box for a per-class head. */
  boxes: tf.Tensor2D;
}

/** A trained box regression head on a frozen Net. */
export interface BoxHead {
  /** The Net it is attached to. */
  readonly net: Net;
  /** The attach layer. */
  readonly layer: string;
  /** Per-class (true) or class-agnostic (false). */
  readonly perClass: boolean;
  /** The loss it was trained with. */
  readonly loss: BoxLossName;
  /** The trainable head: pooled features in, `4` or `4 x classes` box values out. */
  readonly head: tf.LayersModel;
  /** The grid `[gh, gw]` the layer's map is pooled to before the head (`[1, 1]` for a vector). */
  readonly grid: [number, number];
  /** Weights of the head. */
  readonly params: number;
  /** What `fit` logged per epoch (the loss; accuracy is NaN). */
  readonly history: EpochLog[];
  /** Seconds of training steps. */
  readonly trainSeconds: number;
  /**
   * Class and box of each image of a batch, from one forward pass.
   * @param x `[n, h, w, c]` in model input space.
   */
  predict(x: tf.Tensor4D): Promise<BoxPrediction>;
  /**
   * Boxes from features already pooled ({@linkcode boxFeatures} of this head's
   * layer) and a class per image (whose box a per-class head reads out).
   * @param features `[n, gh, gw, c]` pooled features.
   * @param classes One class per image.
   * @returns `[n, 4]` normalized `(x, y, w, h)` (the caller frees it).
   */
  boxesOf(features: tf.Tensor4D, classes: readonly number[]): tf.Tensor2D;
  /**
   * The Net's model and the head as one functional LayersModel (LayersModel Nets
   * only): input -> attach layer -> pooling -> head, with two outputs: the model's
   * output (class probabilities for a softmax classifier) and the raw box values
   * (`4` or `4 x classes`). It is a view made of the Net's and the head's own
   * layers (no copy): it owns nothing, so dispose of the Net and the head as
   * usual and never of it (tfjs would free the Net's layers with it).
   * @throws {RangeError} for a GraphModel Net.
   */
  localizer(): tf.LayersModel;
  /** Frees the head's weights. */
  dispose(): void;
}

/** Picks each row's class box out of `[n, 4 x classes]` (a no-op for `[n, 4]`). */
function classBox(raw: tf.Tensor, classes: tf.Tensor1D, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (raw.shape[1] === 4) return raw.clone() as tf.Tensor2D;
    const n = raw.shape[0];
    return raw.reshape([n, k, 4]).mul(tf.oneHot(classes, k).expandDims(2)).sum(1) as tf.Tensor2D;
  });
}

/**
 * The symbolic output of the layer at `path` (a layer of `model`, or of a model
 * nested in it) in `model`'s own graph, so that a model from `model.inputs` to it
 * reuses `model`'s layers without applying (and so re-counting) any of them.
 */
function layerOutput(model: tf.LayersModel, path: string): tf.SymbolicTensor {
  const direct = model.layers.find((l) => l.name === path);
  if (direct) {
    try {
      return direct.output as tf.SymbolicTensor;
    } catch {
      throw new RangeError(
        `Layer "${path}" is used more than once in the model, so its output is ambiguous; ` +
          "attach the head to a layer used once",
      );
    }
  }
  const nested = model.layers.find((l) =>
    l instanceof tf.LayersModel && path.startsWith(`${l.name}/`)
  ) as tf.LayersModel | undefined;
  if (!nested) throw new RangeError(`The model has no layer "${path}"`);
  const inner = layerOutput(nested, path.slice(nested.name.length + 1));
  // The node where the outer model calls the nested one; a Sequential that starts
  // with a model uses that model's own node (the graphs then share the input).
  const nodes = nested.inboundNodes;
  const call = nodes.find((node) => node.inputTensors[0] !== nested.inputs[0]) ?? nodes[0];
  const feed = call.inputTensors[0];
  if (feed === nested.inputs[0]) return inner;
  // A view of the nested model up to the layer, called where the outer model calls
  // the nested one: it holds no weights of its own.
  const view = tf.model({ inputs: nested.inputs, outputs: inner });
  return view.apply(feed) as tf.SymbolicTensor;
}

/**
 * Trains a box regression head on pooled features of a frozen Net.
 *
 * @param net The model (frozen: its weights are not touched).
 * @param features Pooled features of the attach layer ({@linkcode boxFeatures}).
 * @param boxes The true box of each image, in pixels of the model's input.
 * @param options Per-class or agnostic, loss, size, epochs, optimizer, seed.
 * @returns The trained head (free it with `dispose`).
 * @throws {RangeError} for an unknown loss, options out of range, or boxes that
 *   do not match the features in number.
 */
export async function trainBoxHead(
  net: Net,
  features: BoxFeatures,
  boxes: readonly Box[],
  options: BoxHeadOptions = {},
): Promise<BoxHead> {
  const loss = checkBoxLoss(options.loss ?? "l2");
  const perClass = options.perClass ?? false;
  const hidden = options.hidden ?? 256;
  const seed = options.seed ?? 0;
  const n = features.features.shape[0];
  if (boxes.length !== n) {
    throw new RangeError(`trainBoxHead: ${boxes.length} boxes for ${n} images; give one box each`);
  }
  if (!Number.isInteger(hidden) || hidden < 0) {
    throw new RangeError(`trainBoxHead: hidden ${hidden} must be an integer >= 0`);
  }
  const squeeze = options.squeeze ?? 0;
  if (!Number.isInteger(squeeze) || squeeze < 0) {
    throw new RangeError(`trainBoxHead: squeeze ${squeeze} must be an integer >= 0`);
  }
  const k = net.numClasses;
  const { height, width } = net.input;
  const targets = boxesToXywh(boxes, height, width);
  const [gh, gw, c] = features.features.shape.slice(1);
  // The output starts at the mean box, so training begins from a sensible guess.
  const mean = tf.tidy(() => targets.mean(0).tile([perClass ? k : 1]));
  const head = tf.sequential({
    name: `box_head_${features.layer.replace(/[^A-Za-z0-9_]/g, "_")}`,
    layers: [
      tf.layers.inputLayer({ inputShape: [gh, gw, c], name: "box_features" }),
      // A vector (1x1 grid) has no channels to squeeze apart from its units.
      ...(squeeze > 0 && !features.vector
        ? [tf.layers.conv2d({
          filters: squeeze,
          kernelSize: 1,
          activation: "relu",
          name: "box_squeeze",
          kernelInitializer: tf.initializers.heNormal({ seed: seed * 7 + 3 }),
        })]
        : []),
      tf.layers.flatten({ name: "box_flatten" }),
      ...(hidden > 0
        ? [tf.layers.dense({
          units: hidden,
          activation: "relu",
          name: "box_hidden",
          kernelInitializer: tf.initializers.heNormal({ seed: seed * 7 + 1 }),
        })]
        : []),
      tf.layers.dense({
        units: perClass ? 4 * k : 4,
        name: "box_out",
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 7 + 2 }),
        biasInitializer: tf.initializers.constant({ value: 0 }),
      }),
    ],
  });
  const out = head.getLayer("box_out");
  const [kernel] = out.getWeights();
  const small = tf.tidy(() => kernel.mul(0.1));
  out.setWeights([small, mean]);
  tf.dispose([small, mean]);
  const source = tensorSource(features.features, features.labels, net.labels, "box features");
  try {
    const { history, trainSeconds } = await fit(head, source, {
      epochs: options.epochs ?? 30,
      batchSize: options.batchSize ?? 64,
      seed,
      optimizer: { name: options.optimizer ?? "adam" },
      schedule: { kind: "cosine", learningRate: options.learningRate ?? 0.001 },
      progress: options.progress,
      loss: (output, y, indices) =>
        tf.tidy(() => {
          const t = tf.gather(targets, tf.tensor1d(Int32Array.from(indices), "int32"));
          return boxLoss(loss, classBox(output, y, k), t as tf.Tensor2D);
        }),
    });
    return makeBoxHead(net, features, head, { perClass, loss, history, trainSeconds });
  } catch (err) {
    head.dispose();
    throw err;
  } finally {
    targets.dispose();
  }
}

function makeBoxHead(
  net: Net,
  features: BoxFeatures,
  head: tf.LayersModel,
  trained: { perClass: boolean; loss: BoxLossName; history: EpochLog[]; trainSeconds: number },
): BoxHead {
  const { layer, grid, vector, shape } = features;
  const k = net.numClasses;
  return {
    net,
    layer,
    grid,
    head,
    ...trained,
    params: head.countParams(),
    async predict(x) {
      const [probs, classes, boxes] = tf.tidy(() => {
        const r = net.forward(x, { taps: [layer], logits: true, stopAtTaps: true });
        const probs = net.probabilitiesOf(r.logits!);
        const classes = probs.argMax(1) as tf.Tensor1D;
        const raw = head.predict(poolTap(r.taps[layer], grid)) as tf.Tensor;
        return [probs, classes, classBox(raw, classes, k)];
      });
      const predicted = Array.from(await classes.data());
      classes.dispose();
      return { probs, classes: predicted, boxes };
    },
    boxesOf(f, classes) {
      return tf.tidy(() =>
        classBox(
          head.predict(f) as tf.Tensor,
          tf.tensor1d(Int32Array.from(classes), "int32"),
          k,
        )
      );
    },
    localizer() {
      if (net.kind !== "layers") {
        throw new RangeError(
          "localizer() builds a LayersModel and this Net wraps a GraphModel; use predict()",
        );
      }
      const [h, w] = shape;
      const [gh, gw] = grid;
      // Keras has no adaptive pooling layer: a plain one matches it when the cells are whole.
      if (!vector && (h % gh !== 0 || w % gw !== 0)) {
        throw new RangeError(
          `localizer(): the ${h}x${w} map of "${layer}" is pooled to ${gh}x${gw} cells of ` +
            "unequal sizes, which no Keras layer does; use predict(), or a grid that divides it",
        );
      }
      const model = net.model as tf.LayersModel;
      let f = layerOutput(model, layer);
      if (vector) {
        f = tf.layers.reshape({ targetShape: [1, 1, f.shape[1]!] }).apply(f) as tf.SymbolicTensor;
      } else if (h > gh || w > gw) {
        const poolSize: [number, number] = [h / gh, w / gw];
        f = tf.layers.averagePooling2d({ poolSize, strides: poolSize, padding: "valid" })
          .apply(f) as tf.SymbolicTensor;
      }
      const box = head.apply(f) as tf.SymbolicTensor;
      // Calling the head counted one more user of it in tfjs, which would keep
      // head.dispose() from freeing its weights; the localizer is only a view.
      (head as unknown as { _refCount: number })._refCount--;
      return tf.model({
        inputs: model.inputs,
        outputs: [model.outputs[0], box],
        name: "localizer",
      });
    },
    dispose() {
      head.dispose();
    },
  };
}

/**
 * Attaches a box head at `layer` and trains it: {@linkcode boxFeatures} of the
 * one layer, then {@linkcode trainBoxHead}.
 *
 * @param net The model (frozen).
 * @param data Training images (pixels in [0, 1]) with labels.
 * @param boxes The true box of each image, in pixels.
 * @param layer Where to attach (a layer name or nested path).
 * @param options Head and feature options.
 * @returns The trained head (free it with `dispose`).
 * @throws {RangeError} for an unknown layer or loss, or options out of range.
 */
export async function attachBoxHead(
  net: Net,
  data: DataSource,
  boxes: readonly Box[],
  layer: string,
  options: BoxHeadOptions & BoxFeatureOptions = {},
): Promise<BoxHead> {
  checkBoxLoss(options.loss ?? "l2");
  const [features] = await boxFeatures(net, data, [layer], options);
  try {
    return await trainBoxHead(net, features, boxes, options);
  } finally {
    features.features.dispose();
  }
}
