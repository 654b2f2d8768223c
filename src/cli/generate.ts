/**
 * The two ways the CLI generates: the default path (everything loaded, one `call()`, as diffusers' `__call__`), and
 * `--low-memory`, the staged recipe of docs/memory.md (encode with the text encoder alone, remove it; denoise with the
 * transformer alone, remove it; decode with the VAE alone), so only one model is in memory at a time. Both report
 * their stages through the pipeline's progress events.
 */
import * as path from "path";
import { readJsonObject } from "../io/json";
import { parseAutoencoderKLConfig, vaeScaleFactor } from "../models/autoencoder-kl";
import { parsePixArtTransformerConfig } from "../models/pixart-transformer-2d";
import type { T5EncoderLoadOptions } from "../models/t5-encoder";
import type { SessionConfig } from "../onnx/session";
import type { PixArtImage } from "../pipeline/image";
import { PixArtSigmaPipeline, type CallOptions, type EncodedPrompt } from "../pipeline/pixart-sigma";
import { binTableFor, classifyHeightWidthBin } from "../pipeline/resolution-binning";
import type { ProgressListener } from "../runtime/progress";
import type { Scheduler } from "../schedulers/scheduler";
import { CleanCaptionUnsupportedError } from "../tokenizer/errors";

export interface GenerateRequest {
  modelDir: string;
  scheduler: Scheduler;
  session: SessionConfig;
  textEncoder: T5EncoderLoadOptions;
  call: CallOptions<"image"> & { prompt: string };
  progress: ProgressListener;
}

/** The checkpoint's geometry, read from the two config files (no weights): what the size checks need. */
export interface Geometry {
  sampleSize: number;
  patchSize: number;
  vaeScaleFactor: number;
}

export async function readGeometry(modelDir: string): Promise<Geometry> {
  const tFile = path.join(modelDir, "transformer", "config.json");
  const vFile = path.join(modelDir, "vae", "config.json");
  const transformer = parsePixArtTransformerConfig(await readJsonObject(tFile), tFile);
  const vae = parseAutoencoderKLConfig(await readJsonObject(vFile), vFile);
  return { sampleSize: transformer.sampleSize, patchSize: transformer.patchSize, vaeScaleFactor: vaeScaleFactor(vae) };
}

/** The size asked for (defaults filled in) and the size generated at after binning. */
export function sizes(call: CallOptions, g: Geometry): { asked: { height: number; width: number }; generated: { height: number; width: number } } {
  const native = g.sampleSize * g.vaeScaleFactor;
  const asked = { height: call.height ?? native, width: call.width ?? native };
  const generated = call.useResolutionBinning === false ? asked : classifyHeightWidthBin(asked.height, asked.width, binTableFor(g.sampleSize));
  return { asked, generated };
}

export async function generateDefault(req: GenerateRequest): Promise<PixArtImage[]> {
  const pipe = await PixArtSigmaPipeline.fromPretrained(req.modelDir, {
    scheduler: req.scheduler, session: req.session, textEncoder: req.textEncoder, progress: req.progress,
  });
  const { images } = await pipe.call(req.call);
  return images;
}

export async function generateLowMemory(req: GenerateRequest): Promise<PixArtImage[]> {
  const pipe = await PixArtSigmaPipeline.fromPretrained(req.modelDir, {
    scheduler: req.scheduler, session: req.session, textEncoder: req.textEncoder, transformer: null, vae: null, progress: req.progress,
  });
  const embeds = await encode(pipe, req.call);
  delete pipe.textEncoder;
  await pipe.flush();
  await pipe.load("transformer");
  // The prompt-side options went to encodePrompt; the embeddings stand for them here.
  const { prompt: _p, negativePrompt: _np, numImagesPerPrompt: _n, maxSequenceLength: _m, cleanCaption: _c, ...rest } = req.call;
  const { latents } = await pipe.call({ ...rest, ...embeds, outputType: "latent" });
  const size = decodeSize(req, pipe);
  delete pipe.transformer;
  await pipe.flush();
  await pipe.load("vae");
  return pipe.decodeLatents(latents, size);
}

/**
 * `call()` cleans captions where the port can and otherwise warns and lowercases; `encodePrompt` has no such
 * fallback, so the staged path does the same here: an explicit clean first, the plain text when the cleaner cannot
 * follow (unless --no-clean-caption asked for the plain text anyway).
 */
async function encode(pipe: PixArtSigmaPipeline, call: GenerateRequest["call"]): Promise<EncodedPrompt> {
  const options = {
    negativePrompt: call.negativePrompt, numImagesPerPrompt: call.numImagesPerPrompt, maxSequenceLength: call.maxSequenceLength,
    doClassifierFreeGuidance: (call.guidanceScale ?? 4.5) > 1,
  };
  if (call.cleanCaption === false) return pipe.encodePrompt(call.prompt, { ...options, cleanCaption: false });
  try {
    return await pipe.encodePrompt(call.prompt, { ...options, cleanCaption: true });
  } catch (e) {
    if (!(e instanceof CleanCaptionUnsupportedError)) throw e;
    console.warn(`pixart-ts: clean_caption skipped (${e.message}); using lowercased text. Pass --no-clean-caption to silence this.`);
    return pipe.encodePrompt(call.prompt, { ...options, cleanCaption: false });
  }
}

/** With binning, decoding resizes and centre-crops back to the size asked for. */
function decodeSize(req: GenerateRequest, pipe: PixArtSigmaPipeline): { height?: number; width?: number } {
  if (req.call.useResolutionBinning === false) return {};
  const native = pipe.transformer!.config.sampleSize * pipe.vaeScaleFactor;
  return { height: req.call.height ?? native, width: req.call.width ?? native };
}
