/**
 * `pixart-ts/kernel`: install the pixart-ts Jupyter kernel, or start one from code.
 *
 * The kernel runs on tslab and zeromq, optional peer dependencies of pixart-ts: `npm install tslab zeromq`
 * next to pixart-ts, then `npx pixart-kernel-install` (or `install()` from here). Importing this entry point
 * does not load them; `startKernel` does, and says what to install when they are missing.
 *
 * @packageDocumentation
 */
import type { ConnectionInfo } from "./connection";
import { checkKernelDependencies } from "./install";

export {
  InstallError, KERNEL_PEER_DEPENDENCIES, checkKernelDependencies, defaultDisplayName, defaultKernelName, install, kernelSpec,
  writeKernelSpec,
} from "./install";
export type { InstallOptions, InstallResult, KernelSpec, KernelSpecOptions, Location } from "./install";
export { ConnectionFileError, readConnectionFile } from "./connection";
export type { ConnectionInfo } from "./connection";

/** How to start a kernel (a subset of the kernel's options, typed here so this entry point needs no tslab types). */
export interface StartKernelOptions {
  connection: ConnectionInfo;
  /** The notebook's directory: module resolution and local .ts imports start here. Default: the cwd. */
  rootDir?: string;
  /** Called after a shutdown_request has been answered and the sockets are closed. Default: none. */
  onShutdown?: (restart: boolean) => void;
}

/** A running kernel. */
export interface RunningKernel {
  /** Interrupts the running cell (what Jupyter's interrupt button does). */
  interrupt(): void;
}

/** Starts a kernel on the sockets of a connection file (what kernel.json runs); needs tslab and zeromq. */
export async function startKernel(options: StartKernelOptions): Promise<RunningKernel> {
  checkKernelDependencies();
  const { Kernel } = await import("./kernel");
  return Kernel.start(options);
}
