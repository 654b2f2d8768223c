/**
 * `npm run fuzz`: 1,000,000 mutated inputs per parser (override with --count N, pick targets with --target name
 * (or --only; a part of the name, e.g. `--target tokenizer.json`), change the PRNG seed with --seed S). Prints a
 * progress line every 100,000 inputs, one line of figures per target (with the typed errors by class) and exits 1
 * on any untyped error or hang (an input over 1 s), with the failing inputs in base64 for replay.
 * One target alone: `npm run fuzz -- --target tokenizer.json`.
 */
import * as os from "os";
import { allTargets, fuzz, type FuzzReport } from "./targets";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const count = Number(option("count", "1000000"));
const seed = Number(option("seed", "1"));
const only = option("target", option("only", ""));
const targets = allTargets().filter((t) => !only || t.name.includes(only));
if (targets.length === 0) {
  console.error(`no fuzz target matches "${only}"; the targets are: ${allTargets().map((t) => t.name).join(", ")}`);
  process.exit(2);
}
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(" ");
const progress = (r: FuzzReport) => console.log(`  ${r.target}: ${r.inputs} inputs, ${r.seconds.toFixed(0)} s, ` +
  `${r.untyped.length} untyped, ${r.hangs.length} hangs, load ${load()}`);
let failed = false;
for (const target of targets) {
  const r = fuzz(target, count, seed, 1000, progress);
  const classes = Object.entries(r.typedClasses).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
  console.log(`${r.target}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (seed ${seed}, load ${load()}) — ${r.accepted} parsed, ` +
    `${r.typedErrors} typed errors (${classes || "none"}), ${r.untyped.length} untyped, ${r.hangs.length} hangs (> 1 s), ` +
    `slowest ${r.slowestMs.toFixed(1)} ms`);
  for (const u of r.untyped.slice(0, 5)) console.log(`  untyped: ${u.error.split("\n")[0]}\n    input (base64): ${u.input.slice(0, 200)}`);
  for (const h of r.hangs.slice(0, 5)) console.log(`  hang ${h.ms.toFixed(0)} ms: ${h.input.slice(0, 200)}`);
  if (r.untyped.length || r.hangs.length) failed = true;
}
process.exit(failed ? 1 : 0);
