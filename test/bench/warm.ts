// Bench section: the warm loop and memory. 40,000 no-op invocations in a row (RSS read at init, at 20,000 and at
// 40,000) for micro-lambda, aws-lambda-ric and two floors written here, all on the same Node binary, against a
// fake Runtime API whose own ceiling is measured.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, root, targetNode } from "./lib/builds.ts";
import { startFakeRuntimeApi } from "./lib/fake-runtime-api.ts";
import { lambdaEnv, warmRun, type Runnable, type WarmRun } from "./lib/processes.ts";
import { ric } from "./lib/ric.ts";
import { MB, mb, quantile, ratio, shuffle, summarise, table, us, verdict } from "./lib/stats.ts";
import type { Section } from "./run.ts";

/** Per run. Throughput and overhead are over all of them; memory is read at init, half way and at the end. */
const INVOCATIONS = 40_000;
const HALF = INVOCATIONS / 2;
/** Runs per variant (round-robin, shuffled); the figures come from the run with the median throughput. */
const ROUNDS = 5;
const CEILING_PAIRS = 200_000;
const CEILING_WINDOW = 64;

const lib = (file: string) => fileURLToPath(new URL(`./lib/${file}`, import.meta.url));
const count = (n: number) => Math.round(n).toLocaleString("en-US");

export async function run(): Promise<Section> {
  const node = targetNode();
  const hello = await build("examples/hello/main.ts", "hello", "x86_64");
  const peer = await ric();

  const variants: Record<string, Runnable> = {
    floorRaw: { label: "floor: raw socket loop", command: [node, lib("floor-raw.mjs")] },
    floorHttp: { label: "floor: node:http loop", command: [node, lib("floor-http.mjs")] },
    bootstrap: { label: "**micro-lambda: hello bootstrap**", command: [hello.bootstrap] },
    bundle: { label: "micro-lambda: `node bundle.cjs`", command: [node, hello.bundle] },
  };
  if (peer.ok) variants.ric = { ...peer.runnable, label: `${peer.runnable.label} (same handler)` };
  const keys = Object.keys(variants);

  const ceiling = await measureCeiling(node);
  const runs: Record<string, WarmRun[]> = Object.fromEntries(keys.map((key) => [key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of shuffle(keys)) runs[key].push(await warmRun(variants[key], INVOCATIONS));
  }
  const median: Record<string, WarmRun> = {};
  for (const key of keys) median[key] = [...runs[key]].sort((a, b) => a.perSecond - b.perSecond)[runs[key].length >> 1];
  const rate = (key: string) => median[key]?.perSecond ?? NaN;
  const p = (key: string, q: number) => (median[key] ? quantile(median[key].overheadMs, q) : NaN);
  // Memory: the largest growth among the runs, so one lucky run cannot hide a leak.
  const warmup = (key: string) => Math.max(...runs[key].map((run) => run.rssAtHalf - run.rssAfterInit));
  const steady = (key: string) => Math.max(...runs[key].map((run) => run.rssAfterLoop - run.rssAtHalf));

  const rows = keys.map((key) => {
    const spread = summarise(runs[key].map((run) => run.perSecond));
    return [
      variants[key].label,
      `**${count(rate(key))}**`,
      `${count(spread.min)} – ${count(spread.max)}`,
      ratio(rate(key), rate("floorRaw")),
      peer.ok ? ratio(rate(key), rate("ric")) : "n/a",
      us(p(key, 0.5)),
      us(p(key, 0.99)),
      us(quantile(median[key].turnaroundMs, 0.5)),
    ];
  });
  const memoryRows = keys.map((key) => [
    variants[key].label,
    mb(median[key].rssAfterInit),
    mb(median[key].rssAtHalf),
    mb(median[key].rssAfterLoop),
    `${(warmup(key) / MB).toFixed(1)} MB`,
    `${(steady(key) / MB).toFixed(1)} MB`,
  ]);

  const lines = [
    `${count(INVOCATIONS)} invocations in a row per run, ${ROUNDS} runs per variant (round-robin, shuffled each round); the run with the median throughput is shown, with the range over all runs. The handler builds hello's small answer object; the floors post a fixed answer of the same size and parse nothing. Overhead = the fake writes the event → it has read the whole answer (what Lambda bills of a no-op); turnaround = it writes the 202 → it reads the next \`GET /next\`.`,
    "",
    ...table(["runtime", "invocations/s", "range", "vs raw floor", "vs aws-lambda-ric", "overhead p50", "overhead p99", "turnaround p50"], rows),
    "",
    `The fake Runtime API's own ceiling: **${count(ceiling)} invocations/s** (a raw client pipelining ${CEILING_WINDOW} GET /next + POST /response pairs on one socket, ${count(CEILING_PAIRS)} pairs), ${ratio(ceiling, Math.max(...keys.map(rate)))} the fastest loop above: the server is not what bounds these figures.`,
    "",
    "Targets (micro-lambda = the hello bootstrap):",
    "",
    ...table(
      ["target", "measured", ""],
      [
        ["throughput ≥ 0.95× the raw floor", ratio(rate("bootstrap"), rate("floorRaw")), verdict(rate("bootstrap") / rate("floorRaw"), 0.95, true)],
        peer.ok
          ? ["throughput ≥ 1.5× aws-lambda-ric", ratio(rate("bootstrap"), rate("ric")), verdict(rate("bootstrap") / rate("ric"), 1.5, true)]
          : ["throughput ≥ 1.5× aws-lambda-ric", "**not measured**", "aws-lambda-ric could not be built (below)"],
        ["overhead p99 ≤ 1 ms", us(p("bootstrap", 0.99)), verdict(p("bootstrap", 0.99), 1)],
        [`RSS growth over the first ${count(HALF)} invocations ≤ 2 MB`, `${(warmup("bootstrap") / MB).toFixed(1)} MB`, verdict(warmup("bootstrap"), 2 * MB)],
        [`RSS growth over the next ${count(HALF)} (a leak keeps growing here)`, `${(steady("bootstrap") / MB).toFixed(1)} MB`, verdict(steady("bootstrap"), 2 * MB)],
      ],
    ),
    "",
    "Memory: VmRSS (/proc/PID/status) at the held first `/next`, after 20,000 answers (read while the loop runs), and at the held `/next` after the last; the growth columns are the largest of the runs.",
    "",
    ...table(["runtime", "RSS after init", `after ${count(HALF)}`, `after ${count(INVOCATIONS)}`, `growth, first ${count(HALF)}`, `growth, next ${count(HALF)}`], memoryRows),
    "",
    "Why: see \"What bounds the warm loop\" in the README's Performance section (profiles made with `tsx test/bench/lib/profile.ts`).",
    ...(peer.ok ? [] : ["", `**aws-lambda-ric could not be built, so it is not in these tables**: ${peer.reason}`]),
  ];
  return {
    title: "Warm loop and memory",
    lines,
    chart: [
      {
        title: "Warm loop, no-op invocations per second (higher is better)",
        unit: "/s",
        bars: [
          { label: "micro-lambda bootstrap", value: rate("bootstrap"), kind: "ours" },
          ...(peer.ok ? [{ label: "aws-lambda-ric", value: rate("ric"), kind: "peer" as const }] : []),
          { label: "floor: node:http loop", value: rate("floorHttp"), kind: "baseline" },
          { label: "floor: raw socket loop", value: rate("floorRaw"), kind: "baseline" },
        ],
      },
      {
        title: "RSS after init (MB, lower is better)",
        unit: "MB",
        bars: [
          { label: "micro-lambda bootstrap", value: median.bootstrap.rssAfterInit / MB, kind: "ours" },
          { label: "micro-lambda, node bundle", value: median.bundle.rssAfterInit / MB, kind: "ours" },
          ...(peer.ok ? [{ label: "aws-lambda-ric", value: median.ric.rssAfterInit / MB, kind: "peer" as const }] : []),
          { label: "floor: raw socket loop", value: median.floorRaw.rssAfterInit / MB, kind: "baseline" },
        ],
      },
    ],
  };
}

/** Invocations per second the fake serves to a pipelining raw client: the most any runtime could reach. */
async function measureCeiling(node: string): Promise<number> {
  const fake = await startFakeRuntimeApi({ invocations: CEILING_PAIRS });
  try {
    const child = spawn(node, [lib("ceiling-client.mjs"), String(CEILING_PAIRS), String(fake.pairBytes), String(CEILING_WINDOW)], {
      env: lambdaEnv(fake.address),
      stdio: ["ignore", "inherit", "inherit"],
    });
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the ceiling client did not finish in 60 s")), 60_000).unref());
    const [first, last] = await Promise.race([Promise.all([fake.firstNext, fake.done]), timeout]);
    child.kill("SIGKILL");
    await exited;
    return CEILING_PAIRS / ((last - first) / 1000);
  } finally {
    await fake.close();
  }
}
