"""Write the tiny PixArt-Sigma fixtures: a diffusers pipeline folder and reference tensors per config.

Usage (from the repository root, with the pinned venv):
  .venv/bin/python tools/reference/make_fixtures.py [--out test/fixtures] [--only NAME ...]
  .venv/bin/python tools/reference/make_fixtures.py --check      # regenerate in a temp folder and compare

For each config NAME (configs.py) it writes
  NAME/pipeline/            PixArtSigmaPipeline.save_pretrained(...) with the layout the config asks for
  NAME/reference.safetensors  stage inputs/outputs (T5, transformer, VAE) and a full pipeline run
  NAME/reference.json       the arguments behind every tensor, library versions and tolerances
  NAME/attention.safetensors  cross-attention probabilities and DAAM maps recorded in diffusers (attention.py)
  NAME/attention.json       their words, token indices, word-grouping cases and tolerances
  NAME/vae-tiling.safetensors  (configs with a VaeTiling) diffusers' tiled VAE decode, tile settings in the metadata
All references are computed after reloading the saved folder in fp32, so they use exactly the stored
(possibly fp16/bf16-rounded) weights. --check exits 1 and prints the differences when the committed fixtures
no longer match what the pinned libraries produce (tensors within 1e-6 abs, everything else exact).
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import json
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

# Determinism first: one thread, deterministic kernels, quiet libraries. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from attention import attention_stage  # noqa: E402
from compare import compare_trees  # noqa: E402
from components import save_pipeline  # noqa: E402
from configs import CONFIGS, TinyConfig  # noqa: E402
from stages import (  # noqa: E402
    check_not_degenerate,
    load_pipeline,
    pipeline_stage,
    t5_stage,
    tokenizer_cases,
    transformer_stage,
    vae_stage,
    vae_tiling_stage,
)
from train_tokenizer import SPIECE_MODEL, train  # noqa: E402

STAGE_MAX_ABS = 1e-4
IMAGE_MAX_ABS = 1 / 255
# The sampler multiplies an error in epsilon by up to sigma_max ~ 157 (x0 = (x - sigma*eps)*sqrt(1+sigma^2)
# at t=999), so the latents of the default schedule reach several hundred: there the bound is relative.
LATENTS_RELATIVE = 1e-5
LATENT_KEYS = ("pipeline.latents_steps", "pipeline.latents_final")
INPUT_KEYS = ("transformer.hidden_states", "transformer.encoder_hidden_states", "vae.z", "pipeline.latents_init")


def versions() -> dict[str, str]:
    import diffusers
    import numpy
    import safetensors
    import sentencepiece
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "sentencepiece": sentencepiece.__version__,
        "numpy": numpy.__version__,
    }


def round_up(value: float, digits: int = 2) -> float:
    """Round up to `digits` significant digits, so the written bound is never tighter than computed."""
    exponent = math.floor(math.log10(value)) - digits + 1
    return float(f"{math.ceil(value / 10**exponent - 1e-9)}e{exponent}")


def tolerances(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Every float output a port must reproduce, with the max-abs error allowed (fp32 on both sides).
    Integer tensors must match exactly; inputs (INPUT_KEYS) are given, not compared."""
    result = {}
    for key, tensor in tensors.items():
        if key in INPUT_KEYS or not tensor.is_floating_point():
            continue
        if key == "pipeline.image":
            result[key] = {"max_abs": IMAGE_MAX_ABS}
        elif key in LATENT_KEYS:
            bound = max(STAGE_MAX_ABS, round_up(LATENTS_RELATIVE * float(tensor.abs().max())))
            result[key] = {"max_abs": bound, "rule": f"max(1e-4, {LATENTS_RELATIVE:g} * max|reference|)"}
        else:
            result[key] = {"max_abs": STAGE_MAX_ABS}
    return result


def generate(cfg: TinyConfig, out_root: str) -> dict[str, float]:
    """Write one config's folder and return how long each part took, in seconds."""
    from safetensors.torch import save_file

    timings = {}
    start = time.perf_counter()
    folder = os.path.join(out_root, cfg.name)
    save_pipeline(cfg, os.path.join(folder, "pipeline"))
    timings["save"] = time.perf_counter() - start

    start = time.perf_counter()
    pipe = load_pipeline(os.path.join(folder, "pipeline"))
    tensors = {**t5_stage(pipe, cfg), **transformer_stage(pipe, cfg), **vae_stage(pipe, cfg)}
    timings["stages"] = time.perf_counter() - start

    start = time.perf_counter()
    pipeline_tensors, pipeline_info = pipeline_stage(pipe, cfg)
    tensors.update(pipeline_tensors)
    timings["pipeline"] = time.perf_counter() - start

    problems = check_not_degenerate(tensors)
    if problems:
        raise RuntimeError(f"{cfg.name}: degenerate reference tensors: " + "; ".join(problems))
    tensors = {k: v.contiguous() for k, v in sorted(tensors.items())}
    save_file(tensors, os.path.join(folder, "reference.safetensors"), metadata={"format": "pt"})
    write_reference_json(cfg, pipe, tensors, pipeline_info, os.path.join(folder, "reference.json"))

    if cfg.vae_stage.tiling is not None:
        start = time.perf_counter()
        tiled, tiled_info = vae_tiling_stage(pipe, cfg)
        problems = check_not_degenerate(tiled)
        if problems:
            raise RuntimeError(f"{cfg.name}: degenerate tiled VAE tensors: " + "; ".join(problems))
        save_file({k: v.contiguous() for k, v in sorted(tiled.items())}, os.path.join(folder, "vae-tiling.safetensors"),
                  metadata={"format": "pt", "tiling": json.dumps(tiled_info, sort_keys=True)})
        timings["vae_tiling"] = time.perf_counter() - start

    start = time.perf_counter()
    attention_tensors, attention_info = attention_stage(pipe, cfg, tensors)
    problems = check_not_degenerate(attention_tensors)
    if problems:
        raise RuntimeError(f"{cfg.name}: degenerate attention tensors: " + "; ".join(problems))
    attention_tensors = {k: v.contiguous() for k, v in sorted(attention_tensors.items())}
    save_file(attention_tensors, os.path.join(folder, "attention.safetensors"), metadata={"format": "pt"})
    attention_info = {"config": cfg.name, "versions": versions(), **attention_info,
                      "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                                  for k, v in attention_tensors.items()}}
    with open(os.path.join(folder, "attention.json"), "w", encoding="utf-8") as f:
        json.dump(attention_info, f, separators=(",", ":"), ensure_ascii=False)  # compact: the fixture budget
        f.write("\n")
    timings["attention"] = time.perf_counter() - start
    return timings


def write_reference_json(cfg: TinyConfig, pipe, tensors, pipeline_info, path: str) -> None:
    stage = cfg.transformer_stage
    info = {
        "config": cfg.name,
        "description": cfg.description,
        "versions": versions(),
        "components": {
            "t5": dataclasses.asdict(cfg.t5),
            "transformer": dataclasses.asdict(cfg.transformer),
            "vae": dataclasses.asdict(cfg.vae),
            "tokenizer_layout": cfg.tokenizer_layout,
            "published_scheduler_config": cfg.published_scheduler_config,
        },
        "t5": {
            "prompts": list(cfg.t5_stage.prompts),
            "max_length": cfg.t5_stage.max_length,
            "tokenizer_call": "tokenizer(prompts, padding='max_length', max_length=max_length, truncation=True, "
                              "add_special_tokens=True, return_tensors='pt')",
            "encoder_call": "text_encoder(input_ids, attention_mask=attention_mask).last_hidden_state",
        },
        "transformer": {
            "timesteps": list(stage.timesteps),
            "timesteps_b": list(stage.timesteps_b),
            "mask_lengths": list(stage.mask_lengths),
            "inputs": "hidden_states then encoder_hidden_states drawn with torch.randn from "
                      f"torch.Generator().manual_seed({cfg.seed + 100})",
            "call": "transformer(hidden_states, encoder_hidden_states=..., encoder_attention_mask=..., timestep=..., "
                    "added_cond_kwargs={'resolution': None, 'aspect_ratio': None}, return_dict=False)[0]",
        },
        "vae": {
            "scaling_factor": pipe.vae.config.scaling_factor,
            "z": f"torch.randn from torch.Generator().manual_seed({cfg.seed + 200}) divided by scaling_factor",
            "call": "vae.decode(z, return_dict=False)[0]",
        },
        "pipeline": pipeline_info,
        "tokenizer_cases": tokenizer_cases(pipe.tokenizer),
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()},
        "tolerances": tolerances(tensors),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, ensure_ascii=False)
        f.write("\n")


def selected(names: list[str] | None) -> list[TinyConfig]:
    if not names:
        return list(CONFIGS)
    known = {c.name: c for c in CONFIGS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def generate_all(configs: list[TinyConfig], out_root: str) -> None:
    os.makedirs(out_root, exist_ok=True)
    for cfg in configs:
        start = time.perf_counter()
        timings = generate(cfg, out_root)
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        print(f"{cfg.name}: {time.perf_counter() - start:.1f}s ({parts})", flush=True)


def check(configs: list[TinyConfig], committed_root: str) -> int:
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        retrained = train(os.path.join(tmp, "tokenizer"))
        if not filecmp.cmp(retrained, SPIECE_MODEL, shallow=False):
            problems.append(f"{SPIECE_MODEL}: retraining the tokenizer gives different bytes")
        generate_all(configs, os.path.join(tmp, "fixtures"))
        problems += compare_trees(committed_root, os.path.join(tmp, "fixtures"), [c.name for c in configs])
    if problems:
        print(f"FIXTURE CHECK FAILED: {len(problems)} difference(s) between {committed_root} and a fresh run:")
        for problem in problems:
            print("  " + problem)
        print("If the change is intended, regenerate with tools/reference/make_fixtures.py and commit the result.")
        return 1
    print(f"fixture check passed: {', '.join(c.name for c in configs)} match {committed_root}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "test", "fixtures"))
    parser.add_argument("--check", action="store_true", help="regenerate in a temp folder and compare with --out")
    parser.add_argument("--only", nargs="*", help="config names (default: all)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()

    configs = selected(args.only)
    start = time.perf_counter()
    status = check(configs, args.out) if args.check else (generate_all(configs, args.out) or 0)
    print(f"total {time.perf_counter() - start:.1f}s")
    return status


if __name__ == "__main__":
    sys.exit(main())
