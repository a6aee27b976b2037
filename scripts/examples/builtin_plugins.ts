/**
 * Example: open the built-in MNIST model, run built-in plugins on held-out digits,
 * save their PNGs and JSON, and write a report.
 *
 * `deno run -A scripts/examples/builtin_plugins.ts [out-dir]`
 *
 * @module
 */
import { Lens } from "../../mod.ts";

const out = Deno.args[0] ?? "out/example_builtin";
const lens = await Lens.open({ model: "mnist", count: 2 });
try {
  const results = [
    await lens.run("summary"),
    await lens.run("activations", { layer: "conv1", image: 1 }),
    await lens.run("filters", { layer: "conv1" }),
  ];
  for (const r of results) await r.save(out);
  await lens.report(`${out}/report.html`, results, { title: "Built-in plugins on MNIST" });
  console.log(`parameters: ${results[0].figures.params}`);
  console.log(`conv1 channels: ${results[1].figures.channels}`);
  for (const r of results) r.dispose();
} finally {
  lens.dispose();
}
