/** Typed errors of the schedulers. Each names the scheduler class and the config field or argument at fault. */

/** A scheduler config field has a wrong type or value, or asks for an option pixart-ts does not implement. */
export class SchedulerConfigError extends Error {
  override name = "SchedulerConfigError";
  readonly className: string;
  readonly field: string;
  readonly problem: string;
  /** The config file, when the config was read from one. */
  readonly file?: string;
  constructor(className: string, field: string, problem: string, file?: string) {
    super(`${file === undefined ? "" : `${file}: `}${className} config, field "${field}": ${problem}`);
    this.className = className;
    this.field = field;
    this.problem = problem;
    if (file !== undefined) this.file = file;
  }
}

/** `_class_name` (or the requested class) is not one of the schedulers pixart-ts implements. */
export class UnknownSchedulerError extends Error {
  override name = "UnknownSchedulerError";
  readonly className: string;
  readonly known: readonly string[];
  readonly file?: string;
  constructor(className: unknown, known: readonly string[], file?: string) {
    super(`${file === undefined ? "" : `${file}: `}unknown scheduler class ${JSON.stringify(className)}; ` +
      `known: ${known.join(", ")}`);
    this.className = typeof className === "string" ? className : JSON.stringify(className);
    this.known = known;
    if (file !== undefined) this.file = file;
  }
}

/** A scheduler method was called with bad arguments or out of order (e.g. `step` before `setTimesteps`). */
export class SchedulerUsageError extends Error {
  override name = "SchedulerUsageError";
  readonly className: string;
  readonly argument: string;
  constructor(className: string, argument: string, problem: string) {
    super(`${className}, ${argument}: ${problem}`);
    this.className = className;
    this.argument = argument;
  }
}
