#!/usr/bin/env node
/**
 * `pixart generate "<prompt>" --model <dir|repo id> --out out.png [options]`
 *
 * Arguments are parsed with commander (help, --version, choices and `--no-*` flags come from one option table);
 * every value is checked, and the output path too, before any model is loaded. Usage errors are one line on
 * stderr with exit code 2; failures while generating are one line with the error's name and exit code 1.
 */
import * as fs from "fs";
import * as path from "path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { resolveModelPath } from "../io/hub-cache";
import { formatBytes, processMemory } from "../memory/probes";
import { imageFormatFor } from "../pipeline/image";
import { PixArtSigmaPipeline } from "../pipeline/pixart-sigma";
import { loadScheduler, SCHEDULER_CLASS_NAMES, type Scheduler } from "../schedulers/scheduler";
import { QUANTIZE_METHODS } from "../models/quantize";
import { ResolutionBinningError } from "../pipeline/resolution-binning";
import { StageProgress, type ProgressStream } from "./progress";
import { generateDefault, generateLowMemory, readGeometry, sizes, type GenerateRequest } from "./generate";

/** Short scheduler names for --scheduler (a full diffusers class name works too). */
export const SCHEDULER_ALIASES: Record<string, string> = {
  dpm: "DPMSolverMultistepScheduler", ddim: "DDIMScheduler", euler: "EulerDiscreteScheduler",
  "euler-a": "EulerAncestralDiscreteScheduler", unipc: "UniPCMultistepScheduler",
};

/** A wrong command line: printed as one line, exit code 2. */
export class CliUsageError extends Error {
  override name = "CliUsageError";
}

export interface CliIo {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

function packageVersion(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, "package.json");
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version;
  }
  return "unknown";
}

// Value parsers: commander puts the option and the value in front of the message ("--steps -3: ...").
const integer = (min: number) => (value: string): number => {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expects an integer");
  if (n < min) throw new InvalidArgumentError(min === 1 ? "must be a positive integer" : `must be at least ${min}`);
  return n;
};

const finite = (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError("expects a number");
  return n;
};

const schedulerName = (value: string): string => {
  const name = SCHEDULER_ALIASES[value] ?? value;
  if (!(SCHEDULER_CLASS_NAMES as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`unknown scheduler; choose one of ${Object.keys(SCHEDULER_ALIASES).join(", ")} ` +
      `(or a class name: ${SCHEDULER_CLASS_NAMES.join(", ")})`);
  }
  return name;
};

interface GenerateFlags {
  model: string;
  out: string;
  steps: number;
  guidance: number;
  height?: number;
  width?: number;
  seed?: number;
  scheduler?: string;
  negativePrompt?: string;
  numImages: number;
  binning: boolean;
  cleanCaption: boolean;
  maxSequenceLength?: number;
  threads?: number;
  revision?: string;
  lowMemory: boolean;
  quantizeTextEncoder?: string;
}

function buildProgram(io: CliIo, run: (prompt: string, flags: GenerateFlags) => Promise<void>): Command {
  const program = new Command("pixart")
    .description("PixArt-Σ text-to-image on onnxruntime-node (the diffusers pipeline in TypeScript)")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show this help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => {} });
  program.command("generate")
    .description("generate images from a prompt")
    .argument("<prompt>", "the prompt")
    .requiredOption("-m, --model <dir|repo id>", "diffusers-format PixArt-Σ folder, or a repo id already in the Hugging Face cache")
    .option("-o, --out <file>", "output file, .png or .jpg; with several images: out-0.png, out-1.png, …", "out.png")
    .option("--steps <n>", "denoising steps", integer(1), 20)
    .option("--guidance <g>", "guidance scale (classifier-free guidance only when > 1)", finite, 4.5)
    .option("--height <px>", "image height (default: the model's native size)", integer(1))
    .option("--width <px>", "image width (default: the model's native size)", integer(1))
    .option("--seed <n>", "seed: the same noise as torch.Generator(\"cpu\").manual_seed(n) (default: random)", integer(0))
    .option("--scheduler <name>", `${Object.keys(SCHEDULER_ALIASES).join(", ")} or a diffusers class name (default: the checkpoint's)`, schedulerName)
    .option("--negative-prompt <text>", "negative prompt (default \"\")")
    .option("--num-images <n>", "images per prompt", integer(1), 1)
    .option("--no-binning", "generate at exactly --height × --width instead of the nearest trained aspect ratio")
    .option("--no-clean-caption", "do not clean the caption (diffusers' clean_caption=False)")
    .option("--max-sequence-length <n>", "prompt tokens (default 300)", integer(1))
    .option("--low-memory", "staged recipe: encode with an int8 T5, remove it, denoise, remove the transformer, decode")
    .addOption(new Option("--quantize-text-encoder <method>", "text encoder weights: int8, int4 or none (default: int8 with --low-memory, else none)")
      .choices([...QUANTIZE_METHODS, "none"]))
    .option("--threads <n>", "onnxruntime intra-op threads", integer(1))
    .option("--revision <rev>", "Hugging Face cache revision", "main")
    .action(async (prompt: string, flags: GenerateFlags) => run(prompt, flags));
  return program;
}

/** The output files: `out` itself, or out-0.png, out-1.png, … for several images. */
export function outputFiles(out: string, count: number): string[] {
  if (count === 1) return [out];
  const ext = path.extname(out);
  const stem = out.slice(0, out.length - ext.length);
  return Array.from({ length: count }, (_, i) => `${stem}-${i}${ext}`);
}

/** Checks the output path before anything is loaded: a known format, in a folder that exists and is writable. */
export function checkOutput(out: string): void {
  try {
    imageFormatFor(out);
  } catch {
    throw new CliUsageError(`--out ${out}: the extension must be .png, .jpg or .jpeg (the format is taken from it)`);
  }
  const dir = path.dirname(path.resolve(out));
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new CliUsageError(`--out ${out}: the folder ${dir} does not exist (create it first)`);
  }
  if (!stat.isDirectory()) throw new CliUsageError(`--out ${out}: ${dir} is not a folder`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new CliUsageError(`--out ${out}: the folder ${dir} is not writable`);
  }
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new CliUsageError(`--out ${out}: is a folder; give a file name`);
}

/** Checks --height/--width/--no-binning against the checkpoint's configs before loading its weights. */
async function checkSize(modelDir: string, flags: GenerateFlags): Promise<void> {
  const geometry = await readGeometry(modelDir);
  let generated: { height: number; width: number };
  try {
    ({ generated } = sizes({ height: flags.height, width: flags.width, useResolutionBinning: flags.binning }, geometry));
  } catch (e) {
    if (!(e instanceof ResolutionBinningError)) throw e;
    throw new CliUsageError(`this checkpoint (transformer sample_size ${geometry.sampleSize}) has no aspect-ratio table for resolution ` +
      "binning (tables exist for 256, 512, 1024 and 2048 px models); pass --no-binning");
  }
  const multiple = geometry.vaeScaleFactor * geometry.patchSize;
  for (const side of ["height", "width"] as const) {
    if (generated[side] % multiple !== 0) {
      throw new CliUsageError(`--${side} ${generated[side]}: must be a multiple of ${multiple} (VAE factor ${geometry.vaeScaleFactor} × ` +
        `patch size ${geometry.patchSize})${flags.binning ? "" : " with --no-binning"}`);
    }
  }
}

/** The checkpoint's scheduler (or --scheduler), read before the models so that --steps is checked up front. */
async function schedulerFor(modelDir: string, className: string | undefined, steps: number): Promise<Scheduler> {
  const scheduler = await loadScheduler(path.join(modelDir, "scheduler"), className);
  const trained = Number(scheduler.config["num_train_timesteps"] ?? 1000);
  if (steps > trained) throw new CliUsageError(`--steps ${steps}: at most ${trained} (the scheduler's num_train_timesteps)`);
  return scheduler;
}

async function generate(prompt: string, flags: GenerateFlags, io: CliIo): Promise<void> {
  checkOutput(flags.out);
  const modelDir = await resolveModelPath(flags.model, { revision: flags.revision });
  await checkSize(modelDir, flags);
  const scheduler = await schedulerFor(modelDir, flags.scheduler, flags.steps);
  const quantize = flags.quantizeTextEncoder ?? (flags.lowMemory ? "int8" : "none");
  const progress = new StageProgress(io.stderr);
  const request: GenerateRequest = {
    modelDir,
    scheduler,
    session: flags.threads === undefined ? {} : { intraOpNumThreads: flags.threads },
    textEncoder: quantize === "none" ? {} : { quantize: quantize as (typeof QUANTIZE_METHODS)[number] },
    progress: progress.listener,
    call: {
      prompt,
      negativePrompt: flags.negativePrompt,
      numInferenceSteps: flags.steps,
      guidanceScale: flags.guidance,
      height: flags.height,
      width: flags.width,
      seed: flags.seed,
      numImagesPerPrompt: flags.numImages,
      useResolutionBinning: flags.binning,
      maxSequenceLength: flags.maxSequenceLength,
      ...(flags.cleanCaption ? {} : { cleanCaption: false }),
    },
  };
  const t0 = Date.now();
  try {
    const images = flags.lowMemory ? await generateLowMemory(request) : await generateDefault(request);
    const files = outputFiles(flags.out, images.length);
    await Promise.all(images.map((img, i) => img.save(files[i])));
    for (const [i, f] of files.entries()) io.stdout.write(`wrote ${path.resolve(f)} (${images[i].width}×${images[i].height})\n`);
  } finally {
    progress.finishBar();
  }
  const mem = processMemory();
  io.stdout.write(`total ${((Date.now() - t0) / 1000).toFixed(1)} s; peak RSS ${formatBytes(mem.rssPeak)}\n`);
}

/** One line: commander's "error: ..." prefix dropped, suggestion lines joined. */
function oneLine(message: string): string {
  return message.replace(/^error:\s*/i, "").replace(/^option '(-[\w-]+, )?(--[\w-]+)[^']*' argument '([^']*)' is invalid\.\s*/, "$2 $3: ").split(/\r?\n/).map((s) => s.trim()).filter(Boolean).join(" ");
}

/** Runs the CLI; resolves to the exit code (0 ok, 1 failed, 2 usage). Never throws. */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let usageError: CommanderError | undefined;
  const program = buildProgram(io, (prompt, flags) => generate(prompt, flags, io));
  try {
    if (argv.length === 0) {
      io.stderr.write(`${program.helpInformation()}`);
      return 2;
    }
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through exitOverride with exit code 0.
      if (e.exitCode === 0) return 0;
      usageError = e;
    }
    if (usageError) {
      io.stderr.write(`pixart: ${oneLine(usageError.message)} (see pixart generate --help)\n`);
      return 2;
    }
    if (e instanceof CliUsageError) {
      io.stderr.write(`pixart: ${oneLine(e.message)}\n`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    const message = err instanceof ResolutionBinningError ? err.message.replace("pass useResolutionBinning: false", "pass --no-binning") : err.message;
    io.stderr.write(`pixart: ${err.name}: ${oneLine(message)}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Exit explicitly: the pipeline's session worker threads would otherwise keep the process alive.
  void main(process.argv.slice(2)).then((code) => {
    process.stdout.write("", () => process.exit(code));
  });
}
