"""Writes the tutorial notebooks (notebooks/01-quickstart, 02-under-8gb, 03-attention-maps,
04-memory-profiling) from the cells below
and, with --execute, runs them with this build's kernel so they are committed with their outputs (small PNGs).

The notebooks run on the tiny checkpoint shipped in the repository (DEFAULT_MODEL) so CI can execute them; with the
environment variable PIXART_MODEL naming a diffusers folder or a cached repo id they run on that checkpoint instead.
Run: npm run build && .venv/bin/python tools/notebooks/make_tutorials.py --execute
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "notebooks")
KERNEL_NAME = "pixart-ts"
META = {
    "kernelspec": {"display_name": "TypeScript (pixart-ts)", "language": "typescript", "name": KERNEL_NAME},
    "language_info": {"file_extension": ".ts", "mimetype": "text/typescript", "name": "typescript"},
}
# The checkpoint the notebooks use unless PIXART_MODEL names another: the repository's default model and call,
# models/default.json (the one place the demo and the tests take them from too). Paths are relative to notebooks/.
with open(os.path.join(ROOT, "models", "default.json"), encoding="utf-8") as _f:
    DEFAULTS = json.load(_f)
DEFAULT_MODEL = "../" + DEFAULTS["model"]
MODEL_LINE = f'const MODEL = process.env.PIXART_MODEL ?? "{DEFAULT_MODEL}";'
# On the shipped model: its prompt and guidance scale, and its 32-pixel pictures shown enlarged (nearest neighbour).
TINY_LINES = f"""const tiny = process.env.PIXART_MODEL === undefined;
const PROMPT = tiny ? {json.dumps(DEFAULTS["prompt"])} : "A small cactus with a happy face in the Sahara desert.";
// The shipped model draws small pictures of one shape: its guidance scale, no aspect-ratio table, shown enlarged.
const TINY_CALL = tiny ? {{ guidanceScale: {DEFAULTS["guidanceScale"]}, useResolutionBinning: false }} : {{}};
const show = (image: PixArtImage) => (tiny ? image.enlarged({DEFAULTS["displaySize"]}) : image);"""

QUICKSTART = [
    new_markdown_cell("""# 01 · Quickstart: PixArt-Σ in a TypeScript notebook

The diffusers `PixArtSigmaPipeline`, in TypeScript on onnxruntime-node. This notebook runs on the tiny model
trained in the repository (`models/tiny-shapes`, named in `models/default.json`): it knows one kind of picture,
"a yellow triangle at the bottom right on a blue background" (three shapes, six colours, five positions), draws
it at 32×32 pixels in well under a second, and the notebook shows it enlarged. For real images start Jupyter with `PIXART_MODEL` naming a real checkpoint: a local diffusers folder, or a repo id
already in your Hugging Face cache, e.g. `PIXART_MODEL=PixArt-alpha/PixArt-Sigma-XL-2-1024-MS` (download it once
with `hf download PixArt-alpha/PixArt-Sigma-XL-2-1024-MS`).

Build the project first (`npm run build`) and install the kernel (`node dist/kernel/src/install.js`)."""),
    new_markdown_cell("""Loading shows its progress in one output that updates in place: each component as it loads, with the
time it took. The memory report after it draws where the memory is: the process over time and each component's
weights."""),
    new_code_cell("""import { PixArtSigmaPipeline, type PixArtImage } from "../dist/src";

__MODEL_LINE__
__TINY_LINES__
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL);
pipe.memoryReport()"""),
    new_markdown_cell("""The call takes diffusers' arguments in camelCase (`numInferenceSteps`, `guidanceScale`, `height`, `width`,
`negativePrompt`, `numImagesPerPrompt`, ...). A seed gives the same noise as `torch.Generator("cpu").manual_seed(seed)`,
so the same image as diffusers. The last expression of a cell is displayed: an image shows itself.

While it runs, the output above the image shows the stage (encode, denoise, decode), step k/N with the elapsed
time, ETA and it/s, and a preview of the latents after every step (a linear map from the four latent channels to
RGB, no VAE run). When the call ends, that output keeps a grid of the steps and, for the JupyterLab extension, the
whole step history to scrub through. Pass `progress: false` to a call (or set `pipe.progress = false`) for none."""),
    new_code_cell("""const { images } = await pipe.call({
  prompt: PROMPT,
  numInferenceSteps: 12,
  seed: 0,
  ...TINY_CALL,
});
show(images![0])"""),
    new_markdown_cell("""A step callback sees the latents after every step (and can stop the run by returning `false`). This
call passes `progress: false`, so it shows nothing while it runs."""),
    new_code_cell("""const seen: number[] = [];
const { latents } = await pipe.call({
  prompt: "a red fox",
  numInferenceSteps: 4,
  seed: 1,
  useResolutionBinning: false,
  outputType: "latent",
  progress: false,
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
(`~/.cache/pixart-ts/quantized`), so later loads only map the file.

Every load, encode, denoise and decode shows live progress; every `flush()` returns a memory report whose chart
shows the memory falling where a model was deleted."""),
    new_code_cell("""import { PixArtSigmaPipeline, type PixArtImage } from "../dist/src";

__MODEL_LINE__
__TINY_LINES__
// Load only what the first stage needs: the tokenizer and an 8-bit text encoder.
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL, { textEncoder: { quantize: "int8" }, transformer: null, vae: null });
const embeds = await pipe.encodePrompt(PROMPT);
embeds.promptEmbeds.dims"""),
    new_code_cell("""delete pipe.textEncoder;
await pipe.flush()"""),
    new_code_cell("""await pipe.load("transformer");
const { latents } = await pipe.call({ ...embeds, outputType: "latent", numInferenceSteps: 8, seed: 0, useResolutionBinning: false, ...TINY_CALL });
latents!.dims"""),
    new_code_cell("""delete pipe.transformer;
await pipe.flush()"""),
    new_code_cell("""await pipe.load("vae");
const [image] = await pipe.decodeLatents(latents!);
show(image)"""),
    new_markdown_cell("""The whole story: one row per event, with RSS (anonymous vs file-backed) and each stage's peak, drawn and
as a table."""),
    new_code_cell("""pipe.memoryReport()"""),
    new_code_cell("""await pipe.dispose();"""),
]


MEMORY_PROFILING = [
    new_markdown_cell("""# 04 · Memory profiling: where the memory goes

Which component holds how much, what each stage adds on top while it runs, what an 8-bit or 4-bit text encoder
saves, and that deleting a model gives its memory back: measured in this kernel's process (Linux `/proc`:
resident set split into anonymous pages and file-backed pages such as memory-mapped weights).

On the tiny checkpoint in the repository the models weigh kilobytes, so process totals are mostly the runtime
itself; set `PIXART_MODEL` to a real checkpoint to see gigabytes move (it loads everything in fp32 first: about
20 GB for PixArt-Σ with T5-XXL)."""),
    new_code_cell("""import { PixArtSigmaPipeline, formatBytes, type MemoryReport } from "../dist/src";
import { display } from "../dist/src/display/display";

__MODEL_LINE__
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL);
pipe.memoryReport()"""),
    new_markdown_cell("""## By stage

A full call runs the text encoder (prompt and negative prompt), the transformer once per step and the VAE once.
Each stage lands on the pipeline's timeline with its duration and the peak resident set while it ran."""),
    new_code_cell("""await pipe.call({ prompt: "a lighthouse on a cliff at dusk", numInferenceSteps: 10, seed: 0, useResolutionBinning: false });
const rows = pipe.timeline.events.filter((e) => e.kind === "run").map((e) =>
  `| ${e.label} | ${((e.durationMs ?? 0) / 1000).toFixed(2)} s | ${formatBytes(e.peakDuring ?? e.memory.rss)} | ${formatBytes(e.memory.rss)} |`);
display({
  "text/markdown": ["| stage | time | peak RSS while running | RSS after |", "|---|---|---|---|", ...rows].join("\\n"),
  "text/plain": rows.join("\\n"),
});"""),
    new_markdown_cell("""## By component

The report's chart: the process over time (anonymous and file-backed pages stacked, each run's peak as a band) and
one bar per component with its weights and the part of them resident now."""),
    new_code_cell("""pipe.memoryReport()"""),
    new_markdown_cell("""## What int8 and int4 buy

The text encoder is the largest component (T5-XXL: 4.7B parameters, 19 GB in fp32). Reload it quantized and
compare its weights and its prompt embeddings with fp32. int8 stores one byte per weight (plus a scale per row),
int4 half a byte (plus a scale and zero point per block of 32); see docs/quantization.md for the error bounds.
These loads pass `progress: false` to keep the output to the table."""),
    new_code_cell("""const prompt = "a lighthouse on a cliff at dusk";
const fp32 = (await pipe.encodePrompt(prompt, { progress: false })).promptEmbeds.data;
const quantRows: string[] = [];
for (const quantize of [undefined, "int8", "int4"] as const) {
  delete pipe.textEncoder;
  await pipe.flush();
  await pipe.load("textEncoder", quantize ? { quantize } : {}, { progress: false });
  const weights = pipe.textEncoder!.weightBytes;
  const total = Object.values(weights).reduce((a, b) => a + (b ?? 0), 0);
  const e = (await pipe.encodePrompt(prompt, { progress: false })).promptEmbeds.data;
  let maxDiff = 0, dot = 0, na = 0, nb = 0;
  for (let i = 0; i < e.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(e[i] - fp32[i]));
    dot += e[i] * fp32[i]; na += e[i] * e[i]; nb += fp32[i] * fp32[i];
  }
  const dtypes = Object.entries(weights).map(([d, b]) => `${formatBytes(b ?? 0)} ${d}`).join(" + ");
  quantRows.push(`| ${quantize ?? "fp32"} | ${dtypes} | ${formatBytes(total)} | ${maxDiff.toExponential(2)} | ${(dot / Math.sqrt(na * nb)).toFixed(6)} |`);
}
display({
  "text/markdown": ["| text encoder | weights by dtype | total | max abs diff vs fp32 | cosine vs fp32 |", "|---|---|---|---|---|", ...quantRows].join("\\n"),
  "text/plain": quantRows.join("\\n"),
});"""),
    new_markdown_cell("""## Delete and flush, five times

`delete pipe.transformer` releases the transformer's onnxruntime session at once and `flush()` waits for the
release and runs the garbage collector. Load, delete and flush it five times: after every flush the transformer's
weights are gone from the report and the process's resident set is back where it was, and the timeline chart
shows each load and release."""),
    new_code_cell("""const loadedWeights = (r: MemoryReport) => r.components.filter((c) => c.name === "transformer" && c.loaded)
  .reduce((a, c) => a + Object.values(c.weightBytes).reduce((x, y) => x + (y ?? 0), 0), 0);
delete pipe.transformer;
await pipe.flush();
const cycles: { cycle: number; weightsLoaded: number; weightsAfterFlush: number; rssLoaded: number; rssAfterFlush: number }[] = [];
for (let cycle = 1; cycle <= 5; cycle++) {
  await pipe.load("transformer", undefined, { progress: false });
  const loaded = pipe.memoryReport();
  delete pipe.transformer;
  const flushed = await pipe.flush();
  cycles.push({ cycle, weightsLoaded: loadedWeights(loaded), weightsAfterFlush: loadedWeights(flushed),
    rssLoaded: loaded.process.rss, rssAfterFlush: flushed.process.rss });
}
display({
  "text/markdown": ["| cycle | transformer weights loaded | after delete + flush | RSS loaded | RSS after flush |", "|---|---|---|---|---|",
    ...cycles.map((c) => `| ${c.cycle} | ${formatBytes(c.weightsLoaded)} | ${formatBytes(c.weightsAfterFlush)} | ${formatBytes(c.rssLoaded)} | ${formatBytes(c.rssAfterFlush)} |`)].join("\\n"),
  "application/json": cycles,
  "text/plain": JSON.stringify(cycles),
});"""),
    new_code_cell("""await pipe.flush()"""),
    new_code_cell("""await pipe.dispose();"""),
]

ATTENTION_MAPS = [
    new_markdown_cell("""# 03 · Cross-attention maps: which pixels read which word

Every transformer block of PixArt-Σ has a cross-attention layer in which each image patch attends to the prompt's
T5 tokens. Averaged over heads and blocks and summed over the denoising steps, those attention probabilities give one
heat map per token, the way [DAAM](https://arxiv.org/abs/2210.04885) does for Stable Diffusion: where the model
"looks at" each word while it paints. `call({ attention: true })` records them.

How: the transformer's default graph uses a fused attention kernel that never materialises the probabilities, so on
the recorded steps the pipeline runs a variant of the graph (built on first use, same weights) that recomputes
softmax(QKᵀ/√d + mask) for the conditional half of the CFG batch. The text has at most 300 tokens, so this costs
little. Maps are summed over steps, averaged over blocks and heads, upsampled bicubically to the image size and
clamped at 0; a word's map is the mean of its SentencePiece pieces (EOS and padding belong to no word), scaled to
[0, 1].

This notebook runs on the tiny model trained in the repository (`models/tiny-shapes`: one shape on a background,
32×32 pixels); set `PIXART_MODEL` to a diffusers folder or a cached repo id (e.g.
`PixArt-alpha/PixArt-Sigma-XL-2-1024-MS`) for real images."""),
    new_code_cell("""import { PixArtSigmaPipeline, showAttention } from "../dist/src";

__MODEL_LINE__
const tiny = process.env.PIXART_MODEL === undefined;
// The shipped model: its guidance scale and no aspect-ratio table.
const TINY_CALL = tiny ? { guidanceScale: __GUIDANCE__, useResolutionBinning: false } : {};
const pipe = await PixArtSigmaPipeline.fromPretrained(MODEL);
`transformer: ${pipe.transformer!.config.numLayers} blocks × ${pipe.transformer!.config.numAttentionHeads} heads`"""),
    new_markdown_cell("""One call with `attention: true` records every block at every step. The result's `attention` holds, per
image, the words with their pieces, the raw per-token maps on the patch grid and the per-word maps at image size.
`showAttention` draws them: the image, then one heat map per word over it (bright = attended)."""),
    new_code_cell("""const prompt = tiny ? "a red circle at the top left on a blue background" : "a red fox sitting at the top left of a snowy field";
const out = await pipe.call({
  prompt,
  numInferenceSteps: 20,
  seed: 0,
  attention: true,
  ...TINY_CALL,
});
showAttention(out.attention!, out.images)"""),
    new_markdown_cell("""The words and the pieces they were cut into (a word's map is the mean of its pieces'), and the raw maps:
`tokenMaps` is `[tokens, gridRows, gridCols]` (EOS included), `wordMaps` is `[words, height, width]`."""),
    new_code_cell("""const maps = out.attention!.images[0];
({
  pieces: maps.words.map((w) => `${w.text} = ${w.tokens.map((t) => maps.tokens[t]).join(" ")}`),
  tokenMaps: maps.tokenMaps.dims,
  wordMaps: maps.wordMaps.dims,
})"""),
    new_markdown_cell("""Where does each word's attention concentrate? The centroid of its map, as a fraction of the image
height and width (0, 0 = top left)."""),
    new_code_cell("""const { height, width } = out.attention!;
maps.words.map((w, k) => {
  const m = maps.wordMaps.data.subarray(k * height * width, (k + 1) * height * width);
  let sum = 0, y = 0, x = 0;
  m.forEach((v, p) => { sum += v; y += v * Math.floor(p / width); x += v * (p % width); });
  return `${w.text.padEnd(8)} y ${(y / sum / height).toFixed(2)}  x ${(x / sum / width).toFixed(2)}`;
}).join("\\n")"""),
    new_markdown_cell("""Early steps lay out the composition; later ones refine detail. `attention: { layers, steps }` records a
subset (0-based), and `callbackOnStepEnd` receives each recorded step's raw probabilities,
`[blocks, images, image tokens, text tokens]`, for analyses of your own. Here: the first two steps only,
and the share of attention that goes to the EOS token at each of them."""),
    new_code_cell("""const eosShare: string[] = [];
const early = await pipe.call({
  prompt,
  numInferenceSteps: 20,
  seed: 0,
  attention: { steps: [0, 1] },
  ...TINY_CALL,
  callbackOnStepEnd: ({ step, crossAttention }) => {
    if (!crossAttention) return;
    const [, , queries, keys] = crossAttention.dims;
    const eos = maps.tokens.length - 1;
    let share = 0;
    for (let r = 0; r < crossAttention.data.length / keys; r++) share += crossAttention.data[r * keys + eos];
    eosShare.push(`step ${step}: ${(100 * share / (crossAttention.data.length / keys)).toFixed(1)}% of attention on </s> (${queries} patches)`);
  },
});
console.log(eosShare.join("\\n"));
// Smaller panels, heat maps drawn beside the image rather than over it.
showAttention(early.attention!, early.images, { panel: 96, overlay: false })"""),
    new_code_cell("""await pipe.dispose();"""),
]


NOTEBOOKS = {
    "01-quickstart.ipynb": QUICKSTART,
    "02-under-8gb.ipynb": UNDER_8GB,
    "03-attention-maps.ipynb": ATTENTION_MAPS,
    "04-memory-profiling.ipynb": MEMORY_PROFILING,
}


def write(name, cells):
    for cell in cells:
        cell.source = (cell.source.replace("__MODEL_LINE__", MODEL_LINE).replace("__TINY_LINES__", TINY_LINES)
                       .replace("__GUIDANCE__", str(DEFAULTS["guidanceScale"])))
    nb = new_notebook(cells=cells, metadata=META)
    nbformat.validate(nb)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        nbformat.write(nb, f)
    return path


def execute(paths):
    """Runs the notebooks in place with this build's kernel (a kernel spec in a temporary JUPYTER_PATH)."""
    main = os.path.join(ROOT, "dist", "kernel", "src", "main.js")
    if not os.path.exists(main):
        sys.exit("dist/ is missing: run `npm run build` first")
    with tempfile.TemporaryDirectory() as jupyter_path:
        spec_dir = os.path.join(jupyter_path, "kernels", KERNEL_NAME)
        script = "require(process.argv[1]).writeKernelSpec(process.argv[2], { main: process.argv[3] })"
        subprocess.run(["node", "-e", script, os.path.join(ROOT, "dist", "kernel", "src", "install.js"), spec_dir, main], check=True)
        env = {**os.environ, "JUPYTER_PATH": jupyter_path}
        jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
        for path in paths:
            print(f"executing {os.path.relpath(path, ROOT)}", flush=True)
            subprocess.run([jupyter, "execute", "--inplace", "--timeout=1800", path], env=env, check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks and keep their outputs")
    parser.add_argument("names", nargs="*", help="only these notebooks (e.g. 04-memory-profiling.ipynb)")
    args = parser.parse_args()
    chosen = {n: c for n, c in NOTEBOOKS.items() if not args.names or n in args.names}
    written = [write(name, cells) for name, cells in chosen.items()]
    if args.execute:
        execute(written)
