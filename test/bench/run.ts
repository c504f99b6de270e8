// `npm run bench [-- SECTION...]`: runs the bench sections (every test/bench/*.ts but this file), prints one
// markdown report, and writes test/bench/RESULTS.md and the chart test/bench/chart.svg that the README embeds.
//
// A section is a module exporting `run(): Promise<{ title, lines, chart? }>`: `lines` are markdown (a table
// and notes, every figure a ratio against a baseline measured in the same run), `chart` optional bar panels.
// Naming sections (`npm run bench -- cold-start warm`) runs only those and replaces only their part of
// RESULTS.md; the chart is redrawn from every section's last figures.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { renderChart, type ChartPanel } from "./lib/chart.ts";
import { nodeVersion } from "./lib/builds.ts";

export interface Section {
  title: string;
  lines: string[];
  chart?: ChartPanel[];
}

const here = fileURLToPath(new URL(".", import.meta.url));
const resultsPath = join(here, "RESULTS.md");
const chartPath = join(here, "chart.svg");
/** Sections run in this order (build times first, before anything else has loaded the machine), others after, alphabetically. */
const runOrder = ["size", "cold-start", "corpus", "warm"];
/** RESULTS.md and the chart show them in this order. */
const readingOrder = ["cold-start", "corpus", "warm", "size"];
/** No section may run longer than this; the whole bench stays well under 25 minutes. */
const SECTION_LIMIT_MS = 10 * 60_000;

async function main(): Promise<void> {
  const available = readdirSync(here)
    .filter((file) => file.endsWith(".ts") && file !== "run.ts")
    .map((file) => basename(file, ".ts"))
    .sort((a, b) => rank(runOrder, a) - rank(runOrder, b) || a.localeCompare(b));
  const wanted = process.argv.slice(2).filter((arg) => arg !== "--");
  const unknown = wanted.filter((name) => !available.includes(name));
  if (unknown.length > 0) {
    console.error(`bench: no section ${unknown.join(", ")}. Sections: ${available.join(", ")}`);
    process.exit(2);
  }
  const names = wanted.length > 0 ? available.filter((name) => wanted.includes(name)) : available;
  const full = names.length === available.length;

  const machine = describeMachine();
  const blocks = new Map<string, string>(full ? [] : readBlocks());
  let failed = 0;
  const started = performance.now();
  for (const name of names) {
    console.error(`bench: ${name}…`);
    const began = performance.now();
    const load = loadavg()[0];
    let section: Section;
    try {
      const module = (await import(pathToFileURL(join(here, `${name}.ts`)).href)) as { run?: () => Promise<Section> };
      if (typeof module.run !== "function") throw new Error(`test/bench/${name}.ts does not export run()`);
      section = await limit(module.run(), SECTION_LIMIT_MS, `did not finish within ${SECTION_LIMIT_MS / 60_000} minutes`);
    } catch (error) {
      failed++;
      section = { title: name, lines: [`**This section failed**: ${(error as Error).stack ?? error}`.replace(/\n/g, "\n    ")] };
    }
    const seconds = (performance.now() - began) / 1000;
    const busy = load > availableParallelism() ? " (more runnable processes than cores: other work was running, so these figures are noisier than usual)" : "";
    const block = renderBlock(name, section, `section \`${name}\`, ${seconds.toFixed(0)} s, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, load average ${load.toFixed(2)} at its start${busy}`);
    blocks.set(name, block);
    console.log(`${stripMarkers(block)}\n`);
  }

  const ordered = [...blocks.entries()].sort(([a], [b]) => rank(readingOrder, a) - rank(readingOrder, b) || a.localeCompare(b));
  writeFileSync(resultsPath, [header(machine, full), ...ordered.map(([, block]) => block)].join("\n\n") + "\n");
  const panels = ordered.flatMap(([, block]) => chartOf(block));
  writeFileSync(chartPath, renderChart(panels, `npm run bench · ${machine.short} · ${new Date().toISOString().slice(0, 10)}`));
  console.error(`bench: ${names.length} section(s) in ${((performance.now() - started) / 1000).toFixed(0)} s; wrote ${relative(resultsPath)} and ${relative(chartPath)}`);
  // A section's stray handle (a server, a child) must not keep the bench alive.
  process.exit(failed > 0 ? 1 : 0);
}

function rank(order: string[], name: string): number {
  const index = order.indexOf(name);
  return index < 0 ? order.length : index;
}

function limit<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

// RESULTS.md holds each section between markers, with its chart data in a comment, so that running one
// section can replace its part and redraw the whole chart.
const blockPattern = /<!-- bench:([\w-]+) -->\n[\s\S]*?<!-- \/bench:\1 -->/g;

function renderBlock(name: string, section: Section, footer: string): string {
  const chart = section.chart?.length ? [`<!-- bench-chart ${JSON.stringify(section.chart).replace(/--/g, "\\u002d\\u002d")} -->`] : [];
  return [`<!-- bench:${name} -->`, `## ${section.title}`, "", ...section.lines, "", `_${footer}_`, ...chart, `<!-- /bench:${name} -->`].join("\n");
}

function readBlocks(): [string, string][] {
  if (!existsSync(resultsPath)) return [];
  return [...readFileSync(resultsPath, "utf8").matchAll(blockPattern)].map((match) => [match[1], match[0]]);
}

function chartOf(block: string): ChartPanel[] {
  const match = /<!-- bench-chart (.*) -->/.exec(block);
  return match ? (JSON.parse(match[1]) as ChartPanel[]) : [];
}

function stripMarkers(block: string): string {
  return block.replace(/^<!-- .* -->\n?/gm, "").trimEnd();
}

interface Machine {
  short: string;
  lines: string[];
}

function describeMachine(): Machine {
  const cpu = cpus()[0]?.model.replace(/\s+/g, " ").trim() ?? "unknown CPU";
  const cores = availableParallelism();
  const memory = `${Math.round(totalmem() / 2 ** 30)} GiB`;
  const debian = existsSync("/etc/debian_version") ? `Debian ${readFileSync("/etc/debian_version", "utf8").trim()}` : "Linux";
  const node = nodeVersion();
  return {
    short: `${cores} cores ${cpu}, Node ${node}`,
    lines: [
      `- Machine: ${cores} cores (${cpu}), ${memory} RAM, ${debian}, Linux ${release()}; load average ${loadavg()[0].toFixed(2)} when the bench started.`,
      `- Every runtime runs on the same Node ${node} binary (the one build.sh puts in the bootstrap); the harness runs on Node ${process.versions.node}.`,
      "- Servers on 127.0.0.1 only. 1 MB = 1,000,000 bytes (as build.sh prints sizes). Figures are medians; every comparison is a ratio against a baseline measured in the same section of the same run, because absolute times on a shared 2-core machine drift.",
    ],
  };
}

function header(machine: Machine, full: boolean): string {
  return [
    "# micro-lambda bench results",
    "",
    "Written by `npm run bench` (test/bench/run.ts); do not edit by hand. Reproduce with `npm run bench`; one section with `npm run bench -- <section>`.",
    full ? "" : "\n_Some sections below were measured by an earlier run than others: each one's footer says when._\n",
    ...machine.lines,
  ].join("\n");
}

function relative(path: string): string {
  return path.slice(join(here, "../..").length + 1);
}

await main();
