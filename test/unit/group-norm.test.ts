/**
 * groupNorm (onnx/ops.ts): torch `nn.GroupNorm` with its affine, against the definition computed in float64. The
 * large case is the size where onnxruntime's InstanceNormalization (the formulation before) drifted: one group of
 * 4,194,304 values, as in the SDXL decoder's last blocks at 1024 px, where its max error was 4.7e-4.
 */
import * as assert from "assert";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights } from "../../src/io/checkpoint";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { GraphBuilder } from "../../src/onnx/graph";
import { groupNorm } from "../../src/onnx/ops";
import { createSession } from "../../src/onnx/session";
import { TorchGenerator } from "../../src/random";
import { makeTempDir, removeTempDir } from "../helpers/st-writer";

const EPS = 1e-6;

/** The largest |ours − float64 definition| over x [N, C, H, W] with `groups` groups. */
async function worstError(dims: [number, number, number, number], groups: number, offset: number): Promise<{ worst: number; scale: number }> {
  const [n, c, h, w] = dims;
  const gen = new TorchGenerator(c * 7 + h);
  const weight = gen.randn([c]);
  const bias = gen.randn([c]);
  const x = gen.randn(dims);
  for (let i = 0; i < x.length; i++) x[i] = 2 * x[i]! + offset;
  const dir = makeTempDir("pixart-groupnorm-");
  try {
    await writeSafetensors(path.join(dir, "model.safetensors"), [
      { name: "norm.weight", dtype: "F32", shape: [c], data: weight },
      { name: "norm.bias", dtype: "F32", shape: [c], data: bias },
    ]);
    const g = new GraphBuilder("group-norm", await openWeights(dir));
    g.output(groupNorm(g, g.input("x", "float32", ["n", c, "h", "w"]), "norm", groups, c, EPS), "y", "float32", ["n", c, "h", "w"]);
    const session = await createSession(g.build(), { intraOpNumThreads: 2 });
    let y: Float32Array;
    try {
      y = (await session.run({ x: new ort.Tensor("float32", x, dims) })).y.data as Float32Array;
    } finally {
      await session.release();
    }
    const size = (c / groups) * h * w;
    let worst = 0;
    let scale = 0;
    for (let start = 0; start < n * c * h * w; start += size) {
      let mean = 0;
      for (let i = start; i < start + size; i++) mean += x[i]!;
      mean /= size;
      let variance = 0;
      for (let i = start; i < start + size; i++) variance += (x[i]! - mean) ** 2;
      const rstd = 1 / Math.sqrt(variance / size + EPS);
      for (let i = start; i < start + size; i++) {
        const ch = Math.floor(i / (h * w)) % c;
        const want = (x[i]! - mean) * rstd * weight[ch]! + bias[ch]!;
        worst = Math.max(worst, Math.abs(y[i]! - want));
        scale = Math.max(scale, Math.abs(want));
      }
    }
    return { worst, scale };
  } finally {
    removeTempDir(dir);
  }
}

describe("groupNorm: torch nn.GroupNorm against its float64 definition", function () {
  this.timeout(120_000);

  it("matches on odd, non-square shapes with a batch of 2 (the group and channel layout)", async () => {
    const { worst, scale } = await worstError([2, 6, 5, 7], 3, 0.5);
    assert.ok(worst <= 1e-6 * scale, `max |Δ| ${worst} at output scale ${scale}`);
  });

  it("stays at float32 rounding on a group of 4,194,304 values with a mean far from 0", async () => {
    // 8 groups of 4 channels × 1024 × 1024. Measured: InstanceNormalization 1.2e-3 here, two-level sums 5.9e-6 (scale 15.5).
    const { worst, scale } = await worstError([1, 32, 1024, 1024], 8, 5);
    assert.ok(worst <= 2e-6 * scale, `max |Δ| ${worst} at output scale ${scale}`);
  });
});
