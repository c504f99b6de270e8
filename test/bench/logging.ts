// Bench section: what a log line costs. One line per invocation through console.log (micro-lambda turns it into the
// managed runtime's text or JSON line), against a raw process.stdout.write of a finished line, against no line at
// all, and against aws-lambda-ric doing the same console.log; all on the bootstrap's Node, stdout a pipe read by the bench.
import { fileURLToPath } from "node:url";
import { build } from "./lib/builds.ts";
import { warmRun, type Runnable, type WarmRun } from "./lib/processes.ts";
import { ric } from "./lib/ric.ts";
import { ratio, shuffle, summarise, table } from "./lib/stats.ts";
import type { Section } from "./run.ts";

const INVOCATIONS = 20_000;
/** Runs per variant (round-robin, shuffled); the median throughput is shown. */
const ROUNDS = 3;

const count = (n: number) => Math.round(n).toLocaleString("en-US");

export async function run(): Promise<Section> {
  const fn = await build("test/bench/lib/log-function.ts", "logging", "x86_64");
  const peer = await ric();
  const ours = (label: string, env: Record<string, string>): Runnable => ({ label, command: [fn.bootstrap], env });
  const variants: Record<string, Runnable> = {
    none: ours("micro-lambda, no line", {}),
    raw: ours("micro-lambda, `process.stdout.write` of a finished line", { BENCH_LOG: "raw" }),
    text: ours("**micro-lambda, `console.log`, Text**", { BENCH_LOG: "console" }),
    json: ours("micro-lambda, `console.log`, JSON", { BENCH_LOG: "console", AWS_LAMBDA_LOG_FORMAT: "JSON" }),
    dropped: ours("micro-lambda, `console.debug` below AWS_LAMBDA_LOG_LEVEL=INFO", { BENCH_LOG: "debug", AWS_LAMBDA_LOG_LEVEL: "INFO" }),
  };
  if (peer.ok) {
    const task = fileURLToPath(new URL("./lib/log-task", import.meta.url));
    variants.ricNone = { ...peer.runnable, label: "aws-lambda-ric 4.0.2, no line", env: { ...peer.runnable.env, LAMBDA_TASK_ROOT: task } };
    variants.ricText = { ...peer.runnable, label: "aws-lambda-ric 4.0.2, `console.log`, Text", env: { ...peer.runnable.env, LAMBDA_TASK_ROOT: task, BENCH_LOG: "console" } };
  }
  const keys = Object.keys(variants);
  const runs: Record<string, WarmRun[]> = Object.fromEntries(keys.map((key) => [key, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of shuffle(keys)) runs[key]!.push(await warmRun(variants[key]!, INVOCATIONS));
  }
  const rate = (key: string) => (runs[key] ? summarise(runs[key]!.map((r) => r.perSecond)).median : NaN);
  /** What one line adds to an invocation, in µs: the difference of the time per invocation with and without it. */
  const perLine = (key: string, without: string) => ((1 / rate(key) - 1 / rate(without)) * 1e6).toFixed(1);

  const rows = keys.map((key) => [
    variants[key]!.label,
    `**${count(rate(key))}**`,
    ratio(rate(key), rate(key.startsWith("ric") ? "ricNone" : "none")),
    key === "none" || key === "ricNone" ? "—" : `${perLine(key, key.startsWith("ric") ? "ricNone" : "none")} µs`,
  ]);
  const lines = [
    `${count(INVOCATIONS)} invocations per run, ${ROUNDS} runs per variant (round-robin, shuffled); medians. Each invocation writes one line of ~60 bytes, or none; the bench reads stdout through a pipe, as Lambda does.`,
    "",
    ...table(["variant", "invocations/s", "vs the same runtime without a line", "cost of the line"], rows),
    "",
    `- console.log against a raw write: ${ratio(rate("text"), rate("raw"))} the throughput (Text), ${ratio(rate("json"), rate("raw"))} (JSON); the managed runtime's line costs ${(Number(perLine("text", "none")) - Number(perLine("raw", "none"))).toFixed(1)} µs more than writing a finished line.`,
    peer.ok
      ? `- against aws-lambda-ric's console.log: micro-lambda's invocation with a line runs at ${ratio(rate("text"), rate("ricText"))} its throughput; the line itself costs ${perLine("text", "none")} µs here and ${perLine("ricText", "ricNone")} µs there.`
      : `- aws-lambda-ric could not be built, so it is not in this table: ${(peer as { reason: string }).reason}`,
    `- A line below the level is a no-op method: ${ratio(rate("dropped"), rate("none"))} the throughput of no line at all.`,
  ];
  return { title: "Logging: what a console.log costs", lines };
}
