// Bench section: init of real applications (the corpus, test/fixtures/corpus/APP/main.ts), each built by default and
// with --snapshot, started with a warm and with a cold page cache: what --snapshot saves where init is heavy.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { build, root, type Built } from "./lib/builds.ts";
import { coldStart, evictedStart, filesOf, type ColdStart, type Runnable } from "./lib/processes.ts";
import { mb, ms, ratio, shuffle, summarise, table, verdict } from "./lib/stats.ts";
import type { Section } from "./run.ts";

const corpusDir = join(root, "test/fixtures/corpus");
/** Until the corpus exists, the two examples stand in for it (hello: no init to save; heavy init: the AWS SDK). */
const standIns = ["examples/hello/main.ts", "examples/heavy-init/main.ts"];
/** Rounds: in each, every build starts once with a cold page cache and once with a warm one. */
const RUNS = 8;
/**
 * Stop starting new rounds after this long; every build has then had the same number of runs. The builds come
 * first and take minutes when none is fresh (two per app), inside run.ts's limit for the section.
 */
const BUDGET_MS = 200_000;
/** The issue's targets: median corpus init with --snapshot against the default build. */
const WARM_TARGET = 0.5;
const COLD_TARGET = 0.6;

type Flavour = "default" | "snapshot";
const flavours: Flavour[] = ["default", "snapshot"];

interface App {
  name: string;
  entry: string;
  builds: Partial<Record<Flavour, { runnable: Runnable; files: string[]; warm: ColdStart[]; cold: ColdStart[] }>>;
  /** Why a build is missing: its build failed, or its first start did. */
  failures: Partial<Record<Flavour, string>>;
}

export async function run(): Promise<Section> {
  const corpus = existsSync(corpusDir)
    ? readdirSync(corpusDir)
        .filter((name) => existsSync(join(corpusDir, name, "main.ts")))
        .sort()
        .map((name) => ({ name, entry: `test/fixtures/corpus/${name}/main.ts` }))
    : [];
  const standingIn = corpus.length === 0;
  const entries = standingIn ? standIns.map((entry) => ({ name: entry.split("/")[1], entry })) : corpus;

  const apps: App[] = [];
  for (const { name, entry } of entries) {
    const app: App = { name, entry, builds: {}, failures: {} };
    for (const flavour of flavours) {
      let built: Built;
      try {
        built = await build(entry, `corpus-${name}`, "x86_64", flavour === "snapshot" ? ["--snapshot"] : []);
      } catch (error) {
        app.failures[flavour] = `build failed: ${gist((error as Error).message)}`;
        continue;
      }
      const runnable = { label: `${name} ${flavour}`, command: [built.bootstrap] };
      try {
        // The uncounted first start warms the page cache and lists the files the build maps.
        app.builds[flavour] = { runnable, files: filesOf(runnable, await coldStart(runnable)), warm: [], cold: [] };
      } catch (error) {
        app.failures[flavour] = `did not start: ${gist((error as Error).message)}`;
      }
    }
    apps.push(app);
  }

  // Round-robin over every build, shuffled each round; for each, a start with its files evicted from the page cache
  // and then one with them cached, so that each build's cold and warm figures are measured at the same moment.
  const runs = apps.flatMap((app) => flavours.flatMap((flavour) => (app.builds[flavour] ? [app.builds[flavour]!] : [])));
  let rounds = 0;
  for (const started = Date.now(); rounds < RUNS && Date.now() - started < BUDGET_MS; rounds++) {
    for (const one of shuffle(runs)) {
      one.cold.push(await evictedStart(one.runnable, one.files));
      one.warm.push(await coldStart(one.runnable));
    }
  }

  // Each figure twice: as measured, and less the main thread's wait for a CPU (other work on the machine).
  type Measure = "ms" | "net" | "readBytes";
  const value = (sample: ColdStart, measure: Measure) => (measure === "net" ? sample.ms - sample.cpuWaitMs : sample[measure]);
  const median = (app: App, flavour: Flavour, cache: "warm" | "cold", measure: Measure = "ms") =>
    summarise((app.builds[flavour]?.[cache] ?? []).map((sample) => value(sample, measure))).median;
  const ratioOf = (app: App, cache: "warm" | "cold", measure: Measure = "ms") => median(app, "snapshot", cache, measure) / median(app, "default", cache, measure);
  const measured = apps.filter((app) => app.builds.default && app.builds.snapshot);
  const medianRatio = (cache: "warm" | "cold", measure: Measure) => summarise(measured.map((app) => ratioOf(app, cache, measure))).median;
  const medianWarm = medianRatio("warm", "ms");
  const medianCold = medianRatio("cold", "ms");
  const netWarm = medianRatio("warm", "net");
  const netCold = medianRatio("cold", "net");
  const slowerBy = (measure: Measure) => measured.filter((app) => ratioOf(app, "warm", measure) > 1 || ratioOf(app, "cold", measure) > 1);
  const describeSlower = (list: App[], measure: Measure) =>
    list.length === 0 ? "none" : list.map((app) => `${app.name} (${ratio(ratioOf(app, "warm", measure), 1)} warm, ${ratio(ratioOf(app, "cold", measure), 1)} cold)`).join(", ");
  const unbuilt = apps.filter((app) => !app.builds.snapshot || !app.builds.default);

  const rows = apps.map((app) => {
    const cell = (flavour: Flavour, cache: "warm" | "cold") => (app.builds[flavour] ? ms(median(app, flavour, cache)) : "—");
    const both = app.builds.default && app.builds.snapshot;
    const ratios = (cache: "warm" | "cold") => (both ? `**${ratio(ratioOf(app, cache), 1)}** (${ratio(ratioOf(app, cache, "net"), 1)})` : "—");
    return [
      app.name,
      cell("default", "warm"),
      cell("snapshot", "warm"),
      ratios("warm"),
      cell("default", "cold"),
      cell("snapshot", "cold"),
      ratios("cold"),
      app.builds.default ? mb(median(app, "default", "cold", "readBytes")) : "—",
      app.builds.snapshot ? mb(median(app, "snapshot", "cold", "readBytes")) : "—",
    ];
  });
  const lines = [
    standingIn
      ? "**The corpus (test/fixtures/corpus/APP/main.ts) is not in this checkout yet: examples/hello and examples/heavy-init stand in for it.**\n"
      : `The corpus: ${apps.length} applications in test/fixtures/corpus/ (${apps.map((app) => app.name).join(", ")}).`,
    `Init = spawn → first \`GET /next\` at a loopback fake Runtime API, x86_64, each app built by default (code cache) and with \`--snapshot\`; median of ${rounds} rounds; in each, every build (round-robin, shuffled) starts with a cold page cache (every file it maps evicted first, as in the cold-start section) and then again with a warm one. Ratio = \`--snapshot\` ÷ default, each app against its own default build in this run; in brackets, the same with each run's main-thread wait for a CPU taken out (/proc/PID/schedstat: time runnable but not running, which only other work on the machine causes).`,
    "",
    ...table(["app", "default, warm", "`--snapshot`, warm", "ratio (less CPU wait)", "default, cold", "`--snapshot`, cold", "ratio (less CPU wait)", "read, default", "read, `--snapshot`"], rows),
    "",
    "Targets (issue 12):",
    "",
    ...table(
      ["target", "measured", "", "less CPU wait", ""],
      [
        [`median init with \`--snapshot\` ≤ ${WARM_TARGET}× the default build, warm page cache`, ratio(medianWarm, 1), verdict(medianWarm, WARM_TARGET), ratio(netWarm, 1), verdict(netWarm, WARM_TARGET)],
        [`median init with \`--snapshot\` ≤ ${COLD_TARGET}× the default build, cold page cache`, ratio(medianCold, 1), verdict(medianCold, COLD_TARGET), ratio(netCold, 1), verdict(netCold, COLD_TARGET)],
        [
          "no app's `--snapshot` build starts slower than its default build (warm and cold)",
          describeSlower(slowerBy("ms"), "ms"),
          verdict(slowerBy("ms").length, 0),
          describeSlower(slowerBy("net"), "net"),
          verdict(slowerBy("net").length, 0),
        ],
        ["every app builds and starts with `--snapshot`", `${apps.length - unbuilt.length} of ${apps.length}`, verdict(unbuilt.length, 0), "", ""],
      ],
    ),
    ...apps.flatMap((app) => flavours.filter((flavour) => app.failures[flavour]).map((flavour) => `\n- **${app.name}, ${flavour === "snapshot" ? "`--snapshot`" : "default"}**: ${app.failures[flavour]}`)),
  ];
  return {
    title: "Init of real applications, with and without --snapshot",
    lines,
    chart: [
      {
        title: "Corpus init, --snapshot ÷ default build, median over apps (lower is better)",
        unit: "×",
        bars: [
          { label: "warm page cache", value: medianWarm, kind: "ours" },
          { label: "cold page cache", value: medianCold, kind: "ours" },
          { label: "warm, less CPU wait", value: netWarm, kind: "ours" },
          { label: "cold, less CPU wait", value: netCold, kind: "ours" },
          { label: "default build", value: 1, kind: "baseline" },
        ],
      },
    ],
  };
}

/** An error message cut to what a note can hold: its last lines that are not stack frames or progress. */
export function gist(message: string): string {
  const said = message
    .trim()
    .split("\n")
    .filter((line) => !/^\s*(\d+: 0x[0-9a-f]+|at |==> |#\d+ )/.test(line) && line.trim() !== "");
  return said.slice(-4).join(" ").replace(/\s+/g, " ").slice(0, 500);
}
