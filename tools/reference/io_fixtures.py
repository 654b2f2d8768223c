"""Reference fixtures for src/io (checkpoint I/O).

Writes, under test/fixtures/io/:
  reference.safetensors  small tensors of every dtype, saved by safetensors.torch.save_file
  reference.json         their dtype, shape and values as Python reads them back (float64 values;
                         64-bit integers as strings), written with Python's json (NaN/Infinity tokens)
  python-config.json     a config saved by diffusers' ConfigMixin.save_config, holding nan/inf/-inf
                         values and strings that spell those tokens

Run: .venv/bin/python tools/reference/io_fixtures.py
"""
import json
import math
import os

import torch
from safetensors.torch import load_file, save_file
from diffusers.configuration_utils import ConfigMixin, register_to_config

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "io")

SPECIAL = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-05, 5.9604645e-08, 1e-40, 3.0e38,
           math.inf, -math.inf, math.nan, 0.1, -1.0 / 3.0]


def tensors():
    t = {
        "f64": torch.tensor(SPECIAL, dtype=torch.float64),
        "f32": torch.tensor(SPECIAL, dtype=torch.float32),
        "f16": torch.tensor(SPECIAL, dtype=torch.float32).to(torch.float16),
        "bf16": torch.tensor(SPECIAL, dtype=torch.float32).to(torch.bfloat16),
        "f8_e4m3": torch.tensor([0.0, -0.0, 1.0, -2.5, 448.0, 0.001953125, 0.1, math.nan], dtype=torch.float32)
        .to(torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.0, -0.0, 1.0, -2.5, 57344.0, 1.52587890625e-05, math.inf, math.nan],
                                dtype=torch.float32).to(torch.float8_e5m2),
        "i64": torch.tensor([0, -1, 2**53 + 1, -(2**63), 2**63 - 1], dtype=torch.int64),
        "u64": torch.tensor([0, 1, 2**62 + 3], dtype=torch.uint64),
        "i32": torch.tensor([0, -1, 2**31 - 1, -(2**31)], dtype=torch.int32),
        "u32": torch.tensor([0, 2**32 - 1], dtype=torch.uint32),
        "i16": torch.tensor([-32768, 32767, 5], dtype=torch.int16),
        "u16": torch.tensor([0, 65535], dtype=torch.uint16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "matrix.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 7,
        "empty": torch.zeros(0, 3),
    }
    return t


def values(x):
    if x.dtype in (torch.int64, torch.uint64):
        return [str(v) for v in x.flatten().tolist()]
    if x.dtype == torch.bool or not x.dtype.is_floating_point:
        return [int(v) for v in x.flatten().tolist()]
    return x.to(torch.float64).flatten().tolist()


class NonFiniteConfig(ConfigMixin):
    config_name = "config.json"

    @register_to_config
    def __init__(self, not_a_number=math.nan, pos_inf=math.inf, neg_inf=-math.inf,
                 text="NaN, Infinity and -Infinity stay text", tokens=("NaN", "-Infinity"),
                 nested=None, scale=0.18215):
        pass


def main():
    os.makedirs(OUT, exist_ok=True)
    t = tensors()
    path = os.path.join(OUT, "reference.safetensors")
    save_file(t, path, metadata={"format": "pt"})
    back = load_file(path)
    ref = {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": values(v)} for k, v in back.items()}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
    cfg = NonFiniteConfig(nested={"deep": [1.5, math.nan, -math.inf, {"x": math.inf}]})
    with open(os.path.join(OUT, "python-config.json"), "w") as f:
        f.write(cfg.to_json_string())


if __name__ == "__main__":
    main()
