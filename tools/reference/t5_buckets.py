"""Relative-position buckets of transformers' T5 encoder, as torch computes them, for the TS unit test.

Writes test/fixtures/t5/relative-position-buckets.json: for each (num_buckets, max_distance) pair, the bucket of
every relative position rel = key - query in [-(L-1), L-1] for L = 512, read from the [L, L] table that
T5Attention.compute_bias builds. It also checks that the tables for several smaller L hold the same bucket for
the same rel, so the TS side may compute one bucket per rel.

Run: .venv/bin/python tools/reference/t5_buckets.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from transformers.models.t5.modeling_t5 import T5Attention

MAX_LENGTH = 512
OTHER_LENGTHS = (1, 2, 7, 64, 120, 300)
# (32, 128): T5 v1.1 / PixArt-Sigma and the tiny-square/tiny-wide fixtures; (8, 20): tiny-hires; the rest vary
# the exact/log split and the cap; at (18, 128) double precision would put |rel| = 8, 16 and 64 one bucket low.
PAIRS = ((32, 128), (8, 20), (18, 128), (16, 50), (64, 256), (32, 64), (12, 30), (4, 5))

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "t5" / "relative-position-buckets.json"


def table(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """The bucket table exactly as T5Attention.compute_bias builds it (query rows, key columns)."""
    context = torch.arange(length, dtype=torch.long)[:, None]
    memory = torch.arange(length, dtype=torch.long)[None, :]
    return T5Attention._relative_position_bucket(
        memory - context, bidirectional=True, num_buckets=num_buckets, max_distance=max_distance
    )


def by_rel(t: torch.Tensor) -> list[int]:
    """Buckets for rel = -(L-1) .. L-1, checking every diagonal of the table is constant."""
    length = t.shape[0]
    out = []
    for rel in range(-(length - 1), length):
        diag = torch.diagonal(t, offset=rel)
        assert bool((diag == diag[0]).all()), f"diagonal {rel} is not constant"
        out.append(int(diag[0]))
    return out


def main() -> None:
    cases = []
    for num_buckets, max_distance in PAIRS:
        full = by_rel(table(MAX_LENGTH, num_buckets, max_distance))
        for length in OTHER_LENGTHS:
            small = by_rel(table(length, num_buckets, max_distance))
            mid = MAX_LENGTH - 1
            assert small == full[mid - (length - 1): mid + length], f"L={length} differs from L={MAX_LENGTH}"
        cases.append({"num_buckets": num_buckets, "max_distance": max_distance, "buckets": full})
    doc = {
        "about": "T5 bidirectional relative-position buckets from torch; buckets[i] is for rel = i - (max_length - 1)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "max_length": MAX_LENGTH,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
