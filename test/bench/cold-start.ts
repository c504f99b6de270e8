// Bench section: cold start, spawn → first GET /next at a loopback Runtime API, for the hello and heavy-init
// bootstraps against `node bundle` on the same Node binary and against aws-lambda-ric.
import { statSync } from "node:fs";
import { join } from "node:path";
import { build, nodeVersion, targetNode } from "./lib/builds.ts";
import { coldStart, type ColdStart, type Runnable } from "./lib/processes.ts";
import { ric } from "./lib/ric.ts";
import { mb, ms, shuffle, ratio, summarise, table, verdict, type Summary } from "./lib/stats.ts";
import type { Section } from "./run.ts";

/** Cold starts per variant (the issue asks for a median of at least 20). */
const RUNS = 30;
/** Stop starting new rounds after this long; every variant has then had the same number of runs. */
const BUDGET_MS = 4 * 60_000;

/** Node alone: starts, opens a socket, sends GET /next. What any Node runtime pays before its own code. */
const nodeAlone =
  "const a=process.env.AWS_LAMBDA_RUNTIME_API,i=a.lastIndexOf(':');" +
  "require('node:net').connect(+a.slice(i+1),a.slice(0,i)).write('GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')";

export async function run(): Promise<Section> {
  const node = targetNode();
  const hello = await build("examples/hello/main.ts", "hello", "x86_64");
  const helloSnapshot = await build("examples/hello/main.ts", "hello", "x86_64", ["--snapshot"]);
  const heavyDefault = await build("examples/heavy-init/main.ts", "heavy-init", "x86_64");
  const heavyPlain = await build("examples/heavy-init/main.ts", "heavy-init", "x86_64", ["--no-code-cache"]);
  const heavySnapshot = await build("examples/heavy-init/main.ts", "heavy-init", "x86_64", ["--snapshot"]);
  const peer = await ric();

  const variants: Record<string, Runnable> = {
    helloBootstrap: { label: "hello: bootstrap", command: [hello.bootstrap] },
    helloBundle: { label: "hello: `node bundle.cjs`", command: [node, hello.bundle] },
    helloSnapshot: { label: "hello: bootstrap `--snapshot`", command: [helloSnapshot.bootstrap] },
    heavyBootstrap: { label: "heavy init: bootstrap (default: code cache)", command: [heavyDefault.bootstrap] },
    heavyPlain: { label: "heavy init: bootstrap `--no-code-cache`", command: [heavyPlain.bootstrap] },
    heavySnapshot: { label: "heavy init: bootstrap `--snapshot`", command: [heavySnapshot.bootstrap] },
    heavyBundle: { label: "heavy init: `node bundle.cjs`", command: [node, heavyDefault.bundle] },
    nodeAlone: { label: "Node alone (connect, send GET /next)", command: [node, "-e", nodeAlone] },
  };
  if (peer.ok) variants.ric = { ...peer.runnable, label: `${peer.runnable.label} (same handler as hello)` };

  // Round-robin in a shuffled order each round: the machine's noise falls on every variant alike.
  const samples: Record<string, ColdStart[]> = Object.fromEntries(Object.keys(variants).map((key) => [key, []]));
  for (const runnable of Object.values(variants)) await coldStart(runnable); // warm the page cache; not counted
  const started = Date.now();
  let rounds = 0;
  while (rounds < RUNS && Date.now() - started < BUDGET_MS) {
    for (const key of shuffle(Object.keys(variants))) samples[key].push(await coldStart(variants[key]));
    rounds++;
  }

  const time: Record<string, Summary> = {};
  const rss: Record<string, Summary> = {};
  for (const key of Object.keys(variants)) {
    time[key] = summarise(samples[key].map((sample) => sample.ms));
    rss[key] = summarise(samples[key].map((sample) => sample.rss));
  }
  const base = (key: string) => time[key]?.median ?? NaN;

  const row = (key: string, baseline: string, baselineName: string) => [
    variants[key].label,
    `**${ms(time[key].median)}**`,
    `${ms(time[key].min)} – ${ms(time[key].max)}`,
    key === baseline ? "baseline" : `${ratio(time[key].median, base(baseline))} ${baselineName}`,
    mb(rss[key].median),
  ];
  const lines = [
    `Spawn → first \`GET /next\` at a loopback fake Runtime API, x86_64, median of ${rounds} runs per variant (round-robin, shuffled each round, after one uncounted warm-up run each). Every process is the same Node ${nodeVersion()} binary build.sh ships (${node.replace(/^.*node_modules\//, "node_modules/")}).`,
    "",
    ...table(
      ["variant", "median", "min – max", "ratio", "RSS at first /next"],
      [
        row("nodeAlone", "nodeAlone", ""),
        row("helloBundle", "helloBundle", ""),
        row("helloBootstrap", "helloBundle", "`node bundle`"),
        row("helloSnapshot", "helloBundle", "`node bundle`"),
        ...(peer.ok ? [row("ric", "helloBundle", "`node bundle`")] : []),
        row("heavyBundle", "heavyBundle", ""),
        row("heavyPlain", "heavyBundle", "`node bundle`"),
        row("heavyBootstrap", "heavyBundle", "`node bundle`"),
        row("heavySnapshot", "heavyBundle", "`node bundle`"),
      ],
    ),
    "",
    "Targets:",
    "",
    ...table(
      ["target", "measured", ""],
      [
        ["hello bootstrap ≤ 1.05× `node bundle` (same binary)", ratio(base("helloBootstrap"), base("helloBundle")), verdict(base("helloBootstrap") / base("helloBundle"), 1.05)],
        peer.ok
          ? ["hello bootstrap ≤ 0.5× aws-lambda-ric", ratio(base("helloBootstrap"), base("ric")), verdict(base("helloBootstrap") / base("ric"), 0.5)]
          : ["hello bootstrap ≤ 0.5× aws-lambda-ric", "**not measured**", "aws-lambda-ric could not be built (below)"],
        ["heavy init `--snapshot` ≤ 0.45× the default build (code cache)", ratio(base("heavySnapshot"), base("heavyBootstrap")), verdict(base("heavySnapshot") / base("heavyBootstrap"), 0.45)],
        ["heavy init `--snapshot` vs `--no-code-cache` (for reference)", ratio(base("heavySnapshot"), base("heavyPlain")), ""],
      ],
    ),
    "",
    `What bounds the snapshot: restoring the heap. A snapshot of hello (a ${mb(blobBytes(helloSnapshot))} blob: Node's own start-up heap) starts in ${ms(base("helloSnapshot"))} (${ms(base("helloBootstrap"))} without); heavy init's (${mb(blobBytes(heavySnapshot))}: the SDK's modules, evaluated) takes ${ms(base("heavySnapshot") - base("helloSnapshot"))} more to deserialise, against ${ms(base("heavyBootstrap") - base("helloBootstrap"))} to load and run the SDK's code with a code cache and ${ms(base("heavyPlain") - base("helloBootstrap"))} without.`,
    "",
    `What bounds the hello figures: Node itself. Node alone, doing nothing but connect and send \`GET /next\`, takes ${ms(base("nodeAlone"))}; the hello bootstrap spends ${ms(base("helloBootstrap") - base("nodeAlone"))} more, \`node bundle\` ${ms(base("helloBundle") - base("nodeAlone"))} more.`,
    peer.ok
      ? `The peer is ${peer.note}. It is itself a small bundled ESM file plus a native addon, started by the same Node binary, so its cold start is also mostly Node's own: the 0.5× target would need a start faster than Node alone.`
      : `**aws-lambda-ric could not be built, so it is not in this table**: ${peer.reason}`,
  ];
  return {
    title: "Cold start",
    lines,
    chart: [
      {
        title: "Cold start, spawn → first GET /next (ms, lower is better)",
        unit: "ms",
        bars: [
          { label: "hello bootstrap", value: base("helloBootstrap"), kind: "ours" },
          { label: "hello, node bundle", value: base("helloBundle"), kind: "baseline" },
          ...(peer.ok ? [{ label: "hello, aws-lambda-ric", value: base("ric"), kind: "peer" as const }] : []),
          { label: "heavy init bootstrap", value: base("heavyBootstrap"), kind: "ours" },
          { label: "heavy init --snapshot", value: base("heavySnapshot"), kind: "ours" },
          { label: "heavy init, node bundle", value: base("heavyBundle"), kind: "baseline" },
        ],
      },
    ],
  };
}

function blobBytes(built: { dir: string }): number {
  return statSync(join(built.dir, "sea", "sea.blob")).size;
}
