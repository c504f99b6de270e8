// Runs a runtime under the fast fake Runtime API and measures it: spawn → first `/next` (cold start), and a warm
// loop of N invocations with the process's RSS after init and after the loop.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startFakeRuntimeApi, type FakeRuntimeApi } from "./fake-runtime-api.ts";
import { evict, totalCached } from "./page-cache.ts";
import { viewProcess } from "./proc.ts";

/** What to run: a command line and the environment it needs beyond the Lambda variables every runtime gets. */
export interface Runnable {
  label: string;
  command: string[];
  env?: Record<string, string>;
}

/** The environment Lambda gives every runtime (the same for all, so no runtime pays for another's variables). */
export function lambdaEnv(address: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    TZ: ":UTC",
    AWS_LAMBDA_RUNTIME_API: address,
    AWS_LAMBDA_FUNCTION_NAME: "bench",
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
    AWS_LAMBDA_LOG_GROUP_NAME: "/aws/lambda/bench",
    AWS_LAMBDA_LOG_STREAM_NAME: "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    // Credentials are never used (no handler here calls AWS); the SDK only needs them to exist when it does.
    AWS_ACCESS_KEY_ID: "AKIDBENCH",
    AWS_SECRET_ACCESS_KEY: "bench",
    AWS_SESSION_TOKEN: "bench",
    LAMBDA_TASK_ROOT: "/var/task",
    ...extra,
  };
}

/** VmRSS of a live process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface ColdStart {
  /** Spawn → first `GET /next`, milliseconds. */
  ms: number;
  /** RSS when the first `/next` arrived. */
  rss: number;
  /** Bytes read from storage by then (/proc/PID/io read_bytes): 0 when every page it needed was cached. */
  readBytes: number;
  /** The executable's path (/proc/PID/exe). */
  executable: string;
  /** Resident bytes of the executable's own mappings by then (smaps Rss). */
  executableRss: number;
  /** Major page faults by then: the times it waited for storage. */
  majorFaults: number;
  /** Of `ms`, how long its main thread waited for a CPU (other work on the machine). */
  cpuWaitMs: number;
  /** The executable and every file it maps by then (shared libraries, native addons). */
  files: string[];
}

/**
 * One cold start: a fresh fake, spawn, wait for the first `/next`, read the process's memory and I/O, kill.
 * `atFirstNext` may look at the process while it waits on that `/next` (after the time is taken).
 */
export async function coldStart(runnable: Runnable, timeoutMs = 15_000, atFirstNext?: (pid: number) => void): Promise<ColdStart> {
  const fake = await startFakeRuntimeApi({ invocations: 0 });
  const env = lambdaEnv(fake.address, runnable.env);
  const started = performance.now();
  const child = spawn(runnable.command[0], runnable.command.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  try {
    const first = await within(fake.firstNext, child, output, timeoutMs, `${runnable.label}: no GET /next`);
    const rss = rssBytes(child.pid!);
    const view = viewProcess(child.pid!);
    atFirstNext?.(child.pid!);
    return { ms: first - started, rss, readBytes: view.readBytes, executable: view.executable, executableRss: view.executableRss, majorFaults: view.majorFaults, cpuWaitMs: view.cpuWaitMs, files: view.files };
  } finally {
    await stop(child);
    await fake.close();
  }
}

/** A cold start after evicting the runnable's files: what was left cached of them after the eviction too. */
export interface Evicted extends ColdStart {
  /** Bytes of its files still cached after the eviction (pages other processes map: libc and the like). */
  left: number;
  /** Of those, bytes of its executable (0 unless another process runs the same file). */
  leftExecutable: number;
}

/** The files to evict for a variant: those its warm-up run mapped, those its command names, its handler's folder. */
export function filesOf(runnable: Runnable, warmUp: ColdStart): string[] {
  const named = runnable.command.filter((part) => part.startsWith("/") && isFile(part));
  const taskRoot = runnable.env?.LAMBDA_TASK_ROOT;
  const handler = taskRoot ? readdirSync(taskRoot).map((name) => join(taskRoot, name)).filter(isFile) : [];
  return [...new Set([...warmUp.files, ...named, ...handler])];
}

/** Evicts `files` from the page cache, then one cold start: how a new Lambda sandbox starts. */
export async function evictedStart(runnable: Runnable, files: string[]): Promise<Evicted> {
  const after = await evict(files);
  const sample = await coldStart(runnable);
  const executable = after.find((file) => file.path === sample.executable)?.cached ?? 0;
  return { ...sample, left: totalCached(after), leftExecutable: executable };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface WarmRun {
  invocations: number;
  /** Invocations per second, from releasing the first event to the `/next` after the last answer. */
  perSecond: number;
  /** Event written → answer read, per invocation, milliseconds, sorted. */
  overheadMs: Float64Array;
  /** Answer's 202 written → next `/next` read, milliseconds, sorted. */
  turnaroundMs: Float64Array;
  rssAfterInit: number;
  /** RSS when half the invocations were answered (read while the loop goes on). */
  rssAtHalf: number;
  rssAfterLoop: number;
}

/** `invocations` no-op invocations in a row; RSS read at the held first `/next`, half way, and at the held last `/next`. */
export async function warmRun(runnable: Runnable, invocations: number, timeoutMs = 120_000): Promise<WarmRun> {
  const fake = await startFakeRuntimeApi({ invocations, holdFirst: true, checkpoint: Math.floor(invocations / 2) });
  const child = spawn(runnable.command[0], runnable.command.slice(1), { env: lambdaEnv(fake.address, runnable.env), stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  try {
    await within(fake.firstNext, child, output, 15_000, `${runnable.label}: no GET /next`);
    const rssAfterInit = rssBytes(child.pid!);
    const started = fake.release();
    let rssAtHalf = NaN;
    void fake.checkpoint.then(() => {
      try {
        rssAtHalf = rssBytes(child.pid!);
      } catch {} // it exited meanwhile: the run fails below with its output
    });
    const finished = await within(fake.done, child, output, timeoutMs, `${runnable.label}: ${invocations} invocations did not finish`);
    const rssAfterLoop = rssBytes(child.pid!);
    if (fake.errors > 0) throw new Error(`${runnable.label}: ${fake.errors} invocations answered /error: ${output().slice(-800)}`);
    return {
      invocations,
      perSecond: invocations / ((finished - started) / 1000),
      overheadMs: Float64Array.from(fake.overheadMs).sort(),
      turnaroundMs: Float64Array.from(fake.turnaroundMs).sort(),
      rssAfterInit,
      rssAtHalf,
      rssAfterLoop,
    };
  } finally {
    await stop(child);
    await fake.close();
  }
}

/** The last 4 KB the child wrote to stdout and stderr, for failure messages. */
function collect(child: ChildProcess): () => string {
  let text = "";
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-4096);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => text;
}

/** `promise`, or a rejection naming what happened when the child exits first or the time runs out. */
function within<T>(promise: Promise<T>, child: ChildProcess, output: () => string, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms. Output: ${output().trim() || "(none)"}`)), timeoutMs);
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`${what}: it exited (${signal ?? `code ${code}`}). Output: ${output().trim() || "(none)"}`));
    const onError = (error: Error) => reject(new Error(`${what}: cannot run it: ${error.message}`));
    child.once("exit", onExit).once("error", onError);
    promise.then(
      (value) => {
        clearTimeout(timer);
        child.off("exit", onExit).off("error", onError);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** SIGKILL, as Lambda ends a sandbox, and wait for the exit so the next run starts on a quiet machine. */
function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

export type { FakeRuntimeApi };
