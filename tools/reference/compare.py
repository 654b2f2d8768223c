"""Compare a freshly generated fixture tree with the committed one (the --check mode of make_fixtures.py)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

TENSOR_ATOL = 1e-6
# Plus this much of the committed tensor's largest magnitude (torch.allclose's default rtol, applied to the tensor's
# scale). The fixtures are regenerated on whatever CPU CI gets, and torch's float32 kernels differ between CPUs
# (AVX-512 vs AVX2 GEMM blocking changes the summation order); over the denoising steps those few-ulp differences
# spread across the whole tensor, so they scale with the tensor, not with each element. Measured: fixtures
# committed on an AVX-512 (Zen 4) machine, regenerated on an AVX2-only EPYC, differ by at most 2.75e-4 on tiny-square
# pipeline latents (largest magnitude 180: 1.5e-6 of it) and 4.8e-6 on tiny-wide VAE samples. Any change to what is
# computed moves these tensors by orders of magnitude more.
TENSOR_RTOL = 1e-5
# Tensors derived from a whole pipeline run, whose latents differ between CPUs (torch's kernels) far more than 1e-6:
# fed another machine's committed trajectory, this machine's attention processor gave probabilities 1.0e-6, token
# maps 5.7e-7 and min-max normalised word maps 8.9e-6 away from its own run's. Bounds with a 10x margin; a change
# in what is computed moves these by far more.
TENSOR_ATOL_BY_KEY = {
    "attention.pipeline.probs": 1e-5,
    "attention.pipeline.token_maps": 1e-5,
    "attention.pipeline.word_maps": 1e-4,
}


def list_files(root: str) -> set[str]:
    found = set()
    for folder, _, files in os.walk(root):
        for name in files:
            found.add(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return found


def compare_trees(expected_root: str, actual_root: str, names: list[str]) -> list[str]:
    """Return human-readable differences between expected_root/NAME and actual_root/NAME for each name."""
    problems: list[str] = []
    for name in names:
        expected, actual = os.path.join(expected_root, name), os.path.join(actual_root, name)
        if not os.path.isdir(expected):
            problems.append(f"{name}: committed fixture folder {expected} is missing")
            continue
        expected_files, actual_files = list_files(expected), list_files(actual)
        for missing in sorted(actual_files - expected_files):
            problems.append(f"{name}/{missing}: generated but not committed")
        for extra in sorted(expected_files - actual_files):
            problems.append(f"{name}/{extra}: committed but no longer generated")
        for rel in sorted(expected_files & actual_files):
            problems += [f"{name}/{rel}: {p}" for p in compare_file(os.path.join(expected, rel), os.path.join(actual, rel))]
    return problems


def compare_file(expected: str, actual: str) -> list[str]:
    if expected.endswith(".safetensors"):
        return compare_safetensors(expected, actual)
    if expected.endswith(".json"):
        with open(expected, encoding="utf-8") as f:
            want = json.load(f)
        with open(actual, encoding="utf-8") as f:
            got = json.load(f)
        return compare_json(want, got, "")
    with open(expected, "rb") as f:
        want_bytes = f.read()
    with open(actual, "rb") as f:
        got_bytes = f.read()
    return [] if want_bytes == got_bytes else [f"bytes differ ({len(want_bytes)} committed, {len(got_bytes)} generated)"]


def compare_safetensors(expected: str, actual: str) -> list[str]:
    want, got = load_file(expected), load_file(actual)
    problems = []
    with safe_open(expected, "pt") as f_want, safe_open(actual, "pt") as f_got:
        if f_want.metadata() != f_got.metadata():
            problems.append(f"metadata {f_got.metadata()}, committed {f_want.metadata()}")
    for key in sorted(set(want) | set(got)):
        if key not in got:
            problems.append(f"tensor {key} no longer generated")
        elif key not in want:
            problems.append(f"tensor {key} generated but not committed")
        else:
            atol = TENSOR_ATOL_BY_KEY.get(key, TENSOR_ATOL)
            problems += [f"tensor {key}: {p}" for p in compare_tensor(want[key], got[key], atol)]
    return problems


def compare_tensor(want: torch.Tensor, got: torch.Tensor, atol: float = TENSOR_ATOL) -> list[str]:
    if want.dtype != got.dtype:
        return [f"dtype {got.dtype}, committed {want.dtype}"]
    if want.shape != got.shape:
        return [f"shape {list(got.shape)}, committed {list(want.shape)}"]
    if want.numel() == 0:
        return []
    if not want.is_floating_point():
        differing = int((want != got).sum())
        return [f"{differing} integer values differ"] if differing else []
    diff = (want.double() - got.double()).abs()
    scale = float(want.double().abs().max())
    bound = atol + TENSOR_RTOL * scale
    worst = float(diff.max())
    if not worst <= bound:
        index = tuple(int(i) for i in torch.unravel_index(torch.argmax(diff), diff.shape))
        return [f"max abs diff {worst:.3g} > {bound:.3g} ({atol} + {TENSOR_RTOL} × largest |committed| {scale:.4g}) "
                f"at {list(index)} (committed {float(want[index]):.9g}, generated {float(got[index]):.9g})"]
    return []


def compare_json(want: Any, got: Any, where: str) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        problems = []
        for key in sorted(set(want) | set(got)):
            path = f"{where}.{key}" if where else key
            if key not in got:
                problems.append(f"{path}: key no longer generated")
            elif key not in want:
                problems.append(f"{path}: key generated but not committed")
            else:
                problems += compare_json(want[key], got[key], path)
        return problems
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: length {len(got)}, committed {len(want)}"]
        return [p for i, (a, b) in enumerate(zip(want, got)) for p in compare_json(a, b, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, float) and math.isnan(want) and math.isnan(got):
        return []
    if type(want) is not type(got) or want != got:
        return [f"{where}: {json.dumps(got)}, committed {json.dumps(want)}"]
    return []
