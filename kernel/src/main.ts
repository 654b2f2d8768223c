/**
 * Kernel entry point, started by Jupyter from kernel.json:
 *   node --expose-gc dist/kernel/src/main.js <connection_file>
 */
import { readConnectionFile } from "./connection";
import { Kernel } from "./kernel";
import { log } from "./log";

const usage = "usage: node --expose-gc main.js <connection_file>";

// V8 keeps 10 frames by default; a pipeline call's own layers (argument checks, progress, the run queue, busy)
// take about that many, which cut the notebook cell's frame off tracebacks of errors thrown inside the library.
Error.stackTraceLimit = Math.max(Error.stackTraceLimit, 50);

async function main(argv: string[]): Promise<void> {
  const file = argv[0];
  if (!file || argv.length > 1) {
    log.error(usage);
    process.exit(2);
  }
  const exit = process.exit.bind(process);
  const kernel = await Kernel.start({
    connection: readConnectionFile(file),
    onShutdown: () => exit(0),
  });
  // process.exit() in a cell ends the kernel as the cell asks, but with its sockets closed first.
  process.exit = ((code?: number | string | null) => {
    kernel.closeForExit();
    return exit(code);
  }) as typeof process.exit;
  // Jupyter's "signal" interrupt mode, and interrupt_request via the I/O worker, both arrive here.
  process.on("SIGINT", () => kernel.interrupt());
  process.on("SIGTERM", () => process.exit(0));

  // Errors from timers and unawaited promises of earlier cells must not end the kernel.
  process.on("uncaughtException", (e) => kernel.reportBackgroundError("background code", e));
  process.on("unhandledRejection", (e) => kernel.reportBackgroundError("a promise nobody awaited", e));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  log.error("kernel failed to start:", e);
  process.exit(1);
});
