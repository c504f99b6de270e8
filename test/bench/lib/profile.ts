// Profiles one runtime's warm loop under the fast fake Runtime API with the target Node's --cpu-prof and prints a
// top-down summary: where the time goes per invocation, by function (self time) and by file.
//
//   node_modules/.bin/tsx test/bench/lib/profile.ts [INVOCATIONS] -- COMMAND...
//   e.g. tsx test/bench/lib/profile.ts 20000 -- node_modules/.cache/micro-lambda/node/24.21.0/x86_64/node dist/bench-hello/x86_64/sea/bundle.cjs
// The .cpuprofile is kept in .cache/bench/profiles/ (open it in Chrome DevTools or speedscope for a flame graph).
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { root } from "./builds.ts";
import { startFakeRuntimeApi } from "./fake-runtime-api.ts";
import { lambdaEnv } from "./processes.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  perSecond: number;
  totalMs: number;
  /** [name, ms, share] by self time. */
  functions: [string, number, number][];
  files: [string, number, number][];
  path: string;
}

/** Runs `command` with --cpu-prof for `invocations` invocations; the command's first word must be a node binary. */
export async function profile(command: string[], invocations: number): Promise<ProfileSummary> {
  const dir = join(root, ".cache/bench/profiles", String(Date.now()));
  mkdirSync(dir, { recursive: true });
  const fake = await startFakeRuntimeApi({ invocations, holdFirst: true });
  const child = spawn(command[0], ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...command.slice(1)], { env: lambdaEnv(fake.address), stdio: "inherit" });
  await fake.firstNext;
  const started = fake.release();
  const finished = await fake.done;
  // Node writes the profile when the process exits by itself, not when a signal kills it: closing the
  // connections makes every runtime here exit (the Runtime API is gone).
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await fake.close();
  const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(killer);
  const file = readdirSync(dir).find((name) => name.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile in ${dir}: the process did not exit by itself when the Runtime API closed`);
  return { perSecond: invocations / ((finished - started) / 1000), ...summarise(JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile), path: join(dir, file) };
}

function summarise(profile: Profile): Omit<ProfileSummary, "perSecond" | "path"> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    totalMs += ms;
    const file = frame.url ? basename(frame.url.replace(/^file:\/\//, "")) : "(native / V8)";
    const name = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => [name, ms, ms / totalMs] as [string, number, number]);
  return { totalMs, functions: top(functions, 30), files: top(files, 15) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dash = process.argv.indexOf("--");
  const invocations = Number(process.argv[2]) || 20_000;
  const command = process.argv.slice(dash + 1);
  if (dash < 0 || command.length === 0) {
    console.error("usage: tsx test/bench/lib/profile.ts [INVOCATIONS] -- NODE SCRIPT...");
    process.exit(2);
  }
  const result = await profile(command, invocations);
  console.log(`${Math.round(result.perSecond)} invocations/s under the profiler; ${result.totalMs.toFixed(0)} ms sampled; ${result.path}`);
  console.log("\nself time by function:");
  for (const [name, ms, share] of result.functions) console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${(((ms * 1000) / invocations)).toFixed(1).padStart(6)} µs/inv  ${name}`);
  console.log("\nself time by file:");
  for (const [name, ms, share] of result.files) console.log(`${(share * 100).toFixed(1).padStart(5)}%  ${(((ms * 1000) / invocations)).toFixed(1).padStart(6)} µs/inv  ${name}`);
}
