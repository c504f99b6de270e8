// Bench section: the time a registered extension that does nothing adds to each invocation, against the same function without it, in the same run.
//
// Lambda counts an invocation done only when every extension registered for INVOKE has asked for its next
// event, so even an empty extension costs one INVOKE round trip per invocation (the event out, its next
// GET /event/next in), on the invocation's clock. Both sides run the built hello bootstrap in the emulator,
// invoked one at a time; the extension is a built bootstrap too. Each invocation is timed from invoke() to
// its answer, and the next one cannot start before the extension has asked again, so the cycle is measured.
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Emulator } from "../../src/emulator/index.ts";
import { build } from "../bootstraps.ts";

const WARMUP = 300;
const MEASURED = 5000;
/** Blocks alternate between the two sides, so a drift of the machine's speed does not favour one. */
const BLOCK = 500;

type Side = "without an extension" | "with a do-nothing extension";

export async function run(): Promise<{ title: string; lines: string[] }> {
  // Its own build names (dist/bench-ext-*): a test run rebuilding dist/hello meanwhile cannot swap a binary under the measurement.
  const [hello, noop] = await Promise.all([build("examples/hello/main.ts", "x86_64", ["--name", "bench-ext-hello"]), build("test/bench/lib/noop-extension.ts", "x86_64", ["--extension", "--name", "bench-noop-extension"])]);
  const bootstrap = hello.executable;
  const emulators = new Map<Side, Emulator>([
    ["without an extension", await Emulator.start({ command: [bootstrap], timeoutMs: 30_000 })],
    ["with a do-nothing extension", await Emulator.start({ command: [bootstrap], timeoutMs: 30_000, extensionsDir: join(noop.dir, "extensions") })],
  ]);
  const samples = new Map<Side, number[]>([...emulators.keys()].map((side) => [side, []]));
  const elapsed = new Map<Side, number>([...emulators.keys()].map((side) => [side, 0]));
  try {
    for (const emulator of emulators.values()) for (let i = 0; i < WARMUP; i++) await emulator.invoke({ name: "bench" });
    for (let done = 0; done < MEASURED; done += BLOCK) {
      for (const [side, emulator] of emulators) {
        const began = performance.now();
        for (let i = 0; i < BLOCK; i++) {
          const start = performance.now();
          const result = await emulator.invoke({ name: "bench" });
          samples.get(side)!.push(performance.now() - start);
          if (!result.ok) throw new Error(`${side}: an invocation failed: ${JSON.stringify(result.error)}`);
        }
        elapsed.set(side, elapsed.get(side)! + performance.now() - began);
      }
    }
  } finally {
    await Promise.all([...emulators.values()].map((emulator) => emulator.close()));
  }
  const stats = (side: Side) => {
    const values = Float64Array.from(samples.get(side)!).sort();
    return { p50: quantile(values, 0.5), p99: quantile(values, 0.99), perSecond: (values.length / elapsed.get(side)!) * 1000 };
  };
  const base = stats("without an extension");
  const withExtension = stats("with a do-nothing extension");
  const us = (ms: number) => `${Math.round(ms * 1000)} µs`;
  return {
    title: "Extensions: the cost of a registered extension",
    lines: [
      `| ${MEASURED} invocations each, hello bootstrap in the emulator | p50 | p99 | invocations/s |`,
      "|---|---|---|---|",
      `| without an extension (baseline) | ${us(base.p50)} | ${us(base.p99)} | ${base.perSecond.toFixed(0)} |`,
      `| with a do-nothing extension | ${us(withExtension.p50)} (${ratio(withExtension.p50, base.p50)}) | ${us(withExtension.p99)} (${ratio(withExtension.p99, base.p99)}) | ${withExtension.perSecond.toFixed(0)} (${ratio(withExtension.perSecond, base.perSecond)}) |`,
      `| added per invocation | ${us(withExtension.p50 - base.p50)} | ${us(withExtension.p99 - base.p99)} | |`,
      "",
      "Each invocation is timed from `invoke()` to its answer; with the extension, the next one waits until the extension has",
      "asked for its next event (INVOKE out, `GET /event/next` in), as Lambda makes it. The emulator is the Runtime API here,",
      "so the baseline includes its own per-invocation work; the added time is what one INVOKE subscriber costs on loopback.",
      "An extension that does not need INVOKE (register for SHUTDOWN only: the helper's default without `onInvoke`) costs nothing per invocation.",
    ],
  };
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
function quantile(values: Float64Array, q: number): number {
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!;
}

/** "1.67×": how many times the baseline. */
function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`;
}
