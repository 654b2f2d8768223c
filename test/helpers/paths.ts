import * as fs from "fs";
import * as path from "path";

/** The repository root, found from the compiled test file (dist/test/...) or the working directory. */
export function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(path.join(dir, "tsconfig.json"))) return dir;
  }
  return process.cwd();
}

export const fixturesDir = path.join(repoRoot(), "test", "fixtures");
