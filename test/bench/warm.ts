// Bench section: the warm loop and memory. 20,000 no-op invocations in a row for micro-lambda, aws-lambda-ric and
// two floors written here, all on the same Node binary, against a fake Runtime API whose own ceiling is measured.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { build, targetNode } from "./lib/builds.ts";
import { startFakeRuntimeApi } from "./lib/fake-runtime-api.ts";
import { lambdaEnv, warmRun, type Runnable, type WarmRun } from "./lib/processes.ts";
import { ric } from "./lib/ric.ts";
import { mb, shuffle, quantile, ratio, summarise, table, us, verdict } from "./lib/stats.ts";
import type { Section } from "./run.ts";

const INVOCATIONS = 20_000;
/** Runs per variant (round-robin, shuffled); the figures come from the median run. */
const ROUNDS = 3;
const CEILING_PAIRS = 200_000;
const CEILING_WINDOW = 64;

const lib = (file: string) => fileURLToPath(new URL(`./lib/${file}`, import.meta.url));

export async function run(): Promise<Section> {
  const node = targetNode();
  const hello = await build("examples/hello/main.ts", "hello", "x86_64");
  const peer = await ric();

  const variants: Record<string, Runnable> = {
    floorRaw: { label: "floor: raw socket loop", command: [node, lib("floor-raw.mjs")] },
    floorHttp: { label: "floor: node:http loop", command: [node, lib("floor-http.mjs")] },
    bootstrap: { label: "micro-lambda: hello bootstrap", command: [hello.bootstrap] },
    bundle: { label: "micro-lambda: `node bundle.cjs`", command: [node, hello.bundle] },
  };
  if (peer.ok) variants.ric = { ...peer.runnable, label: `${peer.runnable.label} (same handler)` };

  const ceiling = await measureCeiling(node);

  const runs: Record<string, WarmRun[]> = Object.fromEntries(Object.keys(variants).map((key) => [key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of shuffle(Object.keys(variants))) runs[key].push(await warmRun(variants[key], INVOCATIONS));
  }
  // The run with the median throughput stands for the variant; the spread of throughput is shown beside it.
  const median: Record<string, WarmRun> = {};
  for (const key of Object.keys(variants)) {
    const byRate = [...runs[key]].sort((a, b) => a.perSecond - b.perSecond);
    median[key] = byRate[byRate.length >> 1];
  }
  const rate = (key: string) => median[key]?.perSecond ?? NaN;
  const p = (key: string, q: number) => (median[key] ? quantile(median[key].overheadMs, q) : NaN);
  const growth = (key: string) => Math.max(...runs[key].map((run) => run.rssAfterLoop - run.rssAfterInit));

  const rows = Object.keys(variants).map((key) => {
    const spread = summarise(runs[key].map((run) => run.perSecond));
    return [
      variants[key].label,
      `**${Math.round(rate(key)).toLocaleString("en-US")}**`,
      `${Math.round(spread.min).toLocaleString("en-US")} – ${Math.round(spread.max).toLocaleString("en-US")}`,
      ratio(rate(key), rate("floorRaw")),
      us(p(key, 0.5)),
      us(p(key, 0.99)),
      us(quantile(median[key].turnaroundMs, 0.5)),
    ];
  });
  const memoryRows = Object.keys(variants).map((key) => [
    variants[key].label,
    mb(median[key].rssAfterInit),
    mb(median[key].rssAfterLoop),
    `${(growth(key) / 1048576).toFixed(2)} MB`,
    key === "floorRaw" || key === "floorHttp" ? "" : verdict(growth(key), 2 * 1048576),
  ]);

  const lines = [
    `${INVOCATIONS.toLocaleString("en-US")} invocations in a row per run, ${ROUNDS} runs per variant (round-robin, shuffled), the median run shown. The handler does nothing but build a small object (hello's); the floors post a fixed answer of the same size. Overhead = the fake writes the event → it has read the whole answer; turnaround = it writes the 202 → it reads the next \`GET /next\`.`,
    "",
    ...table(["runtime", "invocations/s", "min – max", "vs raw floor", "overhead p50", "overhead p99", "turnaround p50"], rows),
    "",
    `The fake Runtime API's own ceiling: **${Math.round(ceiling).toLocaleString("en-US")} invocations/s** (a raw client pipelining ${CEILING_WINDOW} GET /next + POST /response pairs on one socket, ${CEILING_PAIRS.toLocaleString("en-US")} pairs), ${ratio(ceiling, rate("floorRaw"))} the fastest loop measured: the server is not what bounds these figures.`,
    "",
    "Targets:",
    "",
    ...table(
      ["target", "measured", ""],
      [
        ["throughput ≥ 0.95× the raw floor", ratio(rate("bootstrap"), rate("floorRaw")), verdict(rate("bootstrap") / rate("floorRaw"), 0.95, true)],
        ["(for reference) throughput vs the node:http floor", ratio(rate("bootstrap"), rate("floorHttp")), ""],
        peer.ok
          ? ["throughput ≥ 1.5× aws-lambda-ric", ratio(rate("bootstrap"), rate("ric")), verdict(rate("bootstrap") / rate("ric"), 1.5, true)]
          : ["throughput ≥ 1.5× aws-lambda-ric", "**not measured**", "aws-lambda-ric could not be built (below)"],
        ["overhead p99 ≤ 1 ms", us(p("bootstrap", 0.99)), verdict(p("bootstrap", 0.99), 1)],
        ["RSS growth over 20,000 invocations ≤ 2 MB", `${(growth("bootstrap") / 1048576).toFixed(2)} MB`, verdict(growth("bootstrap"), 2 * 1048576)],
      ],
    ),
    "",
    "Memory (VmRSS from /proc/PID/status at the held first `/next`, and at the held `/next` after the last invocation; growth is the largest of the runs):",
    "",
    ...table(["runtime", "RSS after init", `RSS after ${INVOCATIONS.toLocaleString("en-US")}`, "growth", "≤ 2 MB"], memoryRows),
    ...(peer.ok ? [] : ["", `**aws-lambda-ric could not be built, so it is not in these tables**: ${peer.reason}`]),
  ];
  return {
    title: "Warm loop and memory",
    lines,
    chart: [
      {
        title: `Warm loop, no-op invocations per second (higher is better)`,
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
          { label: "micro-lambda bootstrap", value: median.bootstrap.rssAfterInit / 1048576, kind: "ours" },
          ...(peer.ok ? [{ label: "aws-lambda-ric", value: median.ric.rssAfterInit / 1048576, kind: "peer" as const }] : []),
          { label: "floor: node:http loop", value: median.floorHttp.rssAfterInit / 1048576, kind: "baseline" },
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
