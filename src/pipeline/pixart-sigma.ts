/**
 * PixArtSigmaPipeline: diffusers' text-to-image pipeline for PixArt-Σ, in TypeScript.
 *
 * `call()` reads as diffusers' `__call__`: 1. default size and resolution binning, 2. check inputs,
 * 3. encode the prompt, 4. prepare timesteps, 5. prepare latents, 6. denoising loop, 7. decode, 8. post-process.
 */
import * as path from "path";
import { openPipelineFolder, type PipelineFolder } from "../io/checkpoint";
import { resolveModelPath } from "../io/hub-cache";
import type { WeightCheckOptions } from "../io/weight-scan";
import type { Tensor } from "../models/model";
import { AutoencoderKL } from "../models/autoencoder-kl";
import { PixArtTransformer2DModel } from "../models/pixart-transformer-2d";
import { T5EncoderModel, type T5EncoderLoadOptions } from "../models/t5-encoder";
import { sessionProviders, type SessionConfig } from "../onnx/session";
import { deviceOfProviders, type Device } from "../onnx/device";
import { TorchGenerator } from "../random/torch-generator";
import { randnTensor } from "../random/randn-tensor";
import { loadScheduler, type Scheduler } from "../schedulers/scheduler";
import { DPMSolverMultistepScheduler } from "../schedulers/dpm-solver-multistep";
import { T5Tokenizer, toInt64Tensor } from "../tokenizer/t5-tokenizer";
import { textPreprocessing } from "../tokenizer/text-preprocess";
import { CleanCaptionUnsupportedError } from "../tokenizer/errors";
import { kernelCellSignal, throwIfAborted } from "../runtime/kernel-registry";
import { inspectCustom } from "../runtime/face";
import { pipelineFace } from "./face";
import { ProgressEmitter, type ProgressOption } from "../runtime/progress";
import { CrossAttentionRecorder, resolveAttentionOptions, type AttentionMaps, type AttentionOptions } from "./attention-maps";
import { PixArtImage, postprocessToNhwc } from "./image";
import { binTableFor, classifyHeightWidthBin, resizeAndCrop } from "./resolution-binning";
import { catBatch, classifierFreeGuidance, firstChannels, repeatRows, scale } from "./tensor-ops";
import { ComponentHost, ComponentMissingError, MODEL_NAMES, type ModelName } from "./components";
import { checkFinite, checkFiniteNumber, checkInteger, checkRequestedSide, checkRunFitsMemory, checkTensor, checkTextList, checkTimesteps,
  MAX_IMAGES_PER_PROMPT, MAX_SEQUENCE_LENGTH, PipelineArgumentError, readingArgument } from "./validate";
import { RunLock } from "./run-lock";

export { ComponentMissingError, ComponentStateError } from "./components";
export { NonFiniteTensorError, PipelineArgumentError } from "./validate";
export { PipelineBusyError } from "./run-lock";

export type ComponentName = "tokenizer" | "textEncoder" | "transformer" | "vae" | "scheduler";

/** Folder names in a diffusers pipeline, by component. */
export const COMPONENT_FOLDERS: Record<ComponentName, string> = {
  tokenizer: "tokenizer", textEncoder: "text_encoder", transformer: "transformer", vae: "vae", scheduler: "scheduler",
};

export interface FromPretrainedOptions {
  /** Hugging Face cache revision when a repo id is given (default "main"). */
  revision?: string;
  cacheDir?: string;
  /**
   * A component instance to use, null to leave it out (like diffusers' `text_encoder=None`; load it later with
   * `pipe.load(name)`), or options for loading it from the folder (e.g. `textEncoder: { quantize: "int8" }`).
   */
  tokenizer?: T5Tokenizer | null;
  textEncoder?: T5EncoderModel | null | T5EncoderLoadOptions;
  transformer?: PixArtTransformer2DModel | null | (SessionConfig & WeightCheckOptions);
  vae?: AutoencoderKL | null | (SessionConfig & WeightCheckOptions);
  scheduler?: Scheduler;
  /** onnxruntime options for the sessions created here. */
  session?: SessionConfig;
  /**
   * Scan each model's float weights for NaN and ±Inf as it is loaded (default true; here and in later
   * `pipe.load()` calls, unless a component's options say otherwise): a NonFiniteWeightError names the file
   * and tensor. false skips the scan (it reads every weight byte once; docs/architecture.md has its cost), and
   * a non-finite weight is then caught only as a NonFiniteTensorError at the first stage it reaches.
   */
  checkWeights?: boolean;
  /**
   * Where the models run: "cpu" (default), "cuda" or "cuda:N" (needs `npm run gpu:install`, docs/gpu.md). Per
   * component options (e.g. `transformer: { device: "cuda" }`) override it; `pipe.to(device, name)` moves one later.
   */
  device?: Device;
  /**
   * Progress of this load and, kept as `pipe.progress`, of the pipeline's later calls: false for none, a function
   * for the events (see runtime/progress.ts). Default: a live display in a pixart-ts notebook, nothing elsewhere.
   */
  progress?: ProgressOption;
}

/** The progress option of a single pipeline method; it overrides `pipe.progress`. */
export interface ProgressCallOptions {
  /** Progress events of this call: false for none, a function for the events. Default: `pipe.progress`. */
  progress?: ProgressOption;
}

/** Queueing: one run at a time per pipeline (see `PixArtSigmaPipeline.call`). */
export interface QueueOptions {
  /**
   * Default true: when another `call()`, `encodePrompt()`, `decodeLatents()` or `dispose()` is running on this
   * pipeline, wait for it (first in, first out). false: throw PipelineBusyError at once instead.
   */
  wait?: boolean;
}

export interface EncodePromptOptions extends ProgressCallOptions, QueueOptions {
  /** Also encode the negative prompt (diffusers' `do_classifier_free_guidance`). Default true. */
  doClassifierFreeGuidance?: boolean;
  /** The negative prompt, one for all prompts or one per prompt. Default "" (with classifier-free guidance). */
  negativePrompt?: string | string[];
  /** Images per prompt: the embeddings are repeated this many times. Default 1. */
  numImagesPerPrompt?: number;
  /** Precomputed prompt embeddings [batch, length, 4096] instead of `prompt`. Default: none (encode `prompt`). */
  promptEmbeds?: Tensor;
  /** The attention mask of `promptEmbeds` [batch, length]; required with it. */
  promptAttentionMask?: Tensor<BigInt64Array>;
  /** Precomputed negative prompt embeddings instead of `negativePrompt`. Default: none. */
  negativePromptEmbeds?: Tensor;
  /** The attention mask of `negativePromptEmbeds`; required with it. */
  negativePromptAttentionMask?: Tensor<BigInt64Array>;
  /**
   * diffusers' caption cleaning (URLs, HTML, punctuation runs, ... then lowercasing). `encodePrompt` defaults to
   * false and `call` to true, as in diffusers. When `call` uses it by default and the text needs a part of the
   * cleaner that is not ported (HTML markup or entities, mojibake repair), it warns and falls back to lowercasing,
   * as diffusers does without bs4/ftfy; asked for explicitly, it throws CleanCaptionUnsupportedError instead.
   */
  cleanCaption?: boolean;
  /** Tokens per prompt (padding and truncation length). Default 300, as diffusers' PixArt-Σ pipeline. */
  maxSequenceLength?: number;
}

export interface EncodedPrompt {
  promptEmbeds: Tensor;
  promptAttentionMask: Tensor<BigInt64Array>;
  negativePromptEmbeds?: Tensor;
  negativePromptAttentionMask?: Tensor<BigInt64Array>;
  /** The prompts as tokenized (after preprocessing), one per prompt; absent when promptEmbeds were given. */
  promptTexts?: string[];
}

export interface StepInfo {
  /** 0-based step index. */
  step: number;
  numInferenceSteps: number;
  timestep: number;
  /** Latents after this step. */
  latents: Tensor;
  /** With `attention`, on recorded steps: [blocks, images, image tokens, text tokens] head-mean probabilities. */
  crossAttention?: Tensor;
}

/** What `call()` returns: PixArtImage objects, the final latents, or the decoded float tensor. */
export type OutputType = "image" | "latent" | "tensor";

/**
 * The arguments of `call()`, diffusers' `PixArtSigmaPipeline.__call__` in camelCase. Every field is optional
 * except that a `prompt` or `promptEmbeds` is needed; the defaults are those of diffusers.
 */
export interface CallOptions<O extends OutputType = OutputType> extends Omit<EncodePromptOptions, "doClassifierFreeGuidance"> {
  /** The prompt or prompts. Required unless `promptEmbeds` is given. */
  prompt?: string | string[];
  /** Denoising steps. Default 20 (the length of `timesteps` when those are given). */
  numInferenceSteps?: number;
  /** Custom descending timesteps (schedulers that accept them). Default: none (the scheduler's spacing). */
  timesteps?: number[];
  /** Classifier-free guidance scale; guidance runs only when > 1. Default 4.5. */
  guidanceScale?: number;
  /** Image height in pixels. Default: the transformer's sample size × 8 (1024 for the 1024-MS checkpoint). */
  height?: number;
  /** Image width in pixels. Default: the transformer's sample size × 8. */
  width?: number;
  /**
   * Default true: generate at the nearest trained aspect ratio of the checkpoint's resolution, then resize
   * and centre-crop back to height × width (diffusers' `use_resolution_binning`).
   */
  useResolutionBinning?: boolean;
  /** DDIM's η; ignored by schedulers without it. Default: the scheduler's own (0 for DDIM). */
  eta?: number;
  /** A seed for `new TorchGenerator(seed)` (torch.Generator("cpu").manual_seed). Default: none (random noise). */
  seed?: number;
  /** Torch-identical generators (one, or one per image); wins over `seed`. Default: none. */
  generator?: TorchGenerator | TorchGenerator[];
  /** Initial latents [B, C, h, w] to use instead of drawing noise. Default: none (draw noise). */
  latents?: Tensor;
  /** Default "image". Narrows the return type: `images`, `latents` or `tensor`. */
  outputType?: O;
  /** Called after every step; return false to stop early (the current latents are then decoded). Default: none. */
  callbackOnStepEnd?: (info: StepInfo) => void | boolean | Promise<void | boolean>;
  /**
   * Aborting stops the run between steps (or takes it out of the queue) with the signal's reason. Default: none,
   * except in a pixart-ts notebook kernel, where it is the cell's signal, so Jupyter's interrupt button stops a
   * run after the current step.
   */
  signal?: AbortSignal;
  /**
   * Record cross-attention maps (DAAM-style, see pipeline/attention-maps.ts): true for every block and step, or the
   * blocks and steps (0-based) to record. The transformer then runs its attention-map graph variant on those steps.
   * Default false.
   */
  attention?: boolean | AttentionOptions;
  /**
   * While progress is shown: every n steps also decode the latents with the VAE for the preview (one VAE run each
   * time, counted in the step's time). Default: none (the preview is the cheap linear latent-to-RGB map).
   */
  previewDecodeEvery?: number;
  /**
   * Run the denoising loop inside the transformer's graph, this many steps per onnxruntime run (the last run takes
   * what is left). The text embeddings and position table are then handed to onnxruntime once per run instead of
   * once per step, and the latents stay in its memory between the steps of a run: on a GPU, where onnxruntime-node
   * copies every input from host memory, this removes nearly all the per-step traffic (docs/gpu.md). Progress,
   * previews, `callbackOnStepEnd` and interrupts then happen once per run, after its last step. Needs a deterministic
   * DPMSolverMultistepScheduler (PixArt-Σ's own; no SDE, no thresholding, solver_order ≤ 2) and no `attention`.
   * Default: none (one transformer run per step, the scheduler stepping in JavaScript).
   */
  stepsPerRun?: number;
}

interface OutputBase {
  /** Steps run (fewer than asked when a callback stopped the run). */
  stepsRun: number;
  /** With the `attention` option: cross-attention maps per image and word (pipeline/attention-maps.ts). */
  attention?: AttentionMaps;
}

/**
 * Where the latest denoising loop got to (`pipe.lastRun`, and `partialRun` on the error that stopped it): after an
 * interrupt, `latents` are those of the last finished step, to decode (`pipe.decodeLatents(run.latents)`) or inspect.
 */
export interface PartialRun {
  stepsRun: number;
  numInferenceSteps: number;
  timesteps: number[];
  /** Latents after step `stepsRun` (the initial noise when no step finished). */
  latents: Tensor;
  finished: boolean;
}

/** outputType "image" (the default): one image per prompt × numImagesPerPrompt. */
export interface ImageOutput extends OutputBase {
  images: PixArtImage[];
  latents?: undefined;
  tensor?: undefined;
}

/** outputType "latent": the final latents, not scaled (decode them with `decodeLatents`). */
export interface LatentOutput extends OutputBase {
  latents: Tensor;
  images?: undefined;
  tensor?: undefined;
}

/** outputType "tensor": NHWC float32 in [0, 1] (diffusers `output_type="np"`). */
export interface TensorOutput extends OutputBase {
  tensor: Tensor;
  images?: undefined;
  latents?: undefined;
}

/** The output for an outputType: `call({ outputType: "latent" })` resolves to a LatentOutput, and so on. */
export type PipelineOutput<O extends OutputType = OutputType> =
  O extends "latent" ? LatentOutput : O extends "tensor" ? TensorOutput : ImageOutput;

/** What the in-graph denoising loop reads (see PixArtSigmaPipeline.denoiseInGraph). */
interface InGraphLoop {
  transformer: PixArtTransformer2DModel;
  scheduler: DPMSolverMultistepScheduler;
  embeds: Tensor;
  mask: Tensor<BigInt64Array>;
  guidanceScale: number | null;
  run: PartialRun;
  progress: ProgressEmitter;
  signal: AbortSignal | undefined;
}

interface Models extends Record<ModelName, T5EncoderModel | PixArtTransformer2DModel | AutoencoderKL | null> {
  textEncoder: T5EncoderModel | null;
  transformer: PixArtTransformer2DModel | null;
  vae: AutoencoderKL | null;
}

/** Load options kept per model for `load()`. */
export type LoadOptions = Partial<Record<ModelName, (SessionConfig & WeightCheckOptions) | T5EncoderLoadOptions>>;

export class PixArtSigmaPipeline extends ComponentHost<Models> {
  tokenizer: T5Tokenizer | null;
  scheduler: Scheduler;
  /** The latest call's denoising loop: its last finished step's latents survive an interrupt (see PartialRun). */
  lastRun?: PartialRun;
  /** Progress for calls that do not pass their own `progress` option (see FromPretrainedOptions.progress). */
  progress?: ProgressOption;
  private readonly runs = new RunLock();
  /** fromPretrained's checkWeights, for every later load() too. */
  private weightCheck: WeightCheckOptions = {};

  constructor(components: { tokenizer: T5Tokenizer | null; textEncoder: T5EncoderModel | null; transformer: PixArtTransformer2DModel | null;
    vae: AutoencoderKL | null; scheduler: Scheduler }, readonly source?: PipelineFolder, readonly sessionConfig: SessionConfig = {},
    private readonly loadOptions: LoadOptions = {}) {
    super({ textEncoder: components.textEncoder, transformer: components.transformer, vae: components.vae });
    this.tokenizer = components.tokenizer;
    this.scheduler = components.scheduler;
  }

  // Served by the Proxy of ComponentHost: reading gives the model or null; assigning null, `delete` or
  // `unload()` removes it and releases its session. Optional so that `delete pipe.transformer` type-checks.
  declare textEncoder?: T5EncoderModel | null;
  declare transformer?: PixArtTransformer2DModel | null;
  declare vae?: AutoencoderKL | null;

  /** The model folder's name, for the kernel's memory panel. */
  override get memoryLabel(): string {
    return this.source ? path.basename(path.resolve(this.source.dir)) : "pipeline";
  }

  /** The short face (components loaded or not, scheduler, size); `inspect(pipe)` from display/ shows everything. */
  [inspectCustom](): string {
    return pipelineFace(this);
  }

  /** Loads a diffusers-format PixArt-Σ folder, or a repo id already in the Hugging Face cache (offline). */
  static async fromPretrained(dirOrRepoId: string, options: FromPretrainedOptions = {}): Promise<PixArtSigmaPipeline> {
    const dir = await resolveModelPath(dirOrRepoId, { revision: options.revision, cacheDir: options.cacheDir });
    const folder = await openPipelineFolder(dir);
    const loadOptions: LoadOptions = {};
    for (const name of ["textEncoder", "transformer", "vae"] as const) {
      const v = options[name];
      if (v && !(v instanceof T5EncoderModel || v instanceof PixArtTransformer2DModel || v instanceof AutoencoderKL)) loadOptions[name] = v;
    }
    const pipe = new PixArtSigmaPipeline({
      tokenizer: options.tokenizer ?? null,
      textEncoder: options.textEncoder instanceof T5EncoderModel ? options.textEncoder : null,
      transformer: options.transformer instanceof PixArtTransformer2DModel ? options.transformer : null,
      vae: options.vae instanceof AutoencoderKL ? options.vae : null,
      scheduler: options.scheduler ?? (await loadScheduler(path.join(dir, "scheduler"))),
    }, folder, options.device === undefined ? options.session : { ...options.session, device: options.device }, loadOptions);
    if (options.progress !== undefined) pipe.progress = options.progress;
    if (options.checkWeights !== undefined) pipe.weightCheck = { checkWeights: options.checkWeights };
    try {
      await ProgressEmitter.run("fromPretrained", options.progress, async (progress) => {
        if (options.tokenizer === undefined && folder.components.has("tokenizer")) await pipe.loadComponent("tokenizer", undefined, progress);
        for (const name of ["textEncoder", "transformer", "vae"] as const) {
          const v = options[name];
          const wanted = v === undefined || (v !== null && loadOptions[name] !== undefined);
          if (wanted && folder.components.has(COMPONENT_FOLDERS[name])) await pipe.loadComponent(name, undefined, progress);
        }
      });
    } catch (e) {
      // The components loaded before the one that failed: release their sessions now, not when V8 collects them.
      await pipe.dispose().catch(() => undefined);
      throw e;
    }
    return pipe;
  }

  /** Loads one component from the pipeline folder (after it was left out or removed). */
  async load(name: ModelName | "tokenizer", options?: (SessionConfig & WeightCheckOptions) | T5EncoderLoadOptions, call: ProgressCallOptions = {}): Promise<void> {
    await ProgressEmitter.run("load", call.progress ?? this.progress, (progress) => this.loadComponent(name, options, progress));
  }

  private async loadComponent(name: ModelName | "tokenizer", options: (SessionConfig & WeightCheckOptions) | T5EncoderLoadOptions | undefined, progress: ProgressEmitter): Promise<void> {
    if (!this.source) throw new PipelineArgumentError("name", `this pipeline was not made by fromPretrained, so there is no folder to load "${name}" from`);
    if (!["tokenizer", ...MODEL_NAMES].includes(name)) {
      throw new PipelineArgumentError("name", `expected "tokenizer", "textEncoder", "transformer" or "vae", got ${JSON.stringify(name)}`);
    }
    const dir = path.join(this.source.dir, COMPONENT_FOLDERS[name]);
    if (name === "tokenizer") {
      this.tokenizer = await progress.stage("load", "load tokenizer", { component: name }, () => T5Tokenizer.fromPretrained(dir));
      return;
    }
    if (this.models[name]) throw new PipelineArgumentError("name", `pipe.${name} is already loaded; remove it first (delete pipe.${name})`);
    const opts = { ...this.sessionConfig, ...this.weightCheck, ...(options ?? this.loadOptions[name] ?? {}) };
    const gpuBefore = this.gpuReading(deviceOfProviders(sessionProviders(opts)).kind === "cuda");
    await progress.stage("load", `load ${name}`, { component: name }, async () => {
      if (name === "textEncoder") this.models.textEncoder = await T5EncoderModel.fromPretrained(dir, opts);
      else if (name === "transformer") this.models.transformer = await PixArtTransformer2DModel.fromPretrained(dir, opts);
      else this.models.vae = await AutoencoderKL.fromPretrained(dir, opts);
    });
    this.loaded(name, gpuBefore);
  }

  /**
   * Removes every model and waits for their sessions to be released. Queued like a run: it waits for running
   * and queued calls to finish first. `await using pipe = await PixArtSigmaPipeline.fromPretrained(...)` calls it
   * at the end of the scope.
   */
  async dispose(): Promise<void> {
    await this.runs.run("dispose()", async () => {
      for (const name of ["textEncoder", "transformer", "vae"] as const) if (this.models[name]) this.unload(name);
      await this.flush();
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** VAE downsampling factor (8 for the SDXL VAE). */
  get vaeScaleFactor(): number {
    return this.vae ? this.vae.scaleFactor : 8;
  }

  /** diffusers' `encode_prompt`: embeddings and masks for the prompts (and the negative prompts with CFG). */
  async encodePrompt(prompt: string | string[] | undefined, options: EncodePromptOptions = {}): Promise<EncodedPrompt> {
    if (prompt !== undefined) checkTextList("prompt", prompt);
    checkEncodeOptions(options);
    return this.runs.run("encodePrompt()", () => ProgressEmitter.run("encodePrompt", options.progress ?? this.progress,
      (progress) => this.encode(prompt, options, options.cleanCaption ?? false, progress)), { wait: options.wait });
  }

  private async encode(prompt: string | string[] | undefined, options: EncodePromptOptions, cleanCaption: boolean | "auto",
    progress: ProgressEmitter): Promise<EncodedPrompt> {
    const n = options.numImagesPerPrompt ?? 1;
    const maxLength = options.maxSequenceLength ?? 300;
    let promptEmbeds = options.promptEmbeds;
    let promptAttentionMask = options.promptAttentionMask;
    let promptTexts: string[] | undefined;
    if (!promptEmbeds) {
      const encoded = await this.encodeTexts("prompt", toList(prompt ?? []), maxLength, cleanCaption, progress);
      promptEmbeds = encoded.embeds;
      promptAttentionMask = encoded.mask;
      promptTexts = encoded.texts;
    }
    if (!promptAttentionMask) throw new PipelineArgumentError("promptAttentionMask", "must be given with promptEmbeds");
    const batch = promptEmbeds.dims[0];
    const result: EncodedPrompt = { promptEmbeds: repeatRows(promptEmbeds, n), promptAttentionMask: repeatRows(promptAttentionMask, n) };
    if (promptTexts) result.promptTexts = promptTexts;
    if (options.doClassifierFreeGuidance === false) return result;

    let negEmbeds = options.negativePromptEmbeds;
    let negMask = options.negativePromptAttentionMask;
    if (!negEmbeds) {
      const negative = options.negativePrompt ?? "";
      const texts = typeof negative === "string" ? Array(batch).fill(negative) : negative;
      if (texts.length !== batch) {
        throw new PipelineArgumentError("negativePrompt", `has ${texts.length} entries but there are ${batch} prompts`);
      }
      const encoded = await this.encodeTexts("negative prompt", texts, promptEmbeds.dims[1], cleanCaption, progress);
      negEmbeds = encoded.embeds;
      negMask = encoded.mask;
    }
    if (!negMask) throw new PipelineArgumentError("negativePromptAttentionMask", "must be given with negativePromptEmbeds");
    result.negativePromptEmbeds = repeatRows(negEmbeds, n);
    result.negativePromptAttentionMask = repeatRows(negMask, n);
    return result;
  }

  private async encodeTexts(what: string, texts: string[], maxLength: number, cleanCaption: boolean | "auto",
    progress: ProgressEmitter): Promise<{ embeds: Tensor; mask: Tensor<BigInt64Array>; texts: string[] }> {
    if (!this.tokenizer) throw new ComponentMissingError("tokenizer", "to encode prompts");
    if (!this.textEncoder) throw new ComponentMissingError("textEncoder", "to encode prompts (or pass promptEmbeds)");
    const preprocessed = preprocess(texts, cleanCaption);
    const batch = this.tokenizer.encode(preprocessed, { maxLength, padding: "max_length", truncation: true });
    const inputIds = toInt64Tensor(batch.inputIds);
    const mask = toInt64Tensor(batch.attentionMask);
    const textEncoder = this.textEncoder;
    const label = `encode ${what}${texts.length > 1 ? ` ×${texts.length}` : ""}`;
    const embeds = await progress.stage("encode", label, { component: "textEncoder" },
      () => this.stage(label, "textEncoder", () => textEncoder.forward({ inputIds, attentionMask: mask })));
    checkFinite(`${label} (text encoder output)`, embeds);
    return { embeds, mask, texts: preprocessed };
  }

  /**
   * Generates images: diffusers' `PixArtSigmaPipeline.__call__` with the same arguments and defaults.
   *
   * One run at a time: calls made while another `call()`, `encodePrompt()`, `decodeLatents()` or `dispose()`
   * runs on this pipeline wait for it in order (so `Promise.all` over several calls gives each the image it
   * would give alone), or throw PipelineBusyError with `wait: false`.
   */
  async call<O extends OutputType = "image">(options: CallOptions<O>): Promise<PipelineOutput<O>> {
    if (typeof options !== "object" || options === null) throw new PipelineArgumentError("options", "call() takes an options object, e.g. { prompt: \"...\" }");
    const signal = options.signal ?? kernelCellSignal();
    const lock = this.runs.acquire("call()", { wait: options.wait, signal });
    const release = typeof lock === "function" ? lock : await lock;
    try {
      const output = await this.busy(() => ProgressEmitter.run("call", options.progress ?? this.progress, (progress) => this.generate(options, progress, signal)));
      return output as PipelineOutput<O>;
    } finally {
      release();
    }
  }

  private async generate(options: CallOptions, progress: ProgressEmitter, signal: AbortSignal | undefined): Promise<ImageOutput | LatentOutput | TensorOutput> {
    const transformer = this.transformer;
    if (!transformer) throw new ComponentMissingError("transformer", "to denoise");
    this.checkCallArguments(options);
    const numInferenceSteps = options.timesteps ? options.timesteps.length : options.numInferenceSteps ?? 20;
    const guidanceScale = options.guidanceScale ?? 4.5;
    const numImagesPerPrompt = options.numImagesPerPrompt ?? 1;
    const outputType = options.outputType ?? "image";

    // 1. Default height and width, and resolution binning.
    const defaultSize = transformer.config.sampleSize * this.vaeScaleFactor;
    let height = options.height ?? defaultSize;
    let width = options.width ?? defaultSize;
    const origHeight = height;
    const origWidth = width;
    const binning = options.useResolutionBinning ?? true;
    if (binning) ({ height, width } = classifyHeightWidthBin(height, width, binTableFor(transformer.config.sampleSize)));

    // 2. Check inputs.
    this.checkInputs(options, { height, width, numInferenceSteps, guidanceScale, numImagesPerPrompt, outputType });
    const doCfg = guidanceScale > 1;
    const batch0 = options.promptEmbeds ? options.promptEmbeds.dims[0]! * numImagesPerPrompt : toList(options.prompt ?? []).length * numImagesPerPrompt;
    if (outputType !== "latent") {
      checkRunFitsMemory({ batch: batch0, height, width, outHeight: binning ? Math.round(origHeight) : height, outWidth: binning ? Math.round(origWidth) : width });
    }

    // 3. Encode the prompt; with CFG the unconditional half goes first.
    const encoded = await this.encode(options.prompt, { ...options, doClassifierFreeGuidance: doCfg }, options.cleanCaption ?? "auto", progress);
    let embeds = encoded.promptEmbeds;
    let mask = encoded.promptAttentionMask;
    if (doCfg) {
      embeds = catBatch(encoded.negativePromptEmbeds!, embeds);
      mask = catBatch(encoded.negativePromptAttentionMask!, mask);
    }
    const batch = encoded.promptEmbeds.dims[0];

    // 4. Timesteps.
    const scheduler = this.scheduler;
    if (options.timesteps) scheduler.setTimesteps(null, { timesteps: options.timesteps });
    else scheduler.setTimesteps(numInferenceSteps);
    const timesteps = scheduler.timesteps;

    // 5. Latents: noise from torch-identical generators, scaled by the scheduler.
    const latentShape = [batch, transformer.config.inChannels, Math.floor(height / this.vaeScaleFactor), Math.floor(width / this.vaeScaleFactor)];
    const generator = options.generator ?? (options.seed !== undefined ? new TorchGenerator(options.seed) : undefined);
    let latents: Tensor = options.latents
      ? { data: Float32Array.from(options.latents.data), dims: [...options.latents.dims] }
      : { data: randnTensor(latentShape, generator), dims: latentShape };
    this.checkShape("latents", latents.dims, latentShape);
    latents = scale(latents, scheduler.initNoiseSigma);

    // 6. Denoising loop (recording cross-attention of the conditional half when asked).
    const recorder = options.attention ? new CrossAttentionRecorder(resolveAttentionOptions(options.attention, transformer.config.numLayers, timesteps.length)) : undefined;
    let stepsRun = 0;
    const denoiseLabel = `denoise (${timesteps.length} steps)`;
    const run: PartialRun = { stepsRun: 0, numInferenceSteps: timesteps.length, timesteps: [...timesteps], latents, finished: false };
    this.lastRun = run;
    if (transformer.cacheConfig && (recorder || options.stepsPerRun !== undefined)) {
      throw new PipelineArgumentError(recorder ? "attention" : "stepsPerRun",
        `cannot be combined with the transformer's step cache (${transformer.cacheConfig.method}); call pipe.transformer.disableCache() first`);
    }
    const inGraph = options.stepsPerRun === undefined ? undefined : this.inGraphScheduler(timesteps.length, recorder);
    // Every call starts with a full step (a cache from an earlier call is of other latents).
    transformer.resetCache();
    latents = await progress.stage("denoise", denoiseLabel, { component: "transformer", totalSteps: timesteps.length }, () => this.stage(denoiseLabel, "transformer", async () => {
      if (inGraph) {
        const loop = { transformer, scheduler: inGraph, embeds, mask, guidanceScale: doCfg ? guidanceScale : null, run, progress, signal };
        ({ latents, stepsRun } = await this.denoiseInGraph(loop, latents, options));
        return latents;
      }
      for (const [i, t] of timesteps.entries()) {
        run.latents = latents;
        run.stepsRun = stepsRun;
        throwIfAborted(signal);
        const modelInput = doCfg ? catBatch(latents, latents) : latents;
        const scaled = { data: scheduler.scaleModelInput(modelInput.data, t), dims: modelInput.dims };
        const input = { hiddenStates: scaled, encoderHiddenStates: embeds, encoderAttentionMask: mask, timestep: new Array(modelInput.dims[0]).fill(t) };
        let noisePred: Tensor;
        let crossAttention: Tensor | undefined;
        if (recorder?.records(i)) {
          ({ sample: noisePred, crossAttention } = await transformer.forwardWithCrossAttention(input, { layers: recorder.layers, rowStart: doCfg ? batch : 0 }));
          recorder.add(i, crossAttention);
        } else {
          noisePred = await transformer.forward(input);
        }
        if (doCfg) noisePred = classifierFreeGuidance(noisePred, guidanceScale);
        // Learned sigma: the model predicts [ε, variance]; the scheduler takes ε.
        if (transformer.config.outChannels / 2 === latentShape[1]) noisePred = firstChannels(noisePred, latentShape[1]);
        const stepOptions = { generator, shape: latents.dims, ...(options.eta === undefined ? {} : { eta: options.eta }) };
        latents = { data: scheduler.step(noisePred.data, t, latents.data, stepOptions), dims: latents.dims };
        checkFinite("denoise (latents after the scheduler step)", latents, i);
        stepsRun = i + 1;
        progress.step(stepsRun, timesteps.length, t, latents, await this.previewDecode(progress, stepsRun, latents, options.previewDecodeEvery));
        const go = await options.callbackOnStepEnd?.({ step: i, numInferenceSteps: timesteps.length, timestep: t, latents, ...(crossAttention && { crossAttention }) });
        if (go === false) break;
      }
      return latents;
    }).catch((e: unknown) => {
      if (e !== null && typeof e === "object" && Object.isExtensible(e)) Object.assign(e, { partialRun: run });
      throw e;
    }));
    Object.assign(run, { latents, stepsRun, finished: true });
    const output = binning ? { height: origHeight, width: origWidth } : { height, width };
    const attention = recorder && this.attentionMaps(recorder, encoded, options.maxSequenceLength ?? 300, numImagesPerPrompt,
      [latentShape[2] / transformer.config.patchSize, latentShape[3] / transformer.config.patchSize], { height, width }, output);
    if (outputType === "latent") return { latents, stepsRun, ...(attention && { attention }) };

    // 7. Decode, and undo the binning. 8. Post-process.
    const tensor = await this.decodeToTensor(latents, binning ? { height: origHeight, width: origWidth } : {}, progress);
    if (outputType === "tensor") return { tensor, stepsRun, ...(attention && { attention }) };
    return { images: toImages(tensor), stepsRun, ...(attention && { attention }) };
  }

  /** The scheduler as the in-graph loop needs it, or PipelineArgumentError("stepsPerRun") saying why it cannot run. */
  private inGraphScheduler(steps: number, recorder: CrossAttentionRecorder | undefined): DPMSolverMultistepScheduler {
    const scheduler = this.scheduler;
    if (recorder) throw new PipelineArgumentError("stepsPerRun", "cannot be combined with attention (the attention maps need the step-by-step loop)");
    if (!(scheduler instanceof DPMSolverMultistepScheduler)) {
      throw new PipelineArgumentError("stepsPerRun", `the in-graph denoising loop needs a DPMSolverMultistepScheduler, got ${scheduler.className}`);
    }
    const why = scheduler.linearStepPlanUnsupported(steps);
    if (why !== null) throw new PipelineArgumentError("stepsPerRun", `the scheduler cannot run inside the graph: ${why}`);
    return scheduler;
  }

  /**
   * Step 6 with the loop inside the transformer's graph: runs of `stepsPerRun` steps, each followed by what the
   * step-by-step loop does after a step (finite check, progress, preview, callback), for the run's last step.
   */
  private async denoiseInGraph(loop: InGraphLoop, latents: Tensor, options: CallOptions): Promise<{ latents: Tensor; stepsRun: number }> {
    const { scheduler, run, progress } = loop;
    const timesteps = scheduler.timesteps;
    let stepsRun = 0;
    while (stepsRun < timesteps.length) {
      run.latents = latents;
      run.stepsRun = stepsRun;
      throwIfAborted(loop.signal);
      const count = Math.min(options.stepsPerRun!, timesteps.length - stepsRun);
      const out = await loop.transformer.denoiseLoop({ latents, encoderHiddenStates: loop.embeds, encoderAttentionMask: loop.mask,
        guidanceScale: loop.guidanceScale, plan: scheduler.linearStepPlan(count), previousModelOutput: scheduler.lastModelOutput });
      scheduler.commitLinearSteps(count, out.modelOutput.data);
      latents = out.latents;
      const before = stepsRun;
      stepsRun += count;
      const i = stepsRun - 1;
      checkFinite("denoise (latents after the scheduler step)", latents, i);
      const every = options.previewDecodeEvery;
      const previewDue = every !== undefined && Math.floor(stepsRun / every) > Math.floor(before / every);
      progress.step(stepsRun, timesteps.length, timesteps[i], latents, await this.previewDecode(progress, stepsRun, latents, previewDue ? 1 : undefined));
      const go = await options.callbackOnStepEnd?.({ step: i, numInferenceSteps: timesteps.length, timestep: timesteps[i], latents });
      if (go === false) break;
    }
    return { latents, stepsRun };
  }

  /** The recorded cross-attention as maps per image and word: image row r shows prompt ⌊r / numImagesPerPrompt⌋. */
  private attentionMaps(recorder: CrossAttentionRecorder, encoded: EncodedPrompt, maxLength: number, numImagesPerPrompt: number,
    grid: [number, number], generation: { height: number; width: number }, output: { height: number; width: number }): AttentionMaps {
    const tokenizer = this.tokenizer;
    const [rows, len] = encoded.promptAttentionMask.dims;
    return recorder.finish({
      tokenizer, maxLength, grid, generation, output,
      rows: Array.from({ length: rows }, (_, r) => {
        const prompt = encoded.promptTexts?.[Math.floor(r / numImagesPerPrompt)];
        let count = 0;
        for (let k = 0; k < len; k++) count += Number(encoded.promptAttentionMask.data[r * len + k]);
        const ids = prompt !== undefined && tokenizer ? tokenizer.encode(prompt, { maxLength, padding: "longest" }).inputIds[0] : undefined;
        return { prompt, ids, count };
      }),
    });
  }

  /**
   * Latents → images, the last stage on its own (for the staged recipe: denoise with outputType "latent",
   * remove the transformer, then decode). `height`/`width`: the size asked for before resolution binning,
   * to resize and centre-crop back to.
   */
  async decodeLatents(latents: Tensor, options: { height?: number; width?: number } & ProgressCallOptions & QueueOptions = {}): Promise<PixArtImage[]> {
    return this.runs.run("decodeLatents()", async () => toImages(await this.busy(() => ProgressEmitter.run("decodeLatents", options.progress ?? this.progress,
      (progress) => this.decodeToTensor(latents, options, progress)))), { wait: options.wait });
  }

  /** The VAE-decoded preview for progress listeners on every n-th step (see CallOptions.previewDecodeEvery). */
  private async previewDecode(progress: ProgressEmitter, step: number, latents: Tensor, every: number | undefined): Promise<Tensor | undefined> {
    const vae = this.vae;
    if (every === undefined || !progress.active || !vae || step % every !== 0) return undefined;
    return postprocessToNhwc(await vae.decode(latents));
  }

  private async decodeToTensor(latents: Tensor, size: { height?: number; width?: number }, progress: ProgressEmitter): Promise<Tensor> {
    const vae = this.vae;
    if (!vae) throw new ComponentMissingError("vae", "to decode latents (or use outputType: \"latent\")");
    let image = await progress.stage("decode", "decode", { component: "vae" }, () => this.stage("decode", "vae", () => vae.decode(latents)));
    checkFinite("decode (VAE output)", image);
    // Resize in [-1, 1] space before the clamp, as diffusers does.
    const [height, width] = [size.height ?? image.dims[2], size.width ?? image.dims[3]];
    if (height !== image.dims[2] || width !== image.dims[3]) image = resizeAndCrop(image.data, image.dims, height, width);
    return postprocessToNhwc(image);
  }

  /** Types, ranges and tensor sizes, before anything is allocated (checkInputs follows once sizes are binned). */
  private checkCallArguments(options: CallOptions): void {
    readingArgument("options", () => this.checkCallArgumentsUnsafe(options));
  }

  private checkCallArgumentsUnsafe(options: CallOptions): void {
    checkRequestedSide("height", options.height);
    checkRequestedSide("width", options.width);
    if (options.prompt !== undefined) checkTextList("prompt", options.prompt);
    const numTrain = Number(this.scheduler.config["num_train_timesteps"] ?? 1000);
    if (options.timesteps !== undefined) checkTimesteps(options.timesteps, numTrain);
    else if (options.numInferenceSteps !== undefined) checkInteger("numInferenceSteps", options.numInferenceSteps, 1, numTrain, "num_train_timesteps of the scheduler");
    if (options.guidanceScale !== undefined) checkFiniteNumber("guidanceScale", options.guidanceScale);
    if (options.eta !== undefined) checkFiniteNumber("eta", options.eta);
    if (options.latents !== undefined) checkTensor("latents", options.latents, "float32");
    if (options.stepsPerRun !== undefined) checkInteger("stepsPerRun", options.stepsPerRun, 1, numTrain, "num_train_timesteps of the scheduler");
    if (options.previewDecodeEvery !== undefined) checkInteger("previewDecodeEvery", options.previewDecodeEvery, 1, numTrain, "num_train_timesteps of the scheduler");
    checkEncodeOptions(options);
  }

  private checkInputs(options: CallOptions, resolved: { height: number; width: number; numInferenceSteps: number; guidanceScale: number;
    numImagesPerPrompt: number; outputType: string }): void {
    const { prompt, promptEmbeds, negativePrompt, negativePromptEmbeds } = options;
    const multiple = this.vaeScaleFactor * (this.transformer?.config.patchSize ?? 2);
    for (const [name, v] of [["height", resolved.height], ["width", resolved.width]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new PipelineArgumentError(name, `must be a positive integer, got ${v}`);
      // diffusers asks for multiples of 8 and then fails inside the scheduler when the latent side is odd.
      if (v % multiple !== 0) {
        throw new PipelineArgumentError(name, `must be a multiple of ${multiple} (VAE factor ${this.vaeScaleFactor} × patch size), got ${v}` +
          (options.useResolutionBinning === false ? "" : " after resolution binning"));
      }
    }
    if (!Number.isInteger(resolved.numInferenceSteps) || resolved.numInferenceSteps <= 0) {
      throw new PipelineArgumentError("numInferenceSteps", `must be a positive integer, got ${resolved.numInferenceSteps}`);
    }
    if (!Number.isFinite(resolved.guidanceScale)) throw new PipelineArgumentError("guidanceScale", `must be a finite number, got ${resolved.guidanceScale}`);
    if (!Number.isInteger(resolved.numImagesPerPrompt) || resolved.numImagesPerPrompt <= 0) {
      throw new PipelineArgumentError("numImagesPerPrompt", `must be a positive integer, got ${resolved.numImagesPerPrompt}`);
    }
    if (!["image", "latent", "tensor"].includes(resolved.outputType)) {
      throw new PipelineArgumentError("outputType", `must be "image", "latent" or "tensor", got ${JSON.stringify(resolved.outputType)}`);
    }
    if (prompt !== undefined && promptEmbeds) throw new PipelineArgumentError("prompt", "give either prompt or promptEmbeds, not both");
    if (prompt === undefined && !promptEmbeds) throw new PipelineArgumentError("prompt", "give a prompt (or promptEmbeds)");
    if (prompt !== undefined) {
      const list = toList(prompt);
      if (list.length === 0) throw new PipelineArgumentError("prompt", "the prompt list is empty");
      if (!list.every((p) => typeof p === "string")) throw new PipelineArgumentError("prompt", "must be a string or a list of strings");
    }
    if (prompt !== undefined && negativePromptEmbeds) throw new PipelineArgumentError("negativePromptEmbeds", "cannot be combined with prompt; pass promptEmbeds too");
    if (negativePrompt !== undefined && negativePromptEmbeds) throw new PipelineArgumentError("negativePrompt", "give either negativePrompt or negativePromptEmbeds, not both");
    if (promptEmbeds && !options.promptAttentionMask) throw new PipelineArgumentError("promptAttentionMask", "must be given with promptEmbeds");
    if (negativePromptEmbeds && !options.negativePromptAttentionMask) {
      throw new PipelineArgumentError("negativePromptAttentionMask", "must be given with negativePromptEmbeds");
    }
    if (promptEmbeds && options.promptAttentionMask) this.checkEmbeds("prompt", promptEmbeds, options.promptAttentionMask);
    if (negativePromptEmbeds && options.negativePromptAttentionMask) {
      this.checkEmbeds("negativePrompt", negativePromptEmbeds, options.negativePromptAttentionMask);
    }
    if (promptEmbeds && negativePromptEmbeds) this.checkShape("negativePromptEmbeds", negativePromptEmbeds.dims, promptEmbeds.dims);
  }

  private checkEmbeds(kind: string, embeds: Tensor, mask: Tensor<BigInt64Array>): void {
    const width = this.transformer?.config.captionChannels ?? this.transformer?.config.crossAttentionDim;
    if (embeds.dims.length !== 3 || (width !== undefined && embeds.dims[2] !== width)) {
      throw new PipelineArgumentError(`${kind}Embeds`, `must have shape [batch, length, ${width ?? "width"}], got [${embeds.dims.join(", ")}]`);
    }
    this.checkShape(`${kind}AttentionMask`, mask.dims, embeds.dims.slice(0, 2));
  }

  private checkShape(argument: string, dims: readonly number[], expected: readonly number[]): void {
    if (dims.length !== expected.length || dims.some((d, i) => d !== expected[i])) {
      throw new PipelineArgumentError(argument, `must have shape [${expected.join(", ")}], got [${dims.join(", ")}]`);
    }
  }
}

/** Options shared by encodePrompt and call: counts, lengths, and the tensors passed in. */
function checkEncodeOptions(options: EncodePromptOptions): void {
  if (options.negativePrompt !== undefined) checkTextList("negativePrompt", options.negativePrompt);
  if (options.numImagesPerPrompt !== undefined) checkInteger("numImagesPerPrompt", options.numImagesPerPrompt, 1, MAX_IMAGES_PER_PROMPT);
  if (options.maxSequenceLength !== undefined) {
    checkInteger("maxSequenceLength", options.maxSequenceLength, 1, MAX_SEQUENCE_LENGTH, "T5's attention grows with its square");
  }
  for (const name of ["promptEmbeds", "negativePromptEmbeds"] as const) if (options[name] !== undefined) checkTensor(name, options[name], "float32");
  for (const name of ["promptAttentionMask", "negativePromptAttentionMask"] as const) if (options[name] !== undefined) checkTensor(name, options[name], "int64");
}

/** The pipeline's text preprocessing; "auto" is call()'s default (clean when the port covers the text). */
function preprocess(texts: string[], cleanCaption: boolean | "auto"): string[] {
  if (cleanCaption !== "auto") return textPreprocessing(texts, { cleanCaption });
  try {
    return textPreprocessing(texts, { cleanCaption: true });
  } catch (e) {
    if (!(e instanceof CleanCaptionUnsupportedError)) throw e;
    console.warn(`pixart-ts: clean_caption skipped (${e.message}); using lowercased text. Pass cleanCaption: false to silence this.`);
    return textPreprocessing(texts, { cleanCaption: false });
  }
}

function toImages(nhwc: Tensor): PixArtImage[] {
  const [n, h, w] = nhwc.dims;
  return Array.from({ length: n }, (_, k) => PixArtImage.fromFloat(nhwc.data, k, h, w));
}

function toList(prompt: string | string[]): string[] {
  return typeof prompt === "string" ? [prompt] : prompt;
}
