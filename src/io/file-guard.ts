/**
 * Guards for files that stay memory-mapped after a model is loaded (onnxruntime maps the checkpoint's
 * weights in place). Truncating or rewriting such a file under a live session makes the next read of a
 * vanished page kill the process with SIGBUS, which no JavaScript can catch. So the files are fingerprinted
 * (size, mtime, inode) when the session is made, and checked before every run: a changed file is a
 * `WeightsFileChangedError` instead. (A change during a run can still not be caught; nothing short of copying
 * the weights into memory avoids that.)
 */
import * as fs from "fs";
import { CheckpointError } from "./errors";

export interface FileFingerprint {
  readonly file: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly dev: number;
}

/** A weights file was truncated, replaced or rewritten after it was validated or mapped. */
export class WeightsFileChangedError extends CheckpointError {
  override name = "WeightsFileChangedError";
}

function statOf(file: string): fs.Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    throw new WeightsFileChangedError(file, `can no longer be read (${(e as NodeJS.ErrnoException).code ?? String(e)}) since the model was loaded; load the model again`, { cause: e });
  }
}

/**
 * Fingerprints each file; `ends` gives the byte each file must reach (the end of its last tensor, as its
 * validated header says), so a file truncated since validation is caught here, before onnxruntime maps it.
 */
export function fingerprintFiles(ends: Readonly<Record<string, number>>): FileFingerprint[] {
  return Object.entries(ends).map(([file, end]) => {
    const st = statOf(file);
    if (st.size < end) {
      throw new WeightsFileChangedError(file, `is ${st.size} bytes, shorter than the ${end} bytes its header promised when it was opened ` +
        "(truncated since); check the file and load the model again");
    }
    return { file, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev };
  });
}

/** Throws WeightsFileChangedError when a file differs from its fingerprint. `cause`: an error it may explain. */
export function checkUnchanged(fingerprints: readonly FileFingerprint[], cause?: unknown): void {
  for (const fp of fingerprints) {
    const st = statOf(fp.file);
    const what = st.size !== fp.size ? `its size changed from ${fp.size} to ${st.size} bytes`
      : st.ino !== fp.ino || st.dev !== fp.dev ? "it was replaced by another file"
        : st.mtimeMs !== fp.mtimeMs ? "it was modified" : undefined;
    if (what !== undefined) {
      throw new WeightsFileChangedError(fp.file, `${what} since the model mapped it; running on would read changed or missing ` +
        "pages (SIGBUS). Load the model again (e.g. delete pipe.transformer; await pipe.load(\"transformer\"))", cause === undefined ? {} : { cause });
    }
  }
}
