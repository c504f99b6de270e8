// Bench section: what build.sh ships, per architecture: zip and unzipped sizes, default and --al2, and how long
// each build takes; heavy-init's builds for comparison.
import { statSync } from "node:fs";
import { build, nodeVersion, targetNode, timedBuild, type Arch, type Built } from "./lib/builds.ts";
import { MB, mb, ratio, table, verdict } from "./lib/stats.ts";
import type { Section } from "./run.ts";

const ZIP_TARGET = 41 * MB;
/** build.sh warns at this many bytes (Lambda's direct-upload limit, read as decimal MB). */
const ZIP_LIMIT = 50 * MB;

export async function run(): Promise<Section> {
  const arches: Arch[] = ["x86_64", "arm64"];
  // Timed: build.sh runs for each, one at a time, nothing else running in the bench meanwhile.
  const builds: { label: string; built: Built; seconds?: number }[] = [];
  const hello: Record<string, Built> = {};
  for (const arch of arches) {
    for (const al2 of [false, true]) {
      const built = await timedBuild("examples/hello/main.ts", "hello", arch, al2 ? ["--al2"] : []);
      hello[`${arch}${al2 ? "-al2" : ""}`] = built;
      builds.push({ label: `hello, ${arch}${al2 ? ", `--al2`" : ""}`, built, seconds: built.seconds });
    }
  }
  // Sizes only: the builds the cold-start section measures (reused when fresh, so not timed here).
  builds.push({ label: "heavy init, x86_64", built: await build("examples/heavy-init/main.ts", "heavy-init", "x86_64") });
  builds.push({ label: "heavy init, x86_64, `--no-code-cache`", built: await build("examples/heavy-init/main.ts", "heavy-init", "x86_64", ["--no-code-cache"]) });
  builds.push({ label: "heavy init, x86_64, `--snapshot`", built: await build("examples/heavy-init/main.ts", "heavy-init", "x86_64", ["--snapshot"]) });

  // The baseline: the stripped Node binary the bootstrap is a copy of.
  const nodeBytes = Object.fromEntries(arches.map((arch) => [arch, statSync(targetNode(arch)).size])) as Record<Arch, number>;
  const rows = builds.map(({ label, built, seconds }) => [
    label,
    `**${mb(built.zipBytes)}**`,
    mb(built.unzippedBytes),
    ratio(built.unzippedBytes, nodeBytes[built.arch]),
    seconds === undefined ? "" : `${seconds.toFixed(1)} s`,
    // The 41 MB target is hello's; a function's own code adds to it, so the others are checked against Lambda's 50 MB.
    built.zipBytes > ZIP_LIMIT ? "**over Lambda's 50 MB**" : built.flags.length > 0 || seconds === undefined ? "(under 50 MB)" : verdict(built.zipBytes, ZIP_TARGET),
  ]);

  return {
    title: "Size and build time",
    lines: [
      `What \`./build.sh\` makes (Node ${nodeVersion()}, zip level as build.sh sets it), hello built afresh for each row, one build at a time, the target Node already cached in node_modules/.cache/micro-lambda/node (a first build also downloads it: add a few seconds). "unzipped" is everything the zip holds; the ratio compares it with the stripped Node binary the bootstrap is a copy of (${arches.map((arch) => `${arch} ${mb(nodeBytes[arch])}`).join(", ")}). arm64 builds make their blob with the arm64 Node under qemu-user.`,
      "",
      ...table(["build", "zip", "unzipped", "vs stripped node", "build time", "zip ≤ 41 MB (hello, default build)"], rows),
      "",
      `\`--al2\` adds ${arches.map((arch) => `${mb(hello[`${arch}-al2`].zipBytes - hello[arch].zipBytes, 2)} zipped on ${arch}`).join(", ")} (the loader and libraries in lib/). Lambda's direct-upload limit is 50 MB zipped, 250 MB unzipped.`,
    ],
    chart: [
      {
        title: "function.zip, hello (MB, lower is better)",
        unit: "MB",
        bars: arches.flatMap((arch) => [
          { label: `${arch}`, value: hello[arch].zipBytes / MB, kind: "ours" as const },
          { label: `${arch} --al2`, value: hello[`${arch}-al2`].zipBytes / MB, kind: "ours" as const },
        ]),
      },
    ],
  };
}
