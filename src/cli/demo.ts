/**
 * `npm run demo`: the main job end to end on the tiny diffusers-format checkpoint shipped in the repo
 * (random weights, so the picture is noise-like; the point is that every stage runs and where it goes).
 *
 *   node --expose-gc dist/src/cli/demo.js [--out out/demo.png] [--model <dir | org/name>]
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes } from "../memory/probes";
import { PixArtSigmaPipeline } from "../pipeline/pixart-sigma";
import { ProgressBar } from "./progress";

/** The repository root, from dist/src/cli or src/cli. */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json")) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  return dir;
}

/** The tiny checkpoint and the call its reference image was made with (test/fixtures/tiny-square). */
export const DEMO_MODEL = path.join(repoRoot(), "test", "fixtures", "tiny-square", "pipeline");
export const DEMO_CALL = {
  prompt: "A small cactus with a happy face in the Sahara desert.",
  numInferenceSteps: 3,
  guidanceScale: 4.5,
  seed: 0,
  useResolutionBinning: false,
} as const;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string" }, model: { type: "string" } } });
  const out = path.resolve(values.out ?? "out/demo.png");
  const model = values.model ?? DEMO_MODEL;
  const t0 = Date.now();
  const pipe = await PixArtSigmaPipeline.fromPretrained(model);
  const t1 = Date.now();
  const bar = new ProgressBar(DEMO_CALL.numInferenceSteps);
  const { images } = await pipe.call({ ...DEMO_CALL, callbackOnStepEnd: ({ step }) => bar.update(step + 1) });
  bar.finish();
  const t2 = Date.now();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await images![0].save(out);
  const report = pipe.memoryReport();
  await pipe.dispose();

  console.log(`\nwrote ${out} (${images![0].width}×${images![0].height}) for "${DEMO_CALL.prompt}"`);
  console.log(`model: ${model}${model === DEMO_MODEL ? " (tiny random-weight checkpoint shipped in the repo)" : ""}`);
  console.log(`load ${t1 - t0} ms, generate ${t2 - t1} ms (${DEMO_CALL.numInferenceSteps} steps, CFG ${DEMO_CALL.guidanceScale}, seed ${DEMO_CALL.seed}); ` +
    `peak RSS ${formatBytes(report.process.rssPeak)}`);
  console.log("\nwhere the memory went:\n" + report.toString());
  console.log(`\nReal checkpoint (download it once with \`hf download PixArt-alpha/PixArt-Sigma-XL-2-1024-MS\`, then offline):\n` +
    `  node --expose-gc dist/src/cli/main.js generate "a small cactus with a happy face in the Sahara desert" \\\n` +
    `    --model PixArt-alpha/PixArt-Sigma-XL-2-1024-MS --steps 20 --seed 0 --out cactus.png`);
}

main().catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  console.error(`demo failed: ${err.name}: ${err.message}`);
  process.exit(1);
});
