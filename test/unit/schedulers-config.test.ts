import * as assert from "assert";
import * as path from "path";
import { ConfigError } from "../../src/io/errors";
import { JsonObject, readJsonObject } from "../../src/io/json";
import { TorchGenerator } from "../../src/random";
import {
  DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, loadScheduler, SCHEDULER_CLASS_NAMES,
  SchedulerConfig, SchedulerConfigError, schedulerFromConfig, SchedulerUsageError, UnknownSchedulerError,
} from "../../src/schedulers";
import { fixturesDir } from "../helpers/paths";

const dir = path.join(fixturesDir, "schedulers");
const pixartFile = path.join(dir, "pixart-sigma", "scheduler", "scheduler_config.json");

async function pixartConfig(): Promise<JsonObject> {
  return readJsonObject(pixartFile);
}

function configError(fn: () => unknown, field: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SchedulerConfigError && e.name === "SchedulerConfigError" &&
    e.field === field && pattern.test(e.message));
}

function usageError(fn: () => unknown, argument: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SchedulerUsageError && e.name === "SchedulerUsageError" &&
    e.argument === argument && pattern.test(e.message));
}

describe("schedulers: loading and from_config", () => {
  it("loads the published PixArt-Σ scheduler_config.json (bare -Infinity) from the pipeline or scheduler folder", async () => {
    for (const folder of [path.join(dir, "pixart-sigma"), path.join(dir, "pixart-sigma", "scheduler")]) {
      const s = await loadScheduler(folder);
      assert.ok(s instanceof DPMSolverMultistepScheduler);
      assert.strictEqual(s.config.lambda_min_clipped, -Infinity);
      assert.strictEqual(s.config.final_sigmas_type, "zero"); // absent from the file: class default
      assert.ok((s.config._use_default_values as string[]).includes("final_sigmas_type"));
      assert.strictEqual(s.config._diffusers_version, "0.22.0.dev0"); // foreign keys are kept
    }
  });

  it("gives PixArt-Σ's timesteps and σ (spec §5.3, §8b)", async () => {
    const s = await loadScheduler(path.join(dir, "pixart-sigma"));
    s.setTimesteps(2);
    assert.deepStrictEqual(s.timesteps, [999, 500]);
    s.setTimesteps(14);
    assert.deepStrictEqual(s.timesteps, [999, 928, 856, 785, 714, 642, 571, 500, 428, 357, 285, 214, 143, 71]);
    s.setTimesteps(25);
    assert.deepStrictEqual(s.timesteps.slice(11, 15), [559, 519, 480, 440]);
    s.setTimesteps(20);
    assert.deepStrictEqual(s.timesteps.slice(0, 3), [999, 949, 899]);
    // σ = √((1−ᾱ)/ᾱ): torch's float32 sqrt (MKL) is not correctly rounded, so σ may be one ulp off torch's.
    const ulp = (x: number): number => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
    [157.40727, 96.176094, 60.271416].forEach((want, i) =>
      assert.ok(Math.abs(s.sigmas![i] - Math.fround(want)) <= ulp(want), `σ[${i}] = ${s.sigmas![i]}, diffusers ${want}`));
    assert.strictEqual(s.sigmas![20], 0);
    assert.strictEqual(s.timestepsAreIntegers, true);
    assert.strictEqual(s.initNoiseSigma, 1);
  });

  it("loads a config diffusers saved for a DDIM made from the PixArt config", async () => {
    const s = await loadScheduler(path.join(dir, "ddim-saved"));
    assert.ok(s instanceof DDIMScheduler);
    assert.strictEqual(s.config.clip_sample, false);
    assert.strictEqual(s.config.solver_order, 2); // DPM key, kept
  });

  it("swaps schedulers like from_config: foreign keys survive a round trip, overrides win", async () => {
    const dpm = schedulerFromConfig(await pixartConfig(), undefined, { solver_order: 3 });
    const ddim = schedulerFromConfig(dpm.config, "DDIMScheduler");
    assert.strictEqual(ddim.className, "DDIMScheduler");
    assert.strictEqual(ddim.config._class_name, "DDIMScheduler");
    assert.strictEqual(ddim.config.timestep_spacing, "linspace"); // taken from the PixArt config
    assert.strictEqual(ddim.config.clip_sample, true); // DDIM default
    const euler = schedulerFromConfig(ddim.config, "EulerDiscreteScheduler");
    assert.ok(euler instanceof EulerDiscreteScheduler);
    assert.strictEqual(euler.config.clip_sample, undefined); // a DDIM default, not carried on
    const back = schedulerFromConfig(euler.config, "DPMSolverMultistepScheduler");
    assert.strictEqual(back.config.solver_order, 3);
    assert.strictEqual(back.config.lambda_min_clipped, -Infinity);
  });

  it("lets the new class use its own defaults for keys that were defaults (_use_default_values)", () => {
    const dpmDefaults = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    assert.strictEqual(schedulerFromConfig(dpmDefaults.config, "DDIMScheduler").config.timestep_spacing, "leading");
    const dpmLinspace = schedulerFromConfig({ timestep_spacing: "linspace" }, "DPMSolverMultistepScheduler");
    assert.strictEqual(schedulerFromConfig(dpmLinspace.config, "DDIMScheduler").config.timestep_spacing, "linspace");
  });

  it("maps solver names as diffusers does", async () => {
    const unipc = schedulerFromConfig(await pixartConfig(), "UniPCMultistepScheduler");
    assert.strictEqual(unipc.config.solver_type, "bh2");
    const dpm = schedulerFromConfig({ algorithm_type: "deis", solver_type: "bh2" }, "DPMSolverMultistepScheduler");
    assert.strictEqual(dpm.config.algorithm_type, "dpmsolver++");
    assert.strictEqual(dpm.config.solver_type, "midpoint");
  });

  it("starts at beginIndex when set (img2img), whatever the timestep", () => {
    const a = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    const b = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    a.setTimesteps(10);
    b.setTimesteps(10);
    b.setBeginIndex(3);
    const x = new Float32Array(16).fill(0.5);
    const eps = new Float32Array(16).fill(0.1);
    b.step(eps, a.timesteps[3], x);
    assert.strictEqual(b.stepIndex, 4);
    a.step(eps, a.timesteps[3], x); // looked up: index 3 too
    assert.strictEqual(a.stepIndex, 4);
  });

  it("draws step noise from a generator list per batch row when given the shape", () => {
    const cfg: SchedulerConfig = { timestep_spacing: "trailing" };
    const run = (generator: TorchGenerator | TorchGenerator[], shape?: number[]): Float32Array => {
      const s = schedulerFromConfig(cfg, "EulerAncestralDiscreteScheduler");
      s.setTimesteps(4);
      const x = new Float32Array(32).fill(1);
      return s.step(new Float32Array(32), s.timesteps[0], s.scaleModelInput(x, s.timesteps[0]), { generator, shape });
    };
    const list = run([new TorchGenerator(1), new TorchGenerator(2)], [2, 16]);
    const row0 = run(new TorchGenerator(1)).subarray(0, 16);
    const row1 = run(new TorchGenerator(2)).subarray(0, 16);
    assert.deepStrictEqual(list, Float32Array.from([...row0, ...row1]));
  });
});

describe("schedulers: errors", () => {
  it("names the known classes for an unknown _class_name", () => {
    assert.throws(() => schedulerFromConfig({ _class_name: "PNDMScheduler" }), (e: unknown) =>
      e instanceof UnknownSchedulerError && e.name === "UnknownSchedulerError" && e.className === "PNDMScheduler" &&
      SCHEDULER_CLASS_NAMES.every((n) => e.message.includes(n)));
  });

  it("names the file for an unknown class in scheduler_config.json", async () => {
    await assert.rejects(loadScheduler(path.join(dir, "pixart-sigma"), "LMSDiscreteScheduler"), (e: unknown) =>
      e instanceof UnknownSchedulerError && e.file === pixartFile);
  });

  it("reports a missing scheduler_config.json as a ConfigError naming the file", async () => {
    await assert.rejects(loadScheduler(path.join(dir, "nowhere")), (e: unknown) =>
      e instanceof ConfigError && /scheduler_config\.json/.test(e.message) && /not found/.test(e.message));
  });

  it("asks for a class name when the config has none", () =>
    configError(() => schedulerFromConfig({ solver_order: 2 }), "_class_name", /missing/));

  it("rejects a field of the wrong type, naming it", () =>
    configError(() => schedulerFromConfig({ solver_order: "2" }, "DPMSolverMultistepScheduler"), "solver_order",
      /expected an integer >= 1, got string "2"/));

  it("rejects a value outside the allowed choices", () =>
    configError(() => schedulerFromConfig({ timestep_spacing: "uniform" }, "DDIMScheduler"), "timestep_spacing",
      /one of "linspace", "leading", "trailing"/));

  it("rejects a bad override the same way", () =>
    configError(() => schedulerFromConfig({}, "DDIMScheduler", { clip_sample: "no" }), "clip_sample", /a boolean/));

  it("rejects trained_betas of the wrong length", () =>
    configError(() => schedulerFromConfig({ trained_betas: [0.1, 0.2] }, "EulerDiscreteScheduler"), "trained_betas",
      /expected 1000 values/));

  it("rejects beta sigmas (not implemented)", () =>
    configError(() => schedulerFromConfig({ use_beta_sigmas: true }, "DPMSolverMultistepScheduler"), "use_beta_sigmas",
      /not implemented/));

  it("rejects flow sigmas (PixArt-Σ is not a flow model)", () =>
    configError(() => schedulerFromConfig({ use_flow_sigmas: true }, "UniPCMultistepScheduler"), "use_flow_sigmas",
      /flow-matching/));

  it("rejects flow_prediction", () =>
    configError(() => schedulerFromConfig({ prediction_type: "flow_prediction" }, "DPMSolverMultistepScheduler"),
      "prediction_type", /not implemented/));

  it("rejects two sigma schedules at once", () =>
    configError(() => schedulerFromConfig({ use_karras_sigmas: true, use_exponential_sigmas: true },
      "EulerDiscreteScheduler"), "use_karras_sigmas", /only one of/));

  it("rejects learned variances", () =>
    configError(() => schedulerFromConfig({ variance_type: "learned_range" }, "DPMSolverMultistepScheduler"),
      "variance_type", /not implemented/));

  it("rejects DPM-Solver (not ++) with a zero final sigma, as diffusers does", () =>
    configError(() => schedulerFromConfig({ algorithm_type: "dpmsolver" }, "DPMSolverMultistepScheduler"),
      "final_sigmas_type", /"sigma_min"/));

  it("refuses UniPC bh1 with a zero final sigma (diffusers returns NaN)", () =>
    configError(() => schedulerFromConfig({ solver_type: "bh1" }, "UniPCMultistepScheduler"), "final_sigmas_type",
      /solver_type "bh1".*NaN/));

  it("refuses UniPC in ε form with a zero final sigma", () =>
    configError(() => schedulerFromConfig({ predict_x0: false }, "UniPCMultistepScheduler"), "final_sigmas_type",
      /predict_x0 false/));

  it("refuses UniPC without lower_order_final and with a zero final sigma", () =>
    configError(() => schedulerFromConfig({ lower_order_final: false }, "UniPCMultistepScheduler"), "final_sigmas_type",
      /lower_order_final false/));

  it("rejects UniPC's solver_p (a Python object)", () =>
    configError(() => schedulerFromConfig({ solver_p: { _class_name: "DDIMScheduler" } }, "UniPCMultistepScheduler"),
      "solver_p", /does not support/));

  it("refuses Euler ancestral with sample prediction (diffusers fails at its first step)", () =>
    configError(() => schedulerFromConfig({ prediction_type: "sample" }, "EulerAncestralDiscreteScheduler"),
      "prediction_type", /"epsilon", "v_prediction"/));

  it("refuses step before setTimesteps", () => {
    const s = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    usageError(() => s.step(new Float32Array(4), 999, new Float32Array(4)), "step", /setTimesteps/);
  });

  it("refuses a model output of another size than the sample", () => {
    const s = schedulerFromConfig({}, "DDIMScheduler");
    s.setTimesteps(10);
    usageError(() => s.step(new Float32Array(4), s.timesteps[0], new Float32Array(8)), "modelOutput", /4 elements/);
  });

  it("refuses a non-positive or fractional step count", () => {
    const s = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    usageError(() => s.setTimesteps(0), "numInferenceSteps", /positive integer/);
    usageError(() => s.setTimesteps(2.5), "numInferenceSteps", /positive integer/);
  });

  it("refuses more DDIM steps than training timesteps", () =>
    usageError(() => schedulerFromConfig({}, "DDIMScheduler").setTimesteps(1001), "numInferenceSteps", /larger than/));

  it("refuses both a step count and custom timesteps", () =>
    usageError(() => schedulerFromConfig({}, "DPMSolverMultistepScheduler").setTimesteps(10, { timesteps: [999, 500] }),
      "timesteps", /not both/));

  it("refuses custom timesteps with Karras sigmas", () =>
    usageError(() => schedulerFromConfig({ use_karras_sigmas: true }, "DPMSolverMultistepScheduler")
      .setTimesteps(null, { timesteps: [999, 500] }), "timesteps", /use_karras_sigmas/));

  it("refuses custom timesteps where diffusers has none (UniPC)", () =>
    usageError(() => schedulerFromConfig({}, "UniPCMultistepScheduler").setTimesteps(null, { timesteps: [999] }),
      "timesteps", /does not take custom timesteps/));

  it("refuses an Euler timestep that is not in the schedule", () => {
    const s = schedulerFromConfig({}, "EulerDiscreteScheduler");
    s.setTimesteps(10);
    usageError(() => s.scaleModelInput(new Float32Array(4), 998.5), "timestep", /not one of/);
  });

  it("refuses a step after the last one", () => {
    const s = schedulerFromConfig({}, "DPMSolverMultistepScheduler");
    s.setTimesteps(1);
    s.step(new Float32Array(4), 999, new Float32Array(4));
    usageError(() => s.step(new Float32Array(4), 999, new Float32Array(4)), "step", /all 1 steps are done/);
  });

  it("refuses a negative DDIM eta", () => {
    const s = schedulerFromConfig({}, "DDIMScheduler");
    s.setTimesteps(10);
    usageError(() => s.step(new Float32Array(4), s.timesteps[0], new Float32Array(4), { eta: -1 }), "eta", />= 0/);
  });

  it("refuses DDIM noise given both ways", () => {
    const s = schedulerFromConfig({}, "DDIMScheduler");
    s.setTimesteps(10);
    usageError(() => s.step(new Float32Array(4), s.timesteps[0], new Float32Array(4),
      { eta: 1, generator: new TorchGenerator(0), varianceNoise: new Float32Array(4) }), "varianceNoise", /not both/);
  });

  it("refuses variance noise of the wrong size", () => {
    const s = schedulerFromConfig({ algorithm_type: "sde-dpmsolver++" }, "DPMSolverMultistepScheduler");
    s.setTimesteps(10);
    usageError(() => s.step(new Float32Array(4), 999, new Float32Array(4), { varianceNoise: new Float32Array(3) }),
      "varianceNoise", /4 elements/);
  });

  it("needs the shape for a generator list", () => {
    const s = schedulerFromConfig({}, "EulerAncestralDiscreteScheduler");
    s.setTimesteps(10);
    const x = new Float32Array(4);
    usageError(() => s.step(x, s.timesteps[0], x, { generator: [new TorchGenerator(0), new TorchGenerator(1)] }),
      "shape", /list of generators/);
  });

  it("needs the shape for thresholding, and a matching one", () => {
    const s = schedulerFromConfig({ thresholding: true }, "DPMSolverMultistepScheduler");
    s.setTimesteps(10);
    const x = new Float32Array(8);
    usageError(() => s.step(x, 999, x), "shape", /thresholding/);
    usageError(() => s.step(x, 999, x, { shape: [2, 3] }), "shape", /does not match the 8 elements/);
  });

  it("refuses a negative begin index", () =>
    usageError(() => schedulerFromConfig({}, "DPMSolverMultistepScheduler").setBeginIndex(-1), "beginIndex", /non-negative/));

  it("refuses the third-order SDE-DPM-Solver step diffusers does not define", () => {
    const s = schedulerFromConfig({ algorithm_type: "sde-dpmsolver", solver_order: 3, final_sigmas_type: "sigma_min" },
      "DPMSolverMultistepScheduler");
    s.setTimesteps(20);
    const x = new Float32Array(16).fill(0.3);
    const opts = { generator: new TorchGenerator(0) };
    for (let k = 0; k < 2; k++) s.step(x, s.timesteps[k], x, opts);
    usageError(() => s.step(x, s.timesteps[2], x, opts), "step", /no third-order update/);
  });
});
