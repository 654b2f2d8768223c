/**
 * `npm run fuzz`: 1,000,000 mutated inputs per parser (override with --count N, pick targets with --only name,
 * change the PRNG seed with --seed S). Prints one line of figures per target and exits 1 on any untyped error
 * or hang (an input over 1 s), with the failing inputs in base64 for replay.
 */
import { allTargets, fuzz } from "./targets";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const count = Number(option("count", "1000000"));
const seed = Number(option("seed", "1"));
const only = option("only", "");
let failed = false;
for (const target of allTargets()) {
  if (only && !target.name.includes(only)) continue;
  const r = fuzz(target, count, seed);
  console.log(`${r.target}: ${r.inputs} inputs in ${r.seconds.toFixed(1)} s — ${r.accepted} parsed, ${r.typedErrors} typed errors, ` +
    `${r.untyped.length} untyped, ${r.hangs.length} hangs (> 1 s), slowest ${r.slowestMs.toFixed(1)} ms`);
  for (const u of r.untyped.slice(0, 5)) console.log(`  untyped: ${u.error.split("\n")[0]}\n    input (base64): ${u.input.slice(0, 200)}`);
  for (const h of r.hangs.slice(0, 5)) console.log(`  hang ${h.ms.toFixed(0)} ms: ${h.input.slice(0, 200)}`);
  if (r.untyped.length || r.hangs.length) failed = true;
}
process.exit(failed ? 1 : 0);
