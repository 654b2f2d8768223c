"""Reference fixtures for src/random (torch-identical seeded noise).

Writes test/fixtures/randn/randn.safetensors: float32 tensors drawn by torch's CPU generator, and in the
safetensors metadata under "manifest" a JSON list of draw sequences:
  {"name", "seed" (decimal string, or null for an unseeded torch.Generator()), "kernel" ("avx2" | "generic"),
   "draws": [{"op": "randn" | "rand" | "randn_tensor", "shape", "tensor" | ("sha256", "samples"),
              "seeds" (randn_tensor with a list of generators)}]}
Each sequence uses one generator, so consecutive draws check that the state advances as torch's does.
Large draws are recorded as the SHA-256 of their little-endian float32 bytes plus sampled values.

The "avx2" sequences need torch's vectorised normal kernel (x86 CPU capability AVX2 or AVX512); the
"generic" ones are drawn in a subprocess with ATEN_CPU_CAPABILITY=default (the kernel torch uses on CPUs
without AVX2, e.g. ARM).

Run: .venv/bin/python tools/reference/randn.py
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from diffusers.utils.torch_utils import randn_tensor

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "randn", "randn.safetensors")
FULL_LIMIT = 16384  # draws up to this many elements are stored whole

SEQUENCES = [
    ("latent_small_seed0", 0, [("randn", [1, 4, 8, 8])]),
    ("latent_small_seed42", 42, [("randn", [1, 4, 8, 8])]),
    ("latent_small_seed1234", 1234, [("randn", [1, 4, 8, 8])]),
    ("latent_small_seed2p32p5", 2**32 + 5, [("randn", [1, 4, 8, 8])]),
    ("latent_small_seed_minus1", -1, [("randn", [1, 4, 8, 8])]),
    ("latent_small_seed_2p64m1", 2**64 - 1, [("randn", [4, 4])]),
    ("latent_batch2_seed0", 0, [("randn", [2, 4, 16, 16])]),
    ("latent_batch2_seed42", 42, [("randn", [2, 4, 16, 16])]),
    ("latent_batch2_seed1234", 1234, [("randn", [2, 4, 16, 16])]),
    ("latent_1024px_seed42", 42, [("randn", [1, 4, 128, 128])]),
    ("latent_1024px_seed7", 7, [("randn", [1, 4, 128, 128])]),
    ("latent_4096px_seed5", 5, [("randn", [1, 4, 512, 512])]),
    ("not_multiple_of_16", 7, [("randn", [3, 7, 5])]),
    ("seventeen", 3, [("randn", [17])]),
    ("exactly_16", 3, [("randn", [16])]),
    ("fewer_than_16", 11, [("randn", [5]), ("randn", [1]), ("randn", [15])]),
    ("consecutive", 123, [("randn", [5]), ("randn", [3]), ("randn", [2, 4, 8, 8]), ("randn", [7]),
                          ("rand", [10]), ("randn", [1]), ("randn", [33]), ("rand", [2, 40]),
                          ("randn", [1, 4, 128, 128]), ("randn", [2])]),
    ("two_latents_in_a_row", 2024, [("randn", [1, 4, 16, 16]), ("randn", [1, 4, 16, 16])]),
    ("uniform", 42, [("rand", [64]), ("rand", [3])]),
    ("empty", 9, [("randn", [0]), ("randn", [2, 0, 3]), ("randn", [4])]),
    ("unseeded", None, [("randn", [20]), ("randn", [3])]),
]
# diffusers' randn_tensor with one generator per batch row
RANDN_TENSOR = [("randn_tensor_generator_list", [10, 11, 12], [3, 4, 8, 8]),
                ("randn_tensor_one_generator_in_list", [10], [3, 4, 8, 8]),
                ("randn_tensor_more_generators_than_rows", [10, 11, 12], [2, 4, 8, 8])]
GENERIC = [("generic_kernel_seed42", 42, [("randn", [2, 4, 16, 16])]),
           ("generic_kernel_seed7", 7, [("randn", [1, 4, 64, 64])])]


def record(name, array, tensors, index):
    flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
    if flat.size <= FULL_LIMIT:
        key = f"{name}/{index}"
        tensors[key] = flat
        return {"tensor": key}
    picks = np.linspace(0, flat.size - 1, 64).round().astype(np.int64)
    return {"sha256": hashlib.sha256(flat.tobytes()).hexdigest(),
            "samples": [[int(i), float(flat[i])] for i in picks]}


def draw_sequences(sequences, kernel, tensors):
    manifest = []
    for name, seed, draws in sequences:
        g = torch.Generator("cpu")
        if seed is not None:
            g.manual_seed(seed)
        entry = {"name": name, "seed": None if seed is None else str(seed), "kernel": kernel, "draws": []}
        for i, (op, shape) in enumerate(draws):
            fn = torch.randn if op == "randn" else torch.rand
            value = fn(shape, generator=g, dtype=torch.float32)
            entry["draws"].append({"op": op, "shape": shape, **record(name, value.numpy(), tensors, i)})
        manifest.append(entry)
    return manifest


def draw_randn_tensor(tensors):
    manifest = []
    for name, seeds, shape in RANDN_TENSOR:
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        value = randn_tensor(tuple(shape), generator=gens, dtype=torch.float32)
        draw = {"op": "randn_tensor", "shape": shape, "seeds": [str(s) for s in seeds],
                **record(name, value.numpy(), tensors, 0)}
        manifest.append({"name": name, "seed": None, "kernel": "avx2", "draws": [draw]})
    return manifest


def generic_child():
    """Runs in the subprocess: draws GENERIC and writes them (npz) to the path in argv[2]."""
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
    tensors = {}
    manifest = draw_sequences(GENERIC, "generic", tensors)
    np.savez(sys.argv[2], manifest=json.dumps(manifest), **{k.replace("/", "|"): v for k, v in tensors.items()})


def main():
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        sys.exit(f"needs torch's AVX2/AVX512 CPU kernel for the avx2 fixtures, this machine has {capability}")
    tensors = {}
    manifest = draw_sequences(SEQUENCES, "avx2", tensors) + draw_randn_tensor(tensors)

    tmp = OUT + ".generic.npz"
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, __file__, "--generic", tmp], env=env, check=True)
    with np.load(tmp) as z:
        manifest += json.loads(str(z["manifest"]))
        tensors.update({k.replace("|", "/"): z[k] for k in z.files if k != "manifest"})
    os.remove(tmp)

    meta = {"manifest": json.dumps(manifest), "torch": torch.__version__, "cpu_capability": capability}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}: {len(manifest)} sequences, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--generic":
        generic_child()
    else:
        main()
