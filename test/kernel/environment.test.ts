/** environment.yml (conda) must pin the Jupyter side exactly as tools/requirements.txt (pip, CI) does. */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { repoRoot } from "../helpers/paths";

/** `name==version` lines, keyed by the normalized name (PEP 503: case, '-', '_' and '.' are equivalent). */
function pins(lines: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^\s*(?:-\s+)?([A-Za-z0-9._-]+)==([^\s#]+)/.exec(line);
    if (m) out.set(m[1]!.toLowerCase().replace(/[-_.]+/g, "-"), m[2]!);
  }
  return out;
}

describe("environment.yml", () => {
  const yml = fs.readFileSync(path.join(repoRoot(), "environment.yml"), "utf8").split("\n");
  const requirements = pins(fs.readFileSync(path.join(repoRoot(), "tools", "requirements.txt"), "utf8").split("\n"));

  it("asks for Python 3.11 and Node 20", () => {
    assert.ok(yml.some((l) => /^\s+-\s+python=3\.11\s*$/.test(l)));
    assert.ok(yml.some((l) => /^\s+-\s+nodejs>=20\.19,<21\s*$/.test(l)));
  });

  it("pins the Jupyter packages exactly as tools/requirements.txt", () => {
    const conda = pins(yml);
    for (const name of ["jupyterlab", "nbclient", "nbconvert", "jupyter-kernel-test"]) {
      assert.ok(requirements.has(name), `tools/requirements.txt does not pin ${name}`);
      assert.strictEqual(conda.get(name), requirements.get(name), `${name}: environment.yml and tools/requirements.txt differ`);
    }
    for (const [name, version] of conda) assert.strictEqual(version, requirements.get(name), `${name} is pinned only in environment.yml`);
  });
});
