"""Score the tiny shapes checkpoint with diffusers and write the references our TypeScript tests compare with.

  .venv/bin/python tools/shapes/evaluate.py            # write test/fixtures/shapes/reference.{json,safetensors}
  .venv/bin/python tools/shapes/evaluate.py --check    # regenerate in a temp folder and compare (CI)
  .venv/bin/python tools/shapes/evaluate.py --model /tmp/run --no-write   # only print the score

The semantic score: every held-out caption (scenes.split(), combinations never drawn in training) goes through
PixArtSigmaPipeline in one batched call (one seeded generator, as the TypeScript test makes it); each image is
read back with scenes.read_scene and counts as right when object colour, background colour and position all
agree with the caption. Parity references: the default call of models/default.json with the checkpoint's
DPM-Solver++ scheduler and with EulerDiscreteScheduler built from its config (our tests also run DDIM, UniPC, ...
against the other fixtures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tools", "reference"))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import scenes  # noqa: E402

DEFAULTS_FILE = os.path.join(REPO_ROOT, "models", "default.json")
FIXTURE_DIR = os.path.join(REPO_ROOT, "test", "fixtures", "shapes")
OTHER_SCHEDULERS = ("EulerDiscreteScheduler",)  # one more would overrun the 3 MB fixtures budget
IMAGE_MAX_ABS = 1 / 255


def defaults() -> dict:
    with open(DEFAULTS_FILE, encoding="utf-8") as f:
        return json.load(f)


def semantic_call() -> dict:
    """The held-out batch is drawn with the default call's steps, guidance scale and seed (models/default.json)."""
    d = defaults()
    return {"num_inference_steps": d["numInferenceSteps"], "guidance_scale": d["guidanceScale"], "seed": d["seed"],
            "max_sequence_length": 32}


def load(folder: str):
    from diffusers import PixArtSigmaPipeline

    pipe = PixArtSigmaPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, prompts: list[str], steps: int, guidance: float, seed: int, max_sequence_length: int = 300):
    """(B, H, W, 3) float images in [0, 1], exactly what output_type='np' gives."""
    return pipe(prompt=prompts, negative_prompt="", num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator("cpu").manual_seed(seed), use_resolution_binning=False,
                max_sequence_length=max_sequence_length, clean_caption=False, output_type="np").images


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(images * 255).astype(np.uint8)  # numpy rounds halves to even, as numpy_to_pil does


def semantic_score(pipe) -> dict:
    _, held_out = scenes.split()
    c = semantic_call()
    images = to_uint8(run(pipe, [s.caption for s in held_out], c["num_inference_steps"], c["guidance_scale"],
                          c["seed"], c["max_sequence_length"]))
    reads = [scenes.read_scene(img) for img in images]
    per = {k: sum(r[k] == getattr(s, k) for r, s in zip(reads, held_out)) for k in ("colour", "background", "position")}
    right = sum(scenes.agrees(s, img) for s, img in zip(held_out, images))
    return {"captions": len(held_out), "all_three_right": right, "percent": round(100 * right / len(held_out), 1),
            "per_attribute_right": per, "images": images,
            }


def parity_references(pipe) -> tuple[dict[str, torch.Tensor], dict]:
    from diffusers import EulerDiscreteScheduler

    d = defaults()
    tensors, calls = {}, {}
    original = pipe.scheduler
    for name in ("DPMSolverMultistepScheduler",) + OTHER_SCHEDULERS:
        if name != "DPMSolverMultistepScheduler":
            cls = {"EulerDiscreteScheduler": EulerDiscreteScheduler}[name]
            pipe.scheduler = cls.from_config(original.config)
        image = run(pipe, [d["prompt"]], d["numInferenceSteps"], d["guidanceScale"], d["seed"])
        tensors[f"image.{name}"] = torch.from_numpy(image)
        calls[name] = {"prompt": d["prompt"], "negative_prompt": "", "num_inference_steps": d["numInferenceSteps"],
                       "guidance_scale": d["guidanceScale"], "seed": d["seed"], "use_resolution_binning": False,
                       "max_sequence_length": 300, "scheduler": f"{name}.from_config(pipe.scheduler.config)"
                       if name != "DPMSolverMultistepScheduler" else "the checkpoint's scheduler_config.json"}
    pipe.scheduler = original
    return tensors, calls


def write(model: str, out: str) -> dict:
    from safetensors.torch import save_file

    import diffusers
    import transformers

    pipe = load(model)
    score = semantic_score(pipe)
    tensors, calls = parity_references(pipe)
    # The held-out images themselves are not kept (test/fixtures has a 3 MB budget); image parity is checked on
    # the default call with three schedulers, and the batch through its score.
    score.pop("images")
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, os.path.join(out, "reference.safetensors"),
              metadata={"format": "pt"})
    _, held_out = scenes.split()
    info = {
        "model": os.path.relpath(model, REPO_ROOT) if os.path.isabs(model) else model,
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                     "transformers": transformers.__version__},
        "parity": {"calls": calls, "tolerance": {"max_abs": IMAGE_MAX_ABS},
                   "images": "image.*: output_type='np' images, float32 (B, H, W, 3) in [0, 1]"},
        "semantic": {
            "call": {**semantic_call(), "negative_prompt": "", "use_resolution_binning": False,
                     "prompt": "every held-out caption in one call, in the order of held_out"},
            "reader": "tools/shapes/scenes.py read_scene (border mode, commonest other palette colour, centroid)",
            "palette": scenes.PALETTE, "positions": scenes.POSITIONS,
            "held_out_fields": ["caption", "shape", "colour", "position", "background"],
            "held_out": [[s.caption, s.shape, s.colour, s.position, s.background] for s in held_out],
            "diffusers_score": score,
        },
    }
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return info


def tensor_problems(committed_dir: str, fresh_dir: str) -> list[str]:
    """How a freshly written reference.safetensors differs from the committed one, beyond the fixtures' tolerance."""
    from safetensors.torch import load_file

    old = load_file(os.path.join(committed_dir, "reference.safetensors"))
    new = load_file(os.path.join(fresh_dir, "reference.safetensors"))
    problems = [f"reference.safetensors: keys {sorted(old)} != {sorted(new)}"] if sorted(old) != sorted(new) else []
    for k in sorted(set(old) & set(new)):
        diff = float((old[k].double() - new[k].double()).abs().max()) if old[k].shape == new[k].shape else float("inf")
        # Float tensors: 1e-6 as for the other fixtures. uint8 images: one level, since a last-bit float
        # difference between CPUs moves the rare value that sits on a rounding boundary.
        if diff > (1 if old[k].dtype == torch.uint8 else 1e-6):
            problems.append(f"reference.safetensors: {k} differs by {diff:.3g}")
    return problems


def check(model: str) -> int:
    """Regenerate the references with live diffusers and compare them with the committed ones."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write(model, tmp)
        with open(os.path.join(FIXTURE_DIR, "reference.json"), encoding="utf-8") as f:
            committed = json.load(f)
        problems = []
        for key in ("parity", "semantic"):
            a, b = dict(committed[key]), dict(fresh[key])
            if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
                problems.append(f"reference.json: '{key}' differs")
        problems += tensor_problems(FIXTURE_DIR, tmp)
    for p in problems:
        print(p)
    print("shapes references: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="pipeline folder (default: models/default.json's model)")
    parser.add_argument("--out", default=FIXTURE_DIR)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the diffusers score only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = args.model or os.path.join(REPO_ROOT, defaults()["model"])
    if args.check:
        sys.exit(check(model))
    if args.no_write:
        score = semantic_score(load(model))
        score.pop("images")
        print(json.dumps(score, indent=1))
        return
    info = write(model, args.out)
    s = info["semantic"]["diffusers_score"]
    print(f"diffusers semantic score: {s['all_three_right']}/{s['captions']} = {s['percent']}% "
          f"(per attribute {s['per_attribute_right']}); wrote {args.out}")


if __name__ == "__main__":
    main()
