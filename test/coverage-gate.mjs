// A node:test reporter that prints the line coverage of src/ (including code run in child processes) and fails the run under 90%.
// Plain JavaScript: node:test loads reporters before tsx is registered.

const minimum = 90;
const src = new URL("../src/", import.meta.url).pathname;

/** @param {AsyncIterable<{ type: string, data: any }>} source */
export default async function* coverageGate(source) {
  let measured = false;
  for await (const event of source) {
    if (event.type !== "test:coverage") continue;
    measured = true;
    const files = event.data.summary.files.filter((/** @type {any} */ file) => file.path.startsWith(src) && file.path.endsWith(".ts"));
    const total = files.reduce((/** @type {number} */ sum, /** @type {any} */ file) => sum + file.totalLineCount, 0);
    const covered = files.reduce((/** @type {number} */ sum, /** @type {any} */ file) => sum + file.coveredLineCount, 0);
    const percent = total === 0 ? 0 : (100 * covered) / total;
    yield "\ncoverage of src/ (lines):\n";
    for (const file of files) yield `  ${file.path.replace(src, "src/").padEnd(28)} ${file.coveredLinePercent.toFixed(1).padStart(5)}%\n`;
    yield `  ${"all of src/".padEnd(28)} ${percent.toFixed(1).padStart(5)}%  (minimum ${minimum}%)\n`;
    if (percent < minimum) {
      yield `coverage of src/ is under ${minimum}%: failing the run\n`;
      process.exitCode = 1;
    }
  }
  // Node reports no coverage at all when one child's coverage file is unreadable (a process killed while writing it
  // at exit, as a sandbox SIGKILLed after its shutdown budget can be): say so rather than pass in silence.
  if (!measured) yield "\ncoverage of src/: not measured in this run (Node could not read every coverage file: see its warning above)\n";
}
