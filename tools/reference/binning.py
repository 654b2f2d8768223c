"""Reference for resolution binning and resize-and-crop (diffusers PixArtImageProcessor), and for postprocess.

Writes test/fixtures/binning/binning.safetensors + cases.json. Run: .venv/bin/python tools/reference/binning.py
"""
import json
import os

import torch
from diffusers.image_processor import PixArtImageProcessor, VaeImageProcessor
from diffusers.pipelines.pixart_alpha.pipeline_pixart_alpha import ASPECT_RATIO_256_BIN, ASPECT_RATIO_512_BIN, ASPECT_RATIO_1024_BIN
from diffusers.pipelines.pixart_alpha.pipeline_pixart_sigma import ASPECT_RATIO_2048_BIN
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "binning")
TABLES = {32: ASPECT_RATIO_256_BIN, 64: ASPECT_RATIO_512_BIN, 128: ASPECT_RATIO_1024_BIN, 256: ASPECT_RATIO_2048_BIN}


def main():
    os.makedirs(OUT, exist_ok=True)
    sizes = [(256, 256), (256, 384), (384, 256), (1024, 768), (768, 1024), (512, 2048), (2048, 512), (1000, 1000),
             (800, 600), (600, 800), (1080, 1920), (1920, 1080), (64, 64), (8, 2048), (2048, 8), (720, 1280), (333, 777)]
    classify = []
    for sample_size, table in TABLES.items():
        for h, w in sizes:
            bh, bw = PixArtImageProcessor.classify_height_width_bin(h, w, ratios=table)
            classify.append({"sample_size": sample_size, "height": h, "width": w, "bin": [bh, bw]})
    g = torch.Generator().manual_seed(0)
    tensors, resize = {}, []
    for i, (shape, new_h, new_w) in enumerate([((1, 3, 26, 38), 24, 40), ((2, 1, 32, 48), 30, 44), ((1, 3, 40, 24), 64, 32),
                                                ((1, 1, 52, 76), 64, 96)]):
        x = torch.rand(shape, generator=g) * 2 - 1
        y = PixArtImageProcessor.resize_and_crop_tensor(x, new_w, new_h)
        tensors[f"resize{i}.in"], tensors[f"resize{i}.out"] = x.contiguous(), y.contiguous()
        resize.append({"name": f"resize{i}", "new_height": new_h, "new_width": new_w})
    img = torch.rand((2, 3, 5, 7), generator=g) * 2.4 - 1.2  # values past [-1, 1] exercise the clamp
    img[0, 0, 0, :4] = torch.tensor([2 * (0.5 / 255) - 1, 2 * (1.5 / 255) - 1, 2 * (2.5 / 255) - 1, 0.0])  # halves
    proc = VaeImageProcessor(vae_scale_factor=8)
    tensors["post.in"] = img.contiguous()
    tensors["post.np"] = torch.from_numpy(proc.postprocess(img, output_type="np")).contiguous()
    tensors["post.uint8"] = torch.from_numpy((proc.postprocess(img, output_type="np") * 255).round().astype("uint8")).contiguous()
    save_file(tensors, os.path.join(OUT, "binning.safetensors"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"classify": classify, "resize": resize}, f, indent=1)


if __name__ == "__main__":
    main()
