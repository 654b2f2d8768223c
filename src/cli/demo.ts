/**
 * `npm run demo`: the main job end to end on the default checkpoint of models/default.json (models/tiny-shapes, a
 * tiny PixArt-Σ trained in the repo on synthetic scenes: one coloured shape, a position, a background colour).
 *
 *   node --expose-gc dist/src/cli/demo.js [--out out/demo.png] [--model <dir | org/name>] [--prompt "..."]
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes } from "../memory/probes";
import { PixArtSigmaPipeline } from "../pipeline/pixart-sigma";
import { readDefaults } from "./defaults";
import { ProgressBar } from "./progress";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string" }, model: { type: "string" }, prompt: { type: "string" } } });
  const defaults = await readDefaults();
  const out = path.resolve(values.out ?? "out/demo.png");
  const model = values.model ?? defaults.model;
  const prompt = values.prompt ?? defaults.prompt;
  const { numInferenceSteps, guidanceScale, seed } = defaults;
  const t0 = Date.now();
  const pipe = await PixArtSigmaPipeline.fromPretrained(model);
  const t1 = Date.now();
  const bar = new ProgressBar(numInferenceSteps);
  const { images } = await pipe.call({
    prompt, numInferenceSteps, guidanceScale, seed,
    // The tiny model's 32 px has no aspect-ratio bin table; real checkpoints bin by default.
    useResolutionBinning: false,
    callbackOnStepEnd: ({ step }) => bar.update(step + 1),
  });
  bar.finish();
  const t2 = Date.now();
  const image = images![0];
  const shown = image.enlarged(defaults.displaySize);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await shown.save(out);
  const report = pipe.memoryReport();
  await pipe.dispose();

  const size = shown === image ? `${image.width}×${image.height}`
    : `${shown.width}×${shown.height}: drawn at ${image.width}×${image.height}, each pixel enlarged ×${shown.width / image.width}`;
  console.log(`\nprompt: "${prompt}"\nwrote ${out} (${size})`);
  console.log(`model: ${model}${model === defaults.model ? " (tiny checkpoint trained in the repo by tools/shapes/train.py)" : ""}`);
  console.log(`load ${t1 - t0} ms, generate ${t2 - t1} ms (${numInferenceSteps} steps, CFG ${guidanceScale}, seed ${seed}); ` +
    `peak RSS ${formatBytes(report.process.rssPeak)}`);
  console.log("\nwhere the memory went:\n" + report.toString());
  console.log(`\nThe tiny model knows circles, squares and triangles in red, green, blue, yellow, white or black, at the\n` +
    `top left/right, bottom left/right or in the centre, on a background of one of those colours: try\n` +
    `  npm run demo -- --prompt "a white circle in the centre on a green background"`);
  console.log(`\nReal checkpoint (download it once with \`hf download PixArt-alpha/PixArt-Sigma-XL-2-1024-MS\`, then offline):\n` +
    `  node --expose-gc dist/src/cli/main.js generate "a small cactus with a happy face in the Sahara desert" \\\n` +
    `    --model PixArt-alpha/PixArt-Sigma-XL-2-1024-MS --steps 20 --seed 0 --out cactus.png`);
}

main().catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  console.error(`demo failed: ${err.name}: ${err.message}`);
  process.exit(1);
});
