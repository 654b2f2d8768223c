"""Train the tiny shapes PixArt-Sigma checkpoint (models/tiny-shapes) from nothing, on CPU, in one command.

  .venv/bin/python tools/shapes/train.py                      # full run into models/tiny-shapes
  .venv/bin/python tools/shapes/train.py --smoke --out /tmp/x # a few iterations of every stage (CI)

Stages, all with diffusers' / transformers' own classes and fixed seeds (each stage seeds itself, so a stage
rerun alone with --vae-from gives what the full run gives):
  1. a SentencePiece unigram tokenizer whose pieces are the caption words (the shape word is one token that an
     attention map can point at);
  2. an AutoencoderKL (2 blocks: 32 px images <-> 16x16x4 latents) trained to reconstruct the scenes, MSE plus
     a light KL term; its scaling_factor is set to 1/std of the encoded training latents; it reports how many
     of the 450 scenes read back right after encode -> decode (the ceiling of the semantic score);
  3. PixArtTransformer2DModel on the scaled latents with the PixArt objective: epsilon prediction under the
     linear-beta DDPM schedule of the published scheduler config (1000 steps). The model keeps the 8 output
     channels of the released checkpoints; only the first 4 (epsilon) are trained, as the pipeline discards the
     learned-variance half. The T5EncoderModel (small config) is trained with it. 10% of captions are replaced
     by the empty prompt so classifier-free guidance has an unconditional branch. The saved weights are an
     exponential moving average (decay 0.999) of the trained ones.
What took the held-out score from 6/60 to 58/60 (measured in short runs; the changes were not all isolated):
a VAE trained twice as long at twice the LR (every one of the 450 scenes reads back right after encode ->
decode; the old one got 423, mostly dark or light objects on white), a constant LR of 5e-3 instead of 2e-3
(1e-2 diverged) with an EMA of the weights, the T5 trained with the transformer, the loss weighted towards the
noisy steps where layout and colour are decided (1/SNR clamped to [1, 20]; a clamp of 100 learned slower), and
guidance scale 1.5 in models/default.json (3.0 scored ~10 points lower on the same weights).
Runs single-threaded by default: on a shared, oversubscribed machine torch's 2-thread kernels spin-wait and run
~10x slower than 1 thread.
The folder is written with PixArtSigmaPipeline.save_pretrained, with the published DPM-Solver++ scheduler
config. tools/shapes/evaluate.py scores it on the held-out captions and writes the parity references.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tools", "reference"))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import scenes  # noqa: E402
from configs import PUBLISHED_SCHEDULER_CONFIG  # noqa: E402
from train_tokenizer import SPIECE_MODEL  # noqa: E402

DEFAULT_OUT = os.path.join(REPO_ROOT, "models", "tiny-shapes")
EXTRA_IDS = 100
CAPTION_LENGTH = 16  # tokens; every caption is shorter (checked)


@dataclass(frozen=True)
class Settings:
    seed: int = 8
    image_size: int = 32
    vae_channels: tuple[int, ...] = (8, 16)
    vae_groups: int = 4
    vae_steps: int = 1200
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6
    images_per_scene: int = 8
    t5_d_model: int = 32
    t5_layers: int = 2
    patch_size: int = 4
    heads: int = 4
    head_dim: int = 32
    layers: int = 2
    dit_steps: int = 4500
    dit_batch: int = 32
    dit_lr: float = 5e-3
    caption_dropout: float = 0.1
    snr_gamma: float = 5.0
    loss_weighting: str = "noisy"
    high_noise_weight: float = 20.0
    # Trained with the transformer. Frozen (random) is ~2x faster per step (the caption embeddings are computed
    # once), but then colour words barely learn which object they belong to.
    train_text_encoder: bool = True
    ema_decay: float = 0.999  # > 0: save an exponential moving average of the trained weights

    def smoke(self) -> "Settings":
        return dataclasses.replace(self, vae_steps=3, dit_steps=3, images_per_scene=1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# 1. Tokenizer -----------------------------------------------------------------------------------------------

def build_tokenizer(captions: list[str], folder: str):
    """A unigram SentencePiece model whose pieces are the caption words (each one piece, so the shape word is
    one token an attention map can point at) plus single characters for any other text.

    The unigram trainer, run on a corpus this small and repetitive, keeps fragments ("\u2581r", "ed") rather
    than the words, so the model is written directly: the reference tokenizer's proto (T5 conventions: pad=0,
    eos=1, unk=2, no bos, dummy prefix, its normalisation charsmap) with the pieces replaced. Scores are the
    log relative frequencies of the words in the captions; characters score far below any word.
    """
    import collections
    import math

    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import T5Tokenizer

    proto = pb.ModelProto()
    with open(SPIECE_MODEL, "rb") as f:
        proto.ParseFromString(f.read())
    specials = [(p.piece, p.type) for p in proto.pieces[:3]]
    words = collections.Counter(w for c in captions for w in c.split())
    total = sum(words.values())
    chars = sorted({ch for c in captions for ch in c if ch != " "} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    del proto.pieces[:]
    for piece, kind in specials:
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    for word, count in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        proto.pieces.add(piece="\u2581" + word, score=math.log(count / total), type=1)
    proto.pieces.add(piece="\u2581", score=-15.0, type=1)
    for ch in chars:
        proto.pieces.add(piece=ch, score=-20.0, type=1)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    proto.trainer_spec.input[:] = []
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "spiece.model"), "wb") as f:
        f.write(proto.SerializeToString())
    tokenizer = T5Tokenizer.from_pretrained(folder, extra_ids=EXTRA_IDS)
    split_words = [w for w in words if len(tokenizer.tokenize(w)) != 1]
    if split_words:
        raise RuntimeError(f"tokenizer splits caption words {split_words}")
    return tokenizer


def tokenize(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(captions, padding="max_length", max_length=CAPTION_LENGTH, truncation=True,
                    add_special_tokens=True, return_tensors="pt")
    if int(enc.attention_mask.sum(1).max()) >= CAPTION_LENGTH:
        raise RuntimeError("a caption fills CAPTION_LENGTH tokens")
    return enc.input_ids, enc.attention_mask


# 2. VAE -----------------------------------------------------------------------------------------------------

def build_vae(s: Settings):
    from diffusers import AutoencoderKL

    blocks = len(s.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=s.vae_channels, layers_per_block=1, act_fn="silu", latent_channels=4,
        norm_num_groups=s.vae_groups, sample_size=s.image_size, scaling_factor=1.0, force_upcast=False,
    )


def render_dataset(train: list[scenes.Scene], s: Settings, rng: np.random.Generator):
    """Every training scene drawn images_per_scene times with jitter: (N, 3, H, W) in [-1, 1] and captions."""
    images, captions = [], []
    for scene in train:
        for _ in range(s.images_per_scene):
            images.append(scenes.render(scene, s.image_size, rng))
            captions.append(scene.caption)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, captions


def train_vae(vae, x: torch.Tensor, s: Settings, generator: torch.Generator) -> float:
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=s.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.vae_lr, total_steps=max(s.vae_steps, 2), pct_start=0.1)
    recent = []
    for step in range(s.vae_steps):
        batch = x[torch.randint(0, len(x), (s.vae_batch,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        recon = vae.decode(z).sample
        mse = torch.nn.functional.mse_loss(recon, batch)
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = mse + s.vae_kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = (recent + [float(mse.detach())])[-50:]
        if step % 100 == 0 or step == s.vae_steps - 1:
            log(f"vae step {step}/{s.vae_steps} mse {np.mean(recent):.5f} kl {float(kl.detach()):.3f}")
    vae.eval()
    return float(np.mean(recent)) if recent else float("nan")


@torch.no_grad()
def encode_dataset(vae, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    for chunk in x.split(256):
        d = vae.encode(chunk).latent_dist
        means.append(d.mean)
        stds.append(d.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def vae_round_trip(vae, s: Settings) -> int:
    """How many of all scenes (drawn without jitter) read back right after encode -> decode: the ceiling of the
    semantic score."""
    every = scenes.all_scenes()
    x = torch.from_numpy(np.stack([scenes.render(sc, s.image_size) for sc in every])).permute(0, 3, 1, 2)
    decoded = vae.decode(vae.encode(x.float() / 127.5 - 1).latent_dist.mean).sample
    images = ((decoded.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    return sum(scenes.agrees(sc, img) for sc, img in zip(every, images))


# 3. Transformer + text encoder ------------------------------------------------------------------------------

def build_text_encoder(s: Settings, tokenizer):
    from transformers import T5Config, T5EncoderModel

    vocab = -(-len(tokenizer) // 128) * 128
    config = T5Config(vocab_size=vocab, d_model=s.t5_d_model, d_kv=8, num_heads=4, d_ff=2 * s.t5_d_model,
                      num_layers=s.t5_layers, num_decoder_layers=s.t5_layers, feed_forward_proj="gated-gelu",
                      relative_attention_num_buckets=32, relative_attention_max_distance=128,
                      layer_norm_epsilon=1e-6, dropout_rate=0.0, tie_word_embeddings=False,
                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return T5EncoderModel(config)


def build_transformer(s: Settings):
    from diffusers import PixArtTransformer2DModel

    latent = s.image_size // 2 ** (len(s.vae_channels) - 1)
    return PixArtTransformer2DModel(
        num_attention_heads=s.heads, attention_head_dim=s.head_dim, in_channels=4, out_channels=8,
        num_layers=s.layers, dropout=0.0, norm_num_groups=32, cross_attention_dim=s.heads * s.head_dim,
        attention_bias=True, sample_size=latent, patch_size=s.patch_size, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, upcast_attention=False, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=1, use_additional_conditions=False,
        caption_channels=s.t5_d_model,
    )


def train_transformer(transformer, text_encoder, latents, ids, mask, empty, s: Settings,
                      generator: torch.Generator, on_checkpoint=None) -> float:
    from diffusers import DDPMScheduler

    noise_schedule = DDPMScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02,
                                   beta_schedule="linear", prediction_type="epsilon")
    mean, std, scale = latents
    alphas_cumprod = noise_schedule.alphas_cumprod
    params = list(transformer.parameters()) + (list(text_encoder.parameters()) if s.train_text_encoder else [])
    with torch.no_grad():
        text_encoder.eval()
        frozen = torch.cat([text_encoder(i, attention_mask=m).last_hidden_state
                            for i, m in zip(ids.split(512), mask.split(512))])
        frozen_empty = text_encoder(empty[0][None], attention_mask=empty[1][None]).last_hidden_state[0]
    opt = torch.optim.AdamW(params, lr=s.dit_lr, weight_decay=0.01)
    # Linear warm-up, then constant, as PixArt is trained: the model after N steps does not depend on the total
    # number of steps, so a checkpoint saved along the way (--save-every) is what --dit-steps N reproduces.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 200))
    transformer.train()
    text_encoder.train(s.train_text_encoder)
    ema = [p.detach().clone() for p in params] if s.ema_decay > 0 else None
    recent = []
    for step in range(s.dit_steps):
        idx = torch.randint(0, len(mean), (s.dit_batch,), generator=generator)
        x0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=generator)) * scale
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, 1000, (s.dit_batch,), generator=generator)
        noisy = noise_schedule.add_noise(x0, noise, t)
        b_ids, b_mask = ids[idx].clone(), mask[idx].clone()
        drop = torch.rand(s.dit_batch, generator=generator) < s.caption_dropout
        b_ids[drop], b_mask[drop] = empty[0], empty[1]
        if s.train_text_encoder:
            embeds = text_encoder(b_ids, attention_mask=b_mask).last_hidden_state
        else:
            embeds = frozen[idx].clone()
            embeds[drop] = frozen_empty
        out = transformer(noisy, encoder_hidden_states=embeds, encoder_attention_mask=b_mask, timestep=t,
                          added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)[0]
        # Min-SNR-gamma weighting (Hang et al. 2023; diffusers' training scripts' --snr_gamma) for epsilon
        # prediction: min(SNR, gamma) / SNR, so the nearly clean steps, whose noise is hard to see and which
        # decide little about colour and layout, do not dominate the gradient.
        snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
        if s.loss_weighting == "min_snr":
            weight = torch.clamp(snr, max=s.snr_gamma) / snr
        else:  # "noisy": 1/SNR clamped to [1, high_noise_weight], i.e. an x0-like weight on the noisy steps
            weight = torch.clamp(1 / snr, min=1.0, max=s.high_noise_weight)
        per_sample = ((out[:, :4] - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (weight * per_sample).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if ema is not None:
            with torch.no_grad():
                decay = min(s.ema_decay, (step + 1) / (step + 10))
                torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)
        recent = (recent + [float(loss.detach())])[-200:]
        if step % 200 == 0 or step == s.dit_steps - 1:
            log(f"transformer step {step}/{s.dit_steps} loss {np.mean(recent):.4f}")
        if on_checkpoint is not None and step % 500 == 499 and step < s.dit_steps - 1:
            with swapped(params, ema):
                on_checkpoint(step + 1)
    if ema is not None:
        with torch.no_grad():
            for p, e in zip(params, ema):
                p.copy_(e)
    transformer.eval()
    text_encoder.eval()
    return float(np.mean(recent)) if recent else float("nan")


class swapped:
    """Within the block, params hold the EMA weights (when there is an EMA)."""

    def __init__(self, params, ema):
        self.params, self.ema = params, ema

    def __enter__(self):
        if self.ema is not None:
            self.kept = [p.detach().clone() for p in self.params]
            with torch.no_grad():
                for p, e in zip(self.params, self.ema):
                    p.copy_(e)

    def __exit__(self, *exc):
        if self.ema is not None:
            with torch.no_grad():
                for p, k in zip(self.params, self.kept):
                    p.copy_(k)


# Saving -----------------------------------------------------------------------------------------------------

def save(folder: str, tokenizer, text_encoder, vae, transformer) -> None:
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline

    fields = {k: v for k, v in PUBLISHED_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    pipe = PixArtSigmaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                               scheduler=DPMSolverMultistepScheduler(**fields))
    if os.path.exists(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w", encoding="utf-8") as f:
        json.dump(PUBLISHED_SCHEDULER_CONFIG, f, indent=2)
        f.write("\n")


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--smoke", action="store_true", help="a few iterations of every stage (CI)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 is ~10x faster than 2 on a shared, oversubscribed machine")
    parser.add_argument("--vae-steps", type=int)
    parser.add_argument("--dit-steps", type=int)
    parser.add_argument("--dit-lr", type=float)
    parser.add_argument("--vae-from", help="reuse the VAE of this earlier run's folder (iterating on stage 3)")
    parser.add_argument("--vae-only", action="store_true", help="stop after the VAE (saved as OUT/vae)")
    parser.add_argument("--save-every", action="store_true", help="also save OUT.stepN every 500 transformer steps")
    parser.add_argument("--dit-batch", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a Settings field (experiments), e.g. --set vae_channels=8,16")
    args = parser.parse_args()
    s = Settings().smoke() if args.smoke else Settings()
    if args.vae_steps is not None:
        s = dataclasses.replace(s, vae_steps=args.vae_steps)
    if args.dit_steps is not None:
        s = dataclasses.replace(s, dit_steps=args.dit_steps)
    for item in args.set:
        key, value = item.split("=", 1)
        current = getattr(s, key)
        if isinstance(current, tuple):
            parsed = tuple(int(v) for v in value.split(","))
        elif isinstance(current, bool):
            parsed = {"true": True, "false": False}[value.lower()]
        else:
            parsed = type(current)(value)
        s = dataclasses.replace(s, **{key: parsed})
    if args.dit_batch is not None:
        s = dataclasses.replace(s, dit_batch=args.dit_batch)
    if args.dit_lr is not None:
        s = dataclasses.replace(s, dit_lr=args.dit_lr)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(s.seed)
    start = time.perf_counter()

    train, held_out = scenes.split()
    log(f"{len(train)} training scenes, {len(held_out)} held out; settings {dataclasses.asdict(s)}")
    with tempfile.TemporaryDirectory() as tok_dir:
        tokenizer = build_tokenizer([sc.caption for sc in train], tok_dir)

    x, captions = render_dataset(train, s, rng)
    # Each stage starts from its own seeds, so a stage run alone (--vae-from) gives what the full run gives.
    t0 = time.perf_counter()
    if args.vae_from:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(os.path.join(args.vae_from, "vae")).eval()
        vae.register_to_config(scaling_factor=1.0)
        vae_mse = float("nan")
    else:
        torch.manual_seed(s.seed)
        vae = build_vae(s)
        vae_mse = train_vae(vae, x, s, torch.Generator().manual_seed(s.seed))
    vae_seconds = time.perf_counter() - t0
    mean, std = encode_dataset(vae, x)
    scale = float(1.0 / torch.cat([mean, mean + std]).std())
    vae.register_to_config(scaling_factor=scale)
    vae_read_back = vae_round_trip(vae, s)
    log(f"vae done in {vae_seconds:.0f}s, mse {vae_mse:.5f}, scaling_factor {scale:.4f}, "
        f"scenes read back right {vae_read_back}/{len(scenes.all_scenes())}")
    if args.vae_only:
        vae.save_pretrained(os.path.join(args.out, "vae"))
        return

    ids, mask = tokenize(tokenizer, captions)
    empty = tokenize(tokenizer, [""])
    torch.manual_seed(s.seed + 1)
    text_encoder = build_text_encoder(s, tokenizer)
    transformer = build_transformer(s)
    t0 = time.perf_counter()
    def checkpoint(step: int) -> None:
        if args.save_every:
            save(f"{args.out}.step{step}", tokenizer, text_encoder, vae, transformer)

    dit_loss = train_transformer(transformer, text_encoder, (mean, std, scale), ids, mask,
                                 (empty[0][0], empty[1][0]), s, torch.Generator().manual_seed(s.seed + 1), checkpoint)
    dit_seconds = time.perf_counter() - t0

    save(args.out, tokenizer, text_encoder, vae, transformer)
    total = time.perf_counter() - start
    summary = {
        "settings": dataclasses.asdict(s), "smoke": args.smoke, "threads": args.threads,
        "vae_final_mse": vae_mse, "vae_scenes_read_back": vae_read_back, "transformer_final_loss": dit_loss,
        "scaling_factor": scale,
        "vae_seconds": round(vae_seconds), "transformer_seconds": round(dit_seconds), "total_seconds": round(total),
        "loadavg": open("/proc/loadavg").read().split()[:3], "bytes": folder_bytes(args.out),
        "torch": torch.__version__,
    }
    log(json.dumps(summary))
    print(args.out)


if __name__ == "__main__":
    main()
