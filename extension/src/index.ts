/**
 * The mime extension (package.json jupyterlab.mimeExtension): one renderer per pixart-ts output type. Rank 0 puts
 * them ahead of the bundle's image/png and text/plain; `safe` because they draw untrusted outputs as text and
 * pixels only, so outputs of notebooks that are not trusted still render.
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { drawAttention } from "./attention";
import { drawLatents } from "./latents";
import { drawMemory } from "./memory";
import { ATTENTION_MIME, LATENTS_MIME, MEMORY_MIME, type PixartMime } from "./payload";
import type { Draw } from "./render";
import { PixartRenderer } from "./widget";

function extension<T>(name: string, mime: PixartMime, draw: Draw<T>, description: string): IRenderMime.IExtension {
  return {
    id: `pixart-ts-jupyterlab:${name}`,
    description,
    rendererFactory: { safe: true, mimeTypes: [mime], createRenderer: () => new PixartRenderer(mime, draw) },
    rank: 0,
    dataType: "json",
  };
}

const extensions: IRenderMime.IExtension[] = [
  extension("latents", LATENTS_MIME, drawLatents, "Denoising steps of a pixart-ts call: a step scrubber, latent channels, final preview"),
  extension("attention", ATTENTION_MIME, drawAttention, "Cross-attention maps of a pixart-ts call: heat map per word over the image"),
  extension("memory", MEMORY_MIME, drawMemory, "A pixart-ts memory report: process memory timeline, per-component weights, events"),
];

export default extensions;
