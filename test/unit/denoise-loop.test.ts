/**
 * The in-graph denoising loop (models/pixart-denoise-loop.ts, `call({ stepsPerRun })`): the scheduler's linear step
 * plan against step(), the loop against the step-by-step pipeline on the tiny checkpoints, host traffic per step,
 * and the arguments it refuses.
 */
import * as assert from "assert";
import * as fs from "fs";
import { validTextLength } from "../../src/models/pixart-transformer-2d-text";
import { PixArtSigmaPipeline, PipelineArgumentError, type CallOptions, type StepInfo } from "../../src/pipeline/pixart-sigma";
import { DPMSolverMultistepScheduler } from "../../src/schedulers/dpm-solver-multistep";
import { schedulerFromConfig, type SchedulerConfig } from "../../src/schedulers/scheduler";
import { SchedulerUsageError } from "../../src/schedulers/errors";
import type { LinearStepPlan } from "../../src/models/pixart-denoise-loop";
import { tinyConfigs } from "../helpers/reference";

const fr = Math.fround;

/** The plan's update in float32, operation by operation, as the loop graph computes it. */
function applyPlan(plan: LinearStepPlan, j: number, x: Float32Array, e: Float32Array, mPrev: Float32Array): { x: Float32Array; m: Float32Array } {
  const m = new Float32Array(x.length);
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    m[k] = fr(fr(fr(plan.p[j] * x[k]) - fr(plan.q[j] * e[k])) / plan.r[j]);
    const d1 = fr(plan.inv[j] * fr(m[k] - mPrev[k]));
    out[k] = fr(fr(fr(plan.cx[j] * x[k]) - fr(plan.c0[j] * m[k])) + fr(plan.c1[j] * d1));
  }
  return { x: out, m };
}

function pixartSchedulerConfig(): SchedulerConfig {
  const file = `${tinyConfigs()[0].pipeline}/scheduler/scheduler_config.json`;
  // Plain JSON (the file's bare -Infinity is the default of lambda_min_clipped anyway).
  const { lambda_min_clipped: _, ...cfg } = JSON.parse(fs.readFileSync(file, "utf8").replace("-Infinity", "null")) as SchedulerConfig;
  return cfg;
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  };
}

describe("in-graph denoising loop", function () {
  this.timeout(300_000);

  describe("DPMSolverMultistepScheduler.linearStepPlan", () => {
    const variants: SchedulerConfig[] = [];
    for (const algorithm_type of ["dpmsolver++", "dpmsolver"]) {
      for (const solver_type of ["midpoint", "heun"]) {
        for (const prediction_type of ["epsilon", "sample", "v_prediction"]) {
          for (const solver_order of [1, 2]) {
            variants.push({ algorithm_type, solver_type, prediction_type, solver_order, final_sigmas_type: algorithm_type === "dpmsolver" ? "sigma_min" : "zero" });
          }
        }
      }
    }
    variants.push({ use_karras_sigmas: true }, { euler_at_final: true }, { lower_order_final: false });

    it(`applied in float32, gives step()'s samples bit for bit (${variants.length} configurations, runs of 1 to 7 steps)`, () => {
      const rnd = seeded(7);
      for (const v of variants) {
        for (const [n, k] of [[7, 3], [20, 7], [5, 1], [4, 4]]) {
          const ref = schedulerFromConfig({ ...pixartSchedulerConfig(), ...v }) as DPMSolverMultistepScheduler;
          const planned = schedulerFromConfig({ ...pixartSchedulerConfig(), ...v }) as DPMSolverMultistepScheduler;
          ref.setTimesteps(n);
          planned.setTimesteps(n);
          const size = 32;
          let xRef: Float32Array = Float32Array.from({ length: size }, rnd);
          let x: Float32Array = Float32Array.from(xRef);
          for (let start = 0; start < n; start += k) {
            const count = Math.min(k, n - start);
            const plan = planned.linearStepPlan(count);
            let mPrev: Float32Array = planned.lastModelOutput ?? new Float32Array(size);
            for (let j = 0; j < count; j++) {
              const e = Float32Array.from({ length: size }, rnd);
              xRef = ref.step(e, ref.timesteps[start + j], xRef);
              assert.strictEqual(plan.timesteps[j], ref.timesteps[start + j]);
              ({ x, m: mPrev } = applyPlan(plan, j, x, e, mPrev));
            }
            planned.commitLinearSteps(count, mPrev);
            assert.deepStrictEqual(Array.from(x), Array.from(xRef), `${JSON.stringify(v)}, ${n} steps in runs of ${k}, after step ${start + count}`);
          }
          assert.strictEqual(planned.stepIndex, ref.stepIndex);
        }
      }
    });

    it("says why a configuration cannot be planned: SDE noise, thresholding, third-order steps, too many steps", () => {
      const reason = (over: SchedulerConfig, steps = 10, count = steps) => {
        const s = schedulerFromConfig({ ...pixartSchedulerConfig(), ...over }) as DPMSolverMultistepScheduler;
        s.setTimesteps(steps);
        return s.linearStepPlanUnsupported(count);
      };
      assert.strictEqual(reason({}), null);
      assert.match(reason({ algorithm_type: "sde-dpmsolver++" })!, /draws noise/);
      assert.match(reason({ thresholding: true })!, /thresholding/);
      assert.match(reason({ solver_order: 3 }, 20)!, /third-order .*solver_order <= 2/);
      assert.match(reason({}, 10, 11)!, /do not fit the 10 timesteps/);
      const s = schedulerFromConfig({ ...pixartSchedulerConfig(), thresholding: true }) as DPMSolverMultistepScheduler;
      s.setTimesteps(4);
      assert.throws(() => s.linearStepPlan(2), (e: unknown) => e instanceof SchedulerUsageError && /linearStepPlan/.test(e.message));
    });
  });

  for (const config of tinyConfigs()) {
    describe(`${config.name}: call({ stepsPerRun }) vs the step-by-step loop`, () => {
      const base: CallOptions<"latent"> = { prompt: ["a red cube", "two spheres"], numInferenceSteps: 6, seed: 3, outputType: "latent",
        useResolutionBinning: false, guidanceScale: 4.5 };

      it("gives the same latents bit for bit with graphOptimizationLevel \"extended\", for runs of 1, 4 and 6 steps", async () => {
        // Without the layout optimizations of level "all" the loop body and the one-step graph run the same kernels.
        const pipe = await PixArtSigmaPipeline.fromPretrained(config.pipeline, { session: { graphOptimizationLevel: "extended" } });
        try {
          const ref = await pipe.call(base);
          for (const k of [1, 4, 6]) {
            const out = await pipe.call({ ...base, stepsPerRun: k });
            assert.strictEqual(out.stepsRun, 6);
            assert.ok(out.latents.data.every((v, i) => v === ref.latents.data[i]), `stepsPerRun ${k}: latents differ`);
          }
        } finally {
          await pipe.dispose();
        }
      });

      it("stays within 1e-5 × max|latents| with the default optimizations, and hands onnxruntime the text and positions once per run", async () => {
        const pipe = await PixArtSigmaPipeline.fromPretrained(config.pipeline);
        try {
          const t = pipe.transformer!;
          const ref = await pipe.call({ ...base, guidanceScale: 1 });
          const stepwise = { ...t.hostTraffic };
          const out = await pipe.call({ ...base, guidanceScale: 1, stepsPerRun: 6 });
          const loop = { runs: t.hostTraffic.runs - stepwise.runs, steps: t.hostTraffic.steps - stepwise.steps,
            bytesIn: t.hostTraffic.bytesIn - stepwise.bytesIn, bytesOut: t.hostTraffic.bytesOut - stepwise.bytesOut };
          const scale = ref.latents.data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
          const diff = out.latents.data.reduce((a, v, i) => Math.max(a, Math.abs(v - ref.latents.data[i])), 0);
          // Level "all" turns the patch-embedding Conv of the one-step graph into onnxruntime's blocked (NCHWc) kernel
          // but not the one in the Loop body: the sums are ordered differently (measured ≤ 5e-7 × max|latents| here).
          assert.ok(diff <= 1e-5 * scale, `max difference ${diff} > 1e-5 × ${scale}`);

          // Exactly the feeds of one run: text and mask (trimmed to the tokens some prompt keeps), positions, latents,
          // m₋₁ and the 8 plan arrays of 6 steps; out: the latents and m. Step by step, the text graph runs once (the
          // trimmed text in, every block's keys and values out), then the keys and values, mask and positions go in
          // on each of the 6 steps.
          const c = t.config;
          const [batch, , h, w] = ref.latents.dims;
          const latentBytes = batch * c.inChannels * h * w * 4;
          const len = validTextLength((await pipe.encodePrompt(base.prompt!, { doClassifierFreeGuidance: false })).promptAttentionMask);
          assert.ok(len < 300);
          const [embeds, mask] = [batch * len * c.captionChannels! * 4, batch * len * 8];
          const pos = (h / c.patchSize) * (w / c.patchSize) * c.innerDim * 4;
          assert.deepStrictEqual(loop, { runs: 1, steps: 6, bytesIn: embeds + mask + pos + 2 * latentBytes + 8 * 6 * 4, bytesOut: 2 * latentBytes });
          const timestep = batch * 4;
          const keysValues = c.numLayers * 2 * batch * len * c.innerDim * 4;
          assert.deepStrictEqual(stepwise, { runs: 7, steps: 6, bytesIn: embeds + 6 * (keysValues + mask + pos + latentBytes + timestep),
            bytesOut: keysValues + 6 * (latentBytes / c.inChannels) * c.outChannels });
        } finally {
          await pipe.dispose();
        }
      });
    });
  }

  describe("progress, callbacks and refusals", () => {
    let pipe: PixArtSigmaPipeline;
    const config = tinyConfigs()[0];
    before(async () => { pipe = await PixArtSigmaPipeline.fromPretrained(config.pipeline); });
    after(async () => { await pipe.dispose(); });
    const base: CallOptions<"latent"> = { prompt: "a red cube", numInferenceSteps: 7, seed: 1, outputType: "latent", useResolutionBinning: false };

    it("calls back after each run's last step, and stops after the run whose callback returns false", async () => {
      const seen: number[] = [];
      const all = await pipe.call({ ...base, stepsPerRun: 3, callbackOnStepEnd: (i: StepInfo) => { seen.push(i.step); } });
      assert.deepStrictEqual(seen, [2, 5, 6]);
      assert.strictEqual(all.stepsRun, 7);
      const stopped = await pipe.call({ ...base, stepsPerRun: 3, callbackOnStepEnd: (i: StepInfo) => i.step < 5 });
      assert.strictEqual(stopped.stepsRun, 6);
      assert.strictEqual(pipe.lastRun?.stepsRun, 6);
    });

    it("refuses what it cannot run with a PipelineArgumentError naming stepsPerRun", async () => {
      const refused = async (options: CallOptions, why: RegExp) => {
        await assert.rejects(pipe.call(options), (e: unknown) => e instanceof PipelineArgumentError && /stepsPerRun/.test(e.message) && why.test(e.message));
      };
      await refused({ ...base, stepsPerRun: 0 }, /integer/);
      await refused({ ...base, stepsPerRun: 2.5 }, /integer/);
      await refused({ ...base, stepsPerRun: 2, attention: true }, /attention/);
      const dpm = pipe.scheduler;
      try {
        pipe.scheduler = schedulerFromConfig(dpm.config, "EulerDiscreteScheduler");
        await refused({ ...base, stepsPerRun: 2 }, /DPMSolverMultistepScheduler, got EulerDiscreteScheduler/);
        pipe.scheduler = schedulerFromConfig(dpm.config, undefined, { algorithm_type: "sde-dpmsolver++" });
        await refused({ ...base, stepsPerRun: 2 }, /draws noise/);
      } finally {
        pipe.scheduler = dpm;
      }
    });
  });
});
