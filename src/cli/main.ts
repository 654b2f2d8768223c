#!/usr/bin/env node
/**
 * `pixart generate "<prompt>" --model <dir|repo id> --out out.png [options]`
 */
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes, processMemory } from "../memory/probes";
import { PixArtSigmaPipeline } from "../pipeline/pixart-sigma";
import { schedulerFromConfig } from "../schedulers/scheduler";
import { ProgressBar } from "./progress";

/** Short scheduler names for --scheduler (a full diffusers class name works too). */
export const SCHEDULER_ALIASES: Record<string, string> = {
  dpm: "DPMSolverMultistepScheduler", ddim: "DDIMScheduler", euler: "EulerDiscreteScheduler",
  "euler-a": "EulerAncestralDiscreteScheduler", unipc: "UniPCMultistepScheduler",
};

const USAGE = `Usage: pixart generate "<prompt>" --model <folder | org/name> [options]

Options:
  --model, -m <dir|repo id>   diffusers-format PixArt-Sigma folder, or a repo id already in the HF cache
  --out, -o <file.png>        output file (default out.png; with several images: out-0.png, out-1.png, …)
  --steps <n>                 number of inference steps (default 20)
  --guidance <g>              guidance scale (default 4.5; CFG only when > 1)
  --height <px> --width <px>  image size (default: the model's native size)
  --seed <n>                  seed (same noise as torch.Generator("cpu").manual_seed(n))
  --scheduler <name>          ${Object.keys(SCHEDULER_ALIASES).join(", ")} (default: the checkpoint's)
  --negative-prompt <text>    negative prompt (default "")
  --num-images <n>            images per prompt (default 1)
  --no-binning                generate at exactly --height × --width instead of the nearest trained aspect ratio
  --threads <n>               onnxruntime intra-op threads
  --revision <rev>            HF cache revision (default main)
`;

export class CliUsageError extends Error {
  override name = "CliUsageError";
}

function intOption(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new CliUsageError(`--${name} expects an integer, got "${v}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string", short: "m" }, out: { type: "string", short: "o" }, steps: { type: "string" },
      guidance: { type: "string" }, height: { type: "string" }, width: { type: "string" }, seed: { type: "string" },
      scheduler: { type: "string" }, "negative-prompt": { type: "string" }, "num-images": { type: "string" },
      "no-binning": { type: "boolean" }, threads: { type: "string" }, revision: { type: "string" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, prompt, ...rest] = positionals;
  if (command !== "generate") throw new CliUsageError(`unknown command "${command}" (expected "generate")`);
  if (prompt === undefined || rest.length > 0) throw new CliUsageError('expected exactly one prompt: pixart generate "<prompt>" --model <dir>');
  if (!values.model) throw new CliUsageError("--model is required (a diffusers folder or a cached repo id)");
  const guidance = values.guidance === undefined ? undefined : Number(values.guidance);
  if (guidance !== undefined && !Number.isFinite(guidance)) throw new CliUsageError(`--guidance expects a number, got "${values.guidance}"`);

  const threads = intOption(values, "threads");
  const steps = intOption(values, "steps") ?? 20;
  const sizes = { height: intOption(values, "height"), width: intOption(values, "width") };
  const seed = intOption(values, "seed");
  const numImagesPerPrompt = intOption(values, "num-images");
  const t0 = Date.now();
  const pipe = await PixArtSigmaPipeline.fromPretrained(values.model, {
    revision: values.revision, session: threads === undefined ? {} : { intraOpNumThreads: threads },
  });
  if (values.scheduler) pipe.scheduler = schedulerFromConfig(pipe.scheduler.config, SCHEDULER_ALIASES[values.scheduler] ?? values.scheduler);
  const loadSeconds = (Date.now() - t0) / 1000;

  const bar = new ProgressBar(steps);
  const t1 = Date.now();
  const result = await pipe.call({
    prompt,
    negativePrompt: values["negative-prompt"],
    numInferenceSteps: steps,
    guidanceScale: guidance,
    ...sizes,
    seed,
    numImagesPerPrompt,
    useResolutionBinning: !values["no-binning"],
    callbackOnStepEnd: ({ step }) => bar.update(step + 1),
  });
  bar.finish();
  const images = result.images ?? [];
  const out = values.out ?? "out.png";
  const files = images.length === 1 ? [out] : images.map((_, i) => out.replace(/(\.png)?$/i, `-${i}.png`));
  await Promise.all(images.map((img, i) => img.save(files[i])));
  const mem = processMemory();
  for (const [i, f] of files.entries()) console.log(`wrote ${path.resolve(f)} (${images[i].width}×${images[i].height})`);
  console.log(`load ${loadSeconds.toFixed(1)} s, generate ${((Date.now() - t1) / 1000).toFixed(1)} s; peak RSS ${formatBytes(mem.rssPeak)}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      console.error(`pixart: ${e.name}: ${e.message}`);
      const usage = e instanceof CliUsageError || String((e as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
      process.exit(usage ? 2 : 1);
    },
  );
}
