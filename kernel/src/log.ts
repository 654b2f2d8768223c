/**
 * The kernel's own log, written to the process's real stderr (Jupyter shows it in the server log), never to a cell:
 * the write function is captured before stdio is redirected to IOPub.
 */
import { format } from "util";

const writeToRealStderr = process.stderr.write.bind(process.stderr);
const debugEnabled = /^(1|true|yes)$/i.test(process.env["PIXART_KERNEL_DEBUG"] ?? "");

function write(level: string, args: unknown[]): void {
  writeToRealStderr(`[pixart-ts kernel] ${level}: ${format(...args)}\n`);
}

export const log = {
  debug: (...args: unknown[]): void => {
    if (debugEnabled) write("debug", args);
  },
  warn: (...args: unknown[]): void => write("warning", args),
  error: (...args: unknown[]): void => write("error", args),
};
