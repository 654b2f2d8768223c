"""Writes the tutorial notebooks (notebooks/01-quickstart.ipynb, 02-under-8gb.ipynb) from the cells below.

The notebooks run on the tiny checkpoint shipped in the repo so CI can execute them; each says where to put a
real checkpoint instead. Run: .venv/bin/python tools/notebooks/make_tutorials.py
"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "notebooks")
META = {
    "kernelspec": {"display_name": "TypeScript (pixart-ts)", "language": "typescript", "name": "pixart-ts"},
    "language_info": {"file_extension": ".ts", "mimetype": "text/typescript", "name": "typescript"},
}

QUICKSTART = [
    new_markdown_cell("""# 01 · Quickstart: PixArt-Σ in a TypeScript notebook

The diffusers `PixArtSigmaPipeline`, in TypeScript on onnxruntime-node. This notebook runs on the tiny
random-weight checkpoint in the repository (so it finishes in seconds and its pictures are noise-like).
For real images set `MODEL` to a real checkpoint: a local diffusers folder, or a repo id already in your
Hugging Face cache, e.g. `"PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"` (download it once with
`hf download PixArt-alpha/PixArt-Sigma-XL-2-1024-MS`).

Build the project first (`npm run build`) and install the kernel (`node dist/kernel/src/install.js`)."""),
    new_code_cell("""import { PixArtSigmaPipeline } from "../dist/src";

const MODEL = "../test/fixtures/tiny-square/pipeline";
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL);
pipe.memoryReport()"""),
    new_markdown_cell("""The call takes diffusers' arguments in camelCase (`numInferenceSteps`, `guidanceScale`, `height`, `width`,
`negativePrompt`, `numImagesPerPrompt`, ...). A seed gives the same noise as `torch.Generator("cpu").manual_seed(seed)`,
so the same image as diffusers. The last expression of a cell is displayed: an image shows itself."""),
    new_code_cell("""const { images } = await pipe.call({
  prompt: "A small cactus with a happy face in the Sahara desert.",
  numInferenceSteps: 3,
  seed: 0,
  useResolutionBinning: false, // the tiny model has no aspect-ratio table; real checkpoints bin by default
});
images![0]"""),
    new_markdown_cell("""A step callback sees the latents after every step (and can stop the run by returning `false`)."""),
    new_code_cell("""const seen: number[] = [];
const { latents } = await pipe.call({
  prompt: "a red fox",
  numInferenceSteps: 4,
  seed: 1,
  useResolutionBinning: false,
  outputType: "latent",
  callbackOnStepEnd: ({ step, timestep }) => { seen.push(timestep); },
});
({ timesteps: seen, latentShape: latents!.dims })"""),
    new_markdown_cell("""Where the memory went: per component (weights by dtype, mapped pages resident now, the activation peak of
its last run) and a timeline of loads, runs and deletions."""),
    new_code_cell("""pipe.memoryReport()"""),
    new_code_cell("""await pipe.dispose();"""),
]

UNDER_8GB = [
    new_markdown_cell("""# 02 · The "under 8 GB" recipe, one stage per cell

diffusers documents a staged flow for PixArt-Σ: encode the prompt with an 8-bit T5, delete the text encoder,
flush, denoise to latents, delete the transformer, flush, decode with the VAE. Here is the same flow; every
`delete` releases the model's onnxruntime session at once and `flush()` returns where the memory is.

This runs on the tiny checkpoint in the repository. With a real one (`MODEL = "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"`)
the first int8 load quantizes the 4.7B-parameter T5 once and caches the result on disk
(`~/.cache/pixart-ts/quantized`), so later loads only map the file."""),
    new_code_cell("""import { PixArtSigmaPipeline } from "../dist/src";

const MODEL = "../test/fixtures/tiny-square/pipeline";
// Load only what the first stage needs: the tokenizer and an 8-bit text encoder.
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL, { textEncoder: { quantize: "int8" }, transformer: null, vae: null });
const embeds = await pipe.encodePrompt("A small cactus with a happy face in the Sahara desert.");
embeds.promptEmbeds.dims"""),
    new_code_cell("""delete pipe.textEncoder;
await pipe.flush()"""),
    new_code_cell("""await pipe.load("transformer");
const { latents } = await pipe.call({ ...embeds, outputType: "latent", numInferenceSteps: 3, seed: 0, useResolutionBinning: false });
latents!.dims"""),
    new_code_cell("""delete pipe.transformer;
await pipe.flush()"""),
    new_code_cell("""await pipe.load("vae");
const [image] = await pipe.decodeLatents(latents!);
image"""),
    new_markdown_cell("""The whole story: one row per event, with RSS (anonymous vs file-backed) and each stage's peak."""),
    new_code_cell("""pipe.memoryReport()"""),
    new_code_cell("""await pipe.dispose();"""),
]


def write(name, cells):
    nb = new_notebook(cells=cells, metadata=META)
    nbformat.validate(nb)
    with open(os.path.join(OUT, name), "w") as f:
        nbformat.write(nb, f)


if __name__ == "__main__":
    write("01-quickstart.ipynb", QUICKSTART)
    write("02-under-8gb.ipynb", UNDER_8GB)
