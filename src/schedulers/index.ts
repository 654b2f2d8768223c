export {
  Scheduler, SchedulerClassName, SetTimestepsOptions, StepOptions, SchedulerConfig, SCHEDULER_CLASS_NAMES,
  isSchedulerClassName, loadScheduler, schedulerFromConfig,
} from "./scheduler";
export { SchedulerConfigError, SchedulerUsageError, UnknownSchedulerError } from "./errors";
export { DPMSolverMultistepScheduler } from "./dpm-solver-multistep";
export { DDIMScheduler } from "./ddim";
export { EulerDiscreteScheduler } from "./euler-discrete";
export { EulerAncestralDiscreteScheduler } from "./euler-ancestral-discrete";
export { UniPCMultistepScheduler } from "./unipc-multistep";
