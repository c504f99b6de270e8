// Bench section: response streaming (MB/s through the emulator, streamed vs buffered vs a transport floor; time to
// first byte) and Lambda Managed Instances concurrency (invocations/s with 1 and 4 loops), all with the x86_64
// bootstrap of test/bench/lib/stream-function.ts under the project's emulator on loopback.
import { fileURLToPath } from "node:url";
import { Emulator } from "../../src/emulator/index.ts";
import { build, targetNode } from "./lib/builds.ts";
import { ms, ratio, shuffle, summarise, table } from "./lib/stats.ts";
import type { Section } from "./run.ts";

const MiB = 1024 * 1024;
/** The buffered limit is 6 MB, so the streamed-vs-buffered comparison is made at 5 MiB. */
const SMALL = 5 * MiB;
const LARGE = 100 * MiB;
const SMALL_RUNS = 30;
/** Invocations before measuring: the floor (plain node, no code cache) and the emulator take about 10 to settle. */
const WARM_UP = 10;
const LARGE_RUNS = 6;
/** Concurrency: invocations per round, and rounds per setting (alternated; the median round is shown). */
const NOOP_INVOCATIONS = 2000;
const WAIT_INVOCATIONS = 400;
const WAIT_MS = 10;
const ROUNDS = 3;
/** Invokes kept outstanding by the load generator: more than the 4 loops, so the emulator's queue is never empty. */
const OUTSTANDING = 16;

const floorScript = fileURLToPath(new URL("./lib/stream-floor.mjs", import.meta.url));

interface Transfer {
  /** invoke() → result, ms */
  totalMs: number;
  /** invoke() → first body byte, ms (for a buffered answer, the whole answer) */
  firstByteMs: number;
}

export async function run(): Promise<Section> {
  const built = await build("test/bench/lib/stream-function.ts", "stream-function", "x86_64");
  const commands = {
    buffered: { command: [built.bootstrap], env: { BENCH_MODE: "buffered" } },
    streamed: { command: [built.bootstrap], env: { BENCH_MODE: "stream" } },
    floor: { command: [targetNode(), floorScript], env: {} },
  };

  // ---- throughput -----------------------------------------------------------------------------------
  const small: Record<string, Transfer[]> = { buffered: [], streamed: [], floor: [] };
  const large: Record<string, Transfer[]> = { streamed: [], floor: [] };
  for (const key of shuffle(Object.keys(commands) as (keyof typeof commands)[])) {
    const emulator = await Emulator.start({ ...commands[key], timeoutMs: 60_000 });
    try {
      for (let i = 0; i < WARM_UP; i++) await transfer(emulator, SMALL, key !== "buffered");
      for (let i = 0; i < SMALL_RUNS; i++) small[key]!.push(await transfer(emulator, SMALL, key !== "buffered"));
      if (key !== "buffered") for (let i = 0; i < LARGE_RUNS; i++) large[key]!.push(await transfer(emulator, LARGE, true));
    } finally {
      await emulator.close();
    }
  }
  const median = (runs: Transfer[], pick: (run: Transfer) => number) => summarise(runs.map(pick)).median;
  const rate = (runs: Transfer[], bytes: number) => bytes / MiB / (median(runs, (run) => run.totalMs) / 1000);
  const smallRate = (key: string) => rate(small[key]!, SMALL);
  const largeRate = (key: string) => rate(large[key]!, LARGE);
  const ttfb = (key: string) => median(small[key]!, (run) => run.firstByteMs);

  // ---- concurrency ----------------------------------------------------------------------------------
  const settings = [
    { label: "no-op handler", bytes: 0, waitMs: 0, invocations: NOOP_INVOCATIONS },
    { label: `handler awaiting ${WAIT_MS} ms (I/O)`, bytes: 0, waitMs: WAIT_MS, invocations: WAIT_INVOCATIONS },
  ];
  const perSecond: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const setting of settings) {
      for (const concurrency of shuffle([1, 4])) {
        const emulator = await Emulator.start({ ...commands.buffered, concurrency, timeoutMs: 60_000 });
        try {
          await emulator.invoke({ bytes: 0 }); // cold start outside the measurement
          (perSecond[`${setting.label}/${concurrency}`] ??= []).push(await load(emulator, setting.invocations, { bytes: setting.bytes, waitMs: setting.waitMs }));
        } finally {
          await emulator.close();
        }
      }
    }
  }
  const ips = (label: string, concurrency: number) => summarise(perSecond[`${label}/${concurrency}`]!).median;
  const count = (n: number) => Math.round(n).toLocaleString("en-US");

  const lines = [
    `Through the project's emulator on loopback, the function being the x86_64 bootstrap of \`test/bench/lib/stream-function.ts\` (64 KiB chunks, waiting for 'drain'); the caller counts the chunks as they arrive. Median of ${SMALL_RUNS} invocations at 5 MiB (after ${WARM_UP} to warm up) and of ${LARGE_RUNS} at 100 MiB. The floor is a runtime reduced to its transport (\`lib/stream-floor.mjs\`: node:http, keep-alive, the same chunks) on the same Node binary.`,
    "",
    ...table(
      ["response", "MiB/s at 5 MiB", "vs buffered", "vs floor", "time to first byte (5 MiB)", "vs buffered", "MiB/s at 100 MiB", "vs floor"],
      [
        ["buffered (returned, JSON)", smallRate("buffered").toFixed(0), "1.00×", ratio(smallRate("buffered"), smallRate("floor")), ms(ttfb("buffered")), "1.00×", "n/a (6 MB limit)", ""],
        ["**streamed** (`streamifyResponse`)", `**${smallRate("streamed").toFixed(0)}**`, ratio(smallRate("streamed"), smallRate("buffered")), ratio(smallRate("streamed"), smallRate("floor")), ms(ttfb("streamed")), ratio(ttfb("streamed"), ttfb("buffered")), `**${largeRate("streamed").toFixed(0)}**`, ratio(largeRate("streamed"), largeRate("floor"))],
        ["floor: raw node:http streaming", smallRate("floor").toFixed(0), ratio(smallRate("floor"), smallRate("buffered")), "1.00×", ms(ttfb("floor")), ratio(ttfb("floor"), ttfb("buffered")), largeRate("floor").toFixed(0), "1.00×"],
      ],
    ),
    "",
    `Time to first byte is what streaming is for: the caller has the first chunk while the function is still writing, where a buffered answer arrives whole. The buffered time includes what a buffered answer costs on both sides: \`JSON.stringify\` in the function and \`JSON.parse\` in the emulator (\`InvokeResult.result\`), as an SDK caller would parse it. Both ends share this machine's 2 cores with the emulator, so MiB/s here is a floor for what Lambda's network would allow, useful as a ratio only.`,
    "",
    `Lambda Managed Instances: the same bootstrap (buffered mode) with \`AWS_LAMBDA_MAX_CONCURRENCY\` 1 and 4 (the emulator's \`concurrency\`), ${OUTSTANDING} invokes kept outstanding; ${count(NOOP_INVOCATIONS)} no-op invocations or ${count(WAIT_INVOCATIONS)} awaiting ${WAIT_MS} ms per round, ${ROUNDS} rounds alternated, the median round shown.`,
    "",
    ...table(
      ["handler", "invocations/s, concurrency 1", "concurrency 4", "4 vs 1"],
      settings.map(({ label }) => [label, count(ips(label, 1)), `**${count(ips(label, 4))}**`, ratio(ips(label, 4), ips(label, 1))]),
    ),
    "",
    `A handler waiting on I/O gains up to the number of loops (4 here would be 4.00×: ${WAIT_MS} ms per invocation caps one loop at ${count(1000 / WAIT_MS)}/s). A no-op handler is CPU-bound, and on 2 cores shared by the emulator and the function, more loops cannot add cores: the ratio shows what overlapping one invocation's network waits with another's work is worth.`,
  ];
  return {
    title: "Response streaming and Managed Instances concurrency",
    lines,
    chart: [
      {
        title: "Time to first byte of a 5 MiB response (ms, lower is better)",
        unit: "ms",
        bars: [
          { label: "streamed", value: ttfb("streamed"), kind: "ours" },
          { label: "buffered", value: ttfb("buffered"), kind: "baseline" },
        ],
      },
      {
        title: `Invocations/s, handler awaiting ${WAIT_MS} ms (higher is better)`,
        unit: "/s",
        bars: [
          { label: "concurrency 4", value: ips(settings[1]!.label, 4), kind: "ours" },
          { label: "concurrency 1", value: ips(settings[1]!.label, 1), kind: "baseline" },
        ],
      },
    ],
  };
}

/** One invocation asking for `bytes`, timed from invoke() to the first body byte and to the result. */
async function transfer(emulator: Emulator, bytes: number, streamed: boolean): Promise<Transfer> {
  let received = 0;
  let firstByteMs = NaN;
  const started = performance.now();
  const out = await emulator.invoke(
    { bytes },
    streamed
      ? {
          onChunk: (chunk) => {
            if (received === 0) firstByteMs = performance.now() - started;
            received += chunk.length;
          },
        }
      : {},
  );
  const totalMs = performance.now() - started;
  if (!out.ok) throw new Error(`the bench function failed: ${JSON.stringify(out.error)}`);
  if (!streamed) received = out.payload.length;
  if (received !== bytes) throw new Error(`asked for ${bytes} bytes, received ${received}`);
  return { totalMs, firstByteMs: streamed ? firstByteMs : totalMs };
}

/** Runs `invocations` with `OUTSTANDING` always in flight; resolves invocations per second. */
async function load(emulator: Emulator, invocations: number, event: { bytes: number; waitMs: number }): Promise<number> {
  let started = 0;
  const began = performance.now();
  const worker = async () => {
    while (started < invocations) {
      started++;
      const out = await emulator.invoke(event);
      if (!out.ok) throw new Error(`the bench function failed: ${JSON.stringify(out.error)}`);
    }
  };
  await Promise.all(Array.from({ length: OUTSTANDING }, worker));
  return invocations / ((performance.now() - began) / 1000);
}
