import assert from "node:assert/strict";
import { learningCurves } from "../core/plots/learning_curves.ts";
import type { EpochLog } from "../core/train/fit.ts";

function log(epoch: number, withVal: boolean): EpochLog {
  return {
    epoch,
    loss: 1 / epoch,
    accuracy: 1 - 0.5 / epoch,
    ...(withVal ? { valLoss: 1.2 / epoch, valAccuracy: 1 - 0.6 / epoch } : {}),
    learningRate: 0.01,
    seconds: 1,
  };
}

Deno.test("learningCurves() draws the history fit returns, EpochLog[] as is", () => {
  const history: EpochLog[] = [1, 2, 3].map((e) => log(e, true));
  const fromLogs = learningCurves(history, "mnist");
  const fromColumns = learningCurves({
    epoch: history.map((h) => h.epoch),
    loss: history.map((h) => h.loss),
    accuracy: history.map((h) => h.accuracy),
    valLoss: history.map((h) => h.valLoss!),
    valAccuracy: history.map((h) => h.valAccuracy!),
  }, "mnist");
  assert.deepEqual(fromLogs, fromColumns);
  assert.match(fromLogs.loss, />validation<\/text>/);
  assert.match(fromLogs.accuracy!, />mnist: accuracy</);
});

Deno.test("learningCurves() drops a validation curve that some epochs lack", () => {
  const plots = learningCurves([log(1, false), log(2, true)]);
  assert.doesNotMatch(plots.loss, />validation<\/text>/);
  assert.match(plots.loss, />training<\/text>/);
  assert.ok(plots.accuracy?.includes(">training</text>"));
});

Deno.test("learningCurves() rejects columns of different lengths", () => {
  assert.throws(() => learningCurves({ epoch: [1, 2], loss: [1] }), RangeError);
});
