"""diffusers/transformers side of bench/compare.ts: a long-lived worker that loads components and times calls.

The Node benchmark starts this process once and sends one JSON command per line on stdin; every command gets one
JSON line on stdout (anything else the libraries print goes to stderr). Inputs and outputs travel as
safetensors files the Node side writes and reads, so both engines see exactly the same tensors.

Commands ("op"): load, release, transformer, vae, t5, e2e, gemm, quit. Each reply carries "seconds" (the timed
call only), "peak" (VmHWM of this process during the call, bytes; the high-water mark is reset through
/proc/self/clear_refs before it) and "rss". Usage: .venv/bin/python tools/bench/compare_torch.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

PROC_STATUS = "/proc/self/status"


def memory() -> dict[str, int]:
    out = {}
    with open(PROC_STATUS, encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return {"rss": out.get("VmRSS", 0), "peak": out.get("VmHWM", 0)}


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


class Worker:
    def __init__(self, threads: int):
        import_start = time.perf_counter()
        import torch  # noqa: F401  (timed: part of diffusers' start-up cost)
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
        self.import_seconds = time.perf_counter() - import_start
        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        self.torch = torch
        self.models: dict[str, object] = {}

    # ------------------------------------------------------------------ helpers
    def read(self, file: str) -> dict:
        from safetensors.torch import load_file
        return load_file(file)

    def write(self, file: str | None, tensors: dict) -> None:
        if not file:
            return
        from safetensors.torch import save_file
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, file)

    def timed(self, fn, autocast: bool = False):
        torch = self.torch
        reset_peak()
        start = time.perf_counter()
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                result = fn()
        else:
            result = fn()
        seconds = time.perf_counter() - start
        return result, {"seconds": seconds, **memory()}

    # ------------------------------------------------------------------ commands
    def load(self, cmd: dict) -> dict:
        torch = self.torch
        component, folder = cmd["component"], cmd["dir"]
        dtype = getattr(torch, cmd.get("dtype", "float32"))
        key = cmd.get("key", component)

        def do_load():
            if component == "transformer":
                from diffusers import PixArtTransformer2DModel
                return PixArtTransformer2DModel.from_pretrained(folder, dtype=dtype).eval()
            if component == "vae":
                from diffusers import AutoencoderKL
                return AutoencoderKL.from_pretrained(folder, dtype=dtype).eval()
            if component == "text_encoder":
                from transformers import T5EncoderModel
                return T5EncoderModel.from_pretrained(folder, dtype=dtype).eval()
            if component == "pipeline":
                from diffusers import PixArtSigmaPipeline
                pipe = PixArtSigmaPipeline.from_pretrained(folder, text_encoder=None, tokenizer=None, dtype=dtype)
                pipe.set_progress_bar_config(disable=True)
                return pipe
            raise ValueError(f"unknown component {component!r}")

        model, figures = self.timed(do_load)
        self.models[key] = model
        return {**figures, "import_seconds": self.import_seconds}

    def release(self, cmd: dict) -> dict:
        import gc
        self.models.pop(cmd["key"], None)
        gc.collect()
        return memory()

    def transformer(self, cmd: dict) -> dict:
        t = self.read(cmd["inputs"])
        model = self.models[cmd.get("key", "transformer")]

        def run():
            return model(t["hidden_states"], encoder_hidden_states=t["encoder_hidden_states"],
                         encoder_attention_mask=t["encoder_attention_mask"], timestep=t["timestep"],
                         added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)[0]

        out, figures = self.timed(run, cmd.get("autocast", False))
        self.write(cmd.get("output"), {"sample": out})
        return figures

    def vae(self, cmd: dict) -> dict:
        t = self.read(cmd["inputs"])
        model = self.models[cmd.get("key", "vae")]
        if cmd.get("tiled"):
            model.enable_tiling()
        else:
            model.disable_tiling()
        out, figures = self.timed(lambda: model.decode(t["z"], return_dict=False)[0], cmd.get("autocast", False))
        self.write(cmd.get("output"), {"sample": out})
        return figures

    def t5(self, cmd: dict) -> dict:
        t = self.read(cmd["inputs"])
        model = self.models[cmd.get("key", "text_encoder")]
        out, figures = self.timed(lambda: model(t["input_ids"], attention_mask=t["attention_mask"]).last_hidden_state,
                                  cmd.get("autocast", False))
        self.write(cmd.get("output"), {"last_hidden_state": out})
        return figures

    def e2e(self, cmd: dict) -> dict:
        torch = self.torch
        t = self.read(cmd["inputs"])
        pipe = self.models[cmd.get("key", "pipeline")]

        def run():
            return pipe(prompt=None, negative_prompt=None, prompt_embeds=t["prompt_embeds"], prompt_attention_mask=t["prompt_attention_mask"],
                        negative_prompt_embeds=t["negative_prompt_embeds"],
                        negative_prompt_attention_mask=t["negative_prompt_attention_mask"],
                        num_inference_steps=cmd["steps"], height=cmd["size"], width=cmd["size"],
                        guidance_scale=cmd.get("guidance", 4.5), use_resolution_binning=False,
                        generator=torch.Generator().manual_seed(cmd.get("seed", 0)), output_type="pt").images

        out, figures = self.timed(run, cmd.get("autocast", False))
        # output_type "pt" is NCHW in [0, 1]; the Node side compares NHWC, like output_type "np".
        self.write(cmd.get("output"), {"image": out.permute(0, 2, 3, 1)})
        return figures

    def gemm(self, cmd: dict) -> dict:
        """Best-of-N GFLOP/s of one fp32 matmul [m, k] x [k, n] (the machine's GEMM rate as torch sees it)."""
        torch = self.torch
        m, k, n = cmd["m"], cmd["k"], cmd["n"]
        a, b = torch.randn(m, k), torch.randn(k, n)
        best = float("inf")
        for _ in range(cmd.get("reps", 5)):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        return {"seconds": best, "gflops": 2 * m * k * n / best / 1e9}

    def profile_linear(self, cmd: dict) -> dict:
        """One transformer call under torch.profiler: time and FLOPs spent in aten::linear."""
        from torch.profiler import ProfilerActivity, profile
        t = self.read(cmd["inputs"])
        model = self.models[cmd.get("key", "transformer")]
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            model(t["hidden_states"], encoder_hidden_states=t["encoder_hidden_states"],
                  encoder_attention_mask=t["encoder_attention_mask"], timestep=t["timestep"],
                  added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)
        events = prof.key_averages()
        linear_us = sum(e.cpu_time_total for e in events if e.key == "aten::linear")
        flops = sum(e.flops for e in events if e.key in ("aten::addmm", "aten::mm", "aten::bmm") and e.flops)
        total_us = sum(e.self_cpu_time_total for e in events)
        return {"linear_seconds": linear_us / 1e6, "linear_flops": flops, "total_seconds": total_us / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the reply stream
    worker = Worker(args.threads)
    from diffusers.utils import logging as diffusers_logging
    diffusers_logging.set_verbosity_error()
    real_stdout.write(json.dumps({"ready": True, "import_seconds": worker.import_seconds,
                                  "torch": worker.torch.__version__}) + "\n")
    real_stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            reply = {"ok": True, **getattr(worker, cmd["op"])(cmd)}
        except Exception as e:  # reported to the Node side, which fails the benchmark with it
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        real_stdout.write(json.dumps(reply) + "\n")
        real_stdout.flush()
    # Skip the interpreter's teardown (torch's takes 5-8 s on a loaded machine, a sixth of a smoke run): every reply
    # has been written and flushed, and the worker keeps nothing else that needs closing.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
