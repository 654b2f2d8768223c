"""A reference for FORA step caching (src/models/pixart-transformer-2d-cache.ts) on the tiny shapes checkpoint.

  .venv/bin/python tools/shapes/fora.py            # write test/fixtures/shapes-fora/reference.{json,safetensors}
  .venv/bin/python tools/shapes/fora.py --check    # regenerate in a temp folder and compare (CI)

diffusers has no FORA, so this is the algorithm written against diffusers' own transformer, with the same rule as
ours: the transformer's forward calls are counted from the start of each pipeline call; on call k with
k % interval == 0 (a full step) every block's attn1 and ff run and their outputs are kept; on the others attn1 and
ff return the kept outputs instead of running. In diffusers' BasicTransformerBlock (norm_type "ada_norm_single")
attn1's and ff's outputs are multiplied by gate_msa / gate_mlp *after* the module returns, so the kept outputs are
the un-gated ones and the reusing step applies its own gates, as FORA does; attn2 (cross-attention) always runs.

Written: the final latents (output_type="latent") of the default prompt and two held-out captions in one call, for
no cache and intervals 1, 2 and 3, and the semantic score of the held-out captions with intervals 2 and 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import evaluate  # noqa: E402  (sets the thread environment, finds the repository)
import scenes  # noqa: E402

FIXTURE_DIR = os.path.join(evaluate.REPO_ROOT, "test", "fixtures", "shapes-fora")
INTERVALS = (1, 2, 3)


class Fora:
    """Wraps a diffusers PixArtTransformer2DModel's forward, and each block's attn1 and ff, with FORA's rule."""

    def __init__(self, transformer):
        self.interval: int | None = None
        self.calls = 0
        self.full = True
        self.kept: dict[tuple[int, str], torch.Tensor] = {}
        forward = transformer.forward

        def counted(*args, **kwargs):
            self.full = self.interval is None or self.calls % self.interval == 0
            self.calls += 1
            return forward(*args, **kwargs)

        transformer.forward = counted
        for i, block in enumerate(transformer.transformer_blocks):
            for name in ("attn1", "ff"):
                module = getattr(block, name)
                module.forward = self.wrap(i, name, module.forward)

    def wrap(self, layer: int, name: str, forward):
        def cached(*args, **kwargs):
            if self.full:
                out = forward(*args, **kwargs)
                if self.interval is not None:
                    self.kept[(layer, name)] = out
                return out
            return self.kept[(layer, name)]

        return cached

    def start(self, interval: int | None) -> None:
        """A new pipeline call: the next forward is a full step."""
        self.interval = interval
        self.calls = 0
        self.kept.clear()


def prompts() -> list[str]:
    _, held_out = scenes.split()
    return [evaluate.defaults()["prompt"], held_out[0].caption, held_out[1].caption]


def latents(pipe, fora: Fora, interval: int | None) -> torch.Tensor:
    d = evaluate.defaults()
    fora.start(interval)
    out = pipe(prompt=prompts(), negative_prompt="", num_inference_steps=d["numInferenceSteps"],
               guidance_scale=d["guidanceScale"], generator=torch.Generator("cpu").manual_seed(d["seed"]),
               use_resolution_binning=False, clean_caption=False, output_type="latent").images
    return out.float().contiguous()


def score(pipe, fora: Fora, interval: int) -> dict:
    fora.start(interval)
    s = evaluate.semantic_score(pipe)
    s.pop("images")
    return s


def write(out: str) -> dict:
    from safetensors.torch import save_file

    pipe = evaluate.load(os.path.join(evaluate.REPO_ROOT, evaluate.defaults()["model"]))
    fora = Fora(pipe.transformer)
    tensors = {"latents.exact": latents(pipe, fora, None)}
    for n in INTERVALS:
        tensors[f"latents.fora{n}"] = latents(pipe, fora, n)
    scores = {f"fora{n}": score(pipe, fora, n) for n in (2, 3)}
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "reference.safetensors"), metadata={"format": "pt"})
    d = evaluate.defaults()
    info = {
        "call": {"prompts": prompts(), "negative_prompt": "", "num_inference_steps": d["numInferenceSteps"],
                 "guidance_scale": d["guidanceScale"], "seed": d["seed"], "use_resolution_binning": False,
                 "max_sequence_length": 300, "output_type": "latent"},
        "latents": "latents.exact (no cache), latents.foraN (FORA, interval N): float32 [3, 4, 16, 16]",
        "diffusers_scores": scores,
        "difference_from_exact": {k: float((v - tensors["latents.exact"]).abs().max()) for k, v in tensors.items()},
    }
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        write(tmp)
        problems = evaluate.tensor_problems(FIXTURE_DIR, tmp)
    for p in problems:
        print(p)
    print("FORA references: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=FIXTURE_DIR)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.check:
        sys.exit(check())
    info = write(args.out)
    print(json.dumps({k: info[k] for k in ("diffusers_scores", "difference_from_exact")}, indent=1))


if __name__ == "__main__":
    main()
