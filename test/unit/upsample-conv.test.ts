/**
 * upsampleConv2d (onnx/ops.ts): diffusers' Upsample2D (nearest 2× then a 3×3 conv, padding 1) computed as four
 * 2×2 convs at the input's resolution. Checked against the direct formulation (Resize then Conv in onnxruntime)
 * on odd, non-square inputs, so every border phase is exercised.
 */
import * as assert from "assert";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights } from "../../src/io/checkpoint";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { GraphBuilder } from "../../src/onnx/graph";
import { conv2d, upsampleConv2d } from "../../src/onnx/ops";
import { createSession } from "../../src/onnx/session";
import { TorchGenerator } from "../../src/random";
import { makeTempDir, removeTempDir } from "../helpers/st-writer";

type Formulation = "phases" | "resize-then-conv";

async function upsampleConv(dir: string, how: Formulation, x: Float32Array, dims: [number, number, number, number]): Promise<Float32Array> {
  const channels = dims[1];
  const g = new GraphBuilder("upsample", await openWeights(dir));
  const input = g.input("x", "float32", ["n", channels, "h", "w"]);
  let y: string;
  if (how === "phases") {
    y = upsampleConv2d(g, input, "up.conv", channels);
  } else {
    const scales = g.constF32(Float32Array.of(1, 1, 2, 2));
    const up = g.op("Resize", [input, "", scales], { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" });
    y = conv2d(g, up, "up.conv", { inChannels: channels, outChannels: channels, kernel: 3 });
  }
  g.output(y, "y", "float32", ["n", channels, "h2", "w2"]);
  const session = await createSession(g.build());
  try {
    const out = await session.run({ x: new ort.Tensor("float32", x, dims) });
    assert.deepStrictEqual(out.y.dims, [dims[0], channels, 2 * dims[2], 2 * dims[3]]);
    return out.y.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe("upsampleConv2d: nearest 2× + 3×3 conv as four phase convs", () => {
  for (const dims of [[1, 3, 1, 1], [2, 5, 3, 7], [1, 8, 6, 4]] as [number, number, number, number][]) {
    it(`matches Resize then Conv on x ${dims.join("×")} (all four border phases)`, async () => {
      const dir = makeTempDir("pixart-upconv-");
      try {
        const c = dims[1];
        const gen = new TorchGenerator(c * 31 + dims[2]);
        await writeSafetensors(path.join(dir, "model.safetensors"), [
          { name: "up.conv.weight", dtype: "F32", shape: [c, c, 3, 3], data: gen.randn([c, c, 3, 3]) },
          { name: "up.conv.bias", dtype: "F32", shape: [c], data: gen.randn([c]) },
        ]);
        const x = gen.randn(dims);
        const phases = await upsampleConv(dir, "phases", x, dims);
        const direct = await upsampleConv(dir, "resize-then-conv", x, dims);
        const scale = Math.max(...direct.map(Math.abs));
        let worst = 0;
        for (let i = 0; i < direct.length; i++) worst = Math.max(worst, Math.abs(phases[i]! - direct[i]!));
        // Summing two taps before multiplying rounds once more: a few float32 ulps of the output's scale.
        assert.ok(worst <= 4e-7 * scale * Math.sqrt(9 * c), `max |Δ| ${worst} at output scale ${scale}`);
        // And it is not the same computation by accident: a wrong phase or pad is off by O(1).
        assert.ok(scale > 1);
      } finally {
        removeTempDir(dir);
      }
    });
  }
});
