import * as assert from "assert";
import * as path from "path";
import { parsePythonJson, JsonObject } from "../../src/io/json";
import { openSafetensors, readTensorData, SafetensorsFile } from "../../src/io/safetensors";
import { TorchGenerator } from "../../src/random";
import { Scheduler, schedulerFromConfig, StepOptions } from "../../src/schedulers";
import { fixturesDir } from "../helpers/paths";

/** Per-step tolerance: max |ours − diffusers| / max |diffusers| over the step's output. */
const STEP_TOLERANCE = 1e-6;
/**
 * A few variants are ill-conditioned in float32: UniPC in ε form carries its corrected sample from step to step
 * multiplied by α_t/α_s > 1, and the ε-form SDE-DPM-Solver cancels large terms. There diffusers' own float32
 * result is further than 1e-6 from the same computation in float64 (recorded per case as `float64_deviation`,
 * up to 2.9e-6), and one-ulp differences in torch's float32 log/exp/sqrt (MKL, not correctly rounded; ours
 * are) are amplified alike. Such cases may differ by twice diffusers' own rounding error.
 */
function stepTolerance(c: Case): number {
  return Math.max(STEP_TOLERANCE, 2 * c.float64_deviation);
}

interface Case {
  name: string;
  class_name: string;
  overrides: JsonObject;
  config: JsonObject;
  shape: number[];
  num_inference_steps: number | null;
  custom_timesteps: number[] | null;
  timesteps: number[];
  timesteps_dtype: string;
  sigmas: number[] | null;
  init_noise_sigma: number;
  order: number;
  step_kwargs: { eta?: number; use_clipped_model_output?: boolean; s_churn?: number; s_tmin?: number; s_tmax?: number };
  generator_seeds: number[] | null;
  /** diffusers' float32 step outputs vs the same steps in float64: its own rounding error on this case. */
  float64_deviation: number;
}

interface CaseResult {
  tolerance: number;
  maxStepError: number;
  maxInputError: number;
  maxSigmaError: number;
}

async function tensor(file: SafetensorsFile, name: string): Promise<Float32Array | null> {
  const info = file.tensors.get(name);
  if (!info) return null;
  const bytes = await readTensorData(info);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

function stepOptions(c: Case): StepOptions {
  const seeds = c.generator_seeds;
  const generator = seeds === null ? undefined
    : seeds.length === 1 ? new TorchGenerator(seeds[0]) : seeds.map((s) => new TorchGenerator(s));
  const k = c.step_kwargs;
  return {
    generator, shape: c.shape, eta: k.eta, useClippedModelOutput: k.use_clipped_model_output,
    sChurn: k.s_churn, sTmin: k.s_tmin, sTmax: k.s_tmax,
  };
}

/** Runs one recorded diffusers run step by step, feeding diffusers' sample into each step. */
async function runCase(file: SafetensorsFile, source: JsonObject, c: Case): Promise<CaseResult> {
  const sched: Scheduler = schedulerFromConfig(source, c.class_name, c.overrides);
  const { _use_default_values: ours, ...ourRest } = sched.config as JsonObject;
  const { _use_default_values: theirs, ...theirRest } = c.config;
  assert.deepStrictEqual(ourRest, theirRest, "config");
  assert.deepStrictEqual([...(ours as string[])].sort(), [...(theirs as string[])].sort(), "_use_default_values");

  if (c.custom_timesteps !== null) sched.setTimesteps(null, { timesteps: c.custom_timesteps });
  else sched.setTimesteps(c.num_inference_steps);
  if (c.timesteps_dtype === "int64") {
    assert.deepStrictEqual(sched.timesteps, c.timesteps, "timesteps");
  } else {
    // float32 timesteps interpolated from σ (Karras/exponential Euler) inherit the σ table's rounding: torch's
    // float32 sqrt is not correctly rounded (up to 0.75 ulp), so σ can differ by an ulp and t by ~1e-7 relative.
    const t = Float32Array.from(c.timesteps);
    assert.strictEqual(sched.timesteps.length, t.length, "number of timesteps");
    const err = relativeError(Float32Array.from(sched.timesteps), t);
    assert.ok(err <= STEP_TOLERANCE, `timesteps: relative error ${err}`);
  }
  assert.strictEqual(sched.timestepsAreIntegers, c.timesteps_dtype === "int64", "timestep dtype");
  assert.strictEqual(sched.order, c.order);
  const result: CaseResult = { tolerance: stepTolerance(c), maxStepError: 0, maxInputError: 0, maxSigmaError: 0 };
  if (c.sigmas === null) {
    assert.strictEqual(sched.sigmas, null);
  } else {
    result.maxSigmaError = relativeError(sched.sigmas!, Float32Array.from(c.sigmas));
    assert.ok(result.maxSigmaError <= STEP_TOLERANCE, `sigmas: ${result.maxSigmaError}`);
  }
  assert.ok(Math.abs(sched.initNoiseSigma - c.init_noise_sigma) <= 1e-6 * c.init_noise_sigma, "init_noise_sigma");

  const samples = (await tensor(file, `${c.name}/samples`))!;
  const outputs = (await tensor(file, `${c.name}/model_outputs`))!;
  const inputs = await tensor(file, `${c.name}/model_inputs`);
  const size = c.shape.reduce((a, b) => a * b, 1);
  const at = (a: Float32Array, k: number): Float32Array => a.subarray(k * size, (k + 1) * size);
  const options = stepOptions(c);
  sched.timesteps.forEach((t, k) => {
    const modelIn = sched.scaleModelInput(at(samples, k), t);
    if (inputs) result.maxInputError = Math.max(result.maxInputError, relativeError(modelIn, at(inputs, k)));
    const out = sched.step(at(outputs, k), t, at(samples, k), options);
    const err = relativeError(out, at(samples, k + 1));
    const tolerance = stepTolerance(c);
    assert.ok(err <= tolerance, `step ${k} (t=${t}): relative error ${err.toExponential(2)} > ${tolerance}`);
    result.maxStepError = Math.max(result.maxStepError, err);
  });
  assert.ok(result.maxInputError <= STEP_TOLERANCE, `scaleModelInput: ${result.maxInputError}`);
  return result;
}

describe("schedulers: full runs against diffusers", () => {
  let file: SafetensorsFile;
  let cases: Case[];
  let source: JsonObject;
  before(async () => {
    file = await openSafetensors(path.join(fixturesDir, "schedulers", "schedulers.safetensors"));
    cases = parsePythonJson(file.metadata!.manifest, "manifest") as unknown as Case[];
    source = parsePythonJson(file.metadata!.source_config, "source_config") as JsonObject;
  });

  it("has the recorded cases", () => assert.ok(cases.length >= 40));

  for (const family of ["DPMSolverMultistep", "DDIM", "EulerDiscrete", "EulerAncestralDiscrete", "UniPCMultistep"]) {
    it(`${family}Scheduler: every step within ${STEP_TOLERANCE} relative (or 2x diffusers' own float32 error)`, async () => {
      const mine = cases.filter((c) => c.class_name === `${family}Scheduler`);
      assert.ok(mine.length > 0);
      const report: string[] = [];
      for (const c of mine) {
        try {
          const r = await runCase(file, source, c);
          report.push(`${c.name}: step ${r.maxStepError.toExponential(2)} (bound ${r.tolerance.toExponential(1)}, ` +
            `diffusers f32 vs f64 ${c.float64_deviation.toExponential(2)}), sigma ${r.maxSigmaError.toExponential(2)}` +
            (r.maxInputError ? `, input ${r.maxInputError.toExponential(2)}` : ""));
        } catch (e) {
          throw new Error(`${c.name}: ${(e as Error).message}`, { cause: e });
        }
      }
      if (process.env.SCHEDULER_REPORT) console.log(report.join("\n"));
    });
  }
});
