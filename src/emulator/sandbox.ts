// One sandbox: the environment Lambda gives a function, its extensions, the runtime process and its output, its state through init and invocations, and how it is stopped.
//
// Lambda ends a sandbox whole (its microVM goes): nothing the function started survives it (see processes.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { Extensions } from "./extensions.ts";
import type { ErrorJson, Invocation } from "./index.ts";
import { eachFrame, eachLine, type LogRecord } from "./logs.ts";
import { exitStatus, Started } from "./processes.ts";

export interface SandboxConfig {
  command: string[];
  cwd?: string;
  /** This sandbox's environment (see `lambdaEnvironment`). */
  env: Record<string, string | undefined>;
  functionName: string;
  concurrency: number;
  extensionsDir?: string;
  telemetryLogFd?: boolean;
}

/** What a sandbox tells the emulator. */
export interface SandboxEvents {
  /** A log record from the runtime (`function`) or from an extension or the Extensions API (`extension`). */
  record(sandbox: Sandbox, record: LogRecord, source: "function" | "extension"): void;
  /** An extension failed: during init the init fails; after it, the sandbox is reset. */
  extensionFailed(sandbox: Sandbox, error: ErrorJson): void;
  /** The runtime is gone and its output read to the end (or it never started): `status` as Lambda words it. */
  exited(sandbox: Sandbox, status: string): void;
  /** The emulator's own warning about this sandbox. */
  warn(text: string): void;
}

export class Sandbox {
  readonly config: SandboxConfig;
  readonly extensions: Extensions;
  readonly spawnedAt = performance.now();
  /** The runtime; started once every external extension has registered. */
  #runtime?: Started;
  /** The invocation whose arrival started this sandbox: init logs and init failures belong to it. */
  initiator?: Invocation;
  /** Invocations handed to this runtime and not finished yet: its log lines belong to them. */
  readonly invocations = new Set<Invocation>();
  /** The runtime asked for its first event (init is over when the extensions have too). */
  runtimeReady = false;
  initDurationMs?: number;
  initError?: ErrorJson;
  initTimer?: NodeJS.Timeout;
  /** The function has answered, and its INVOKE subscribers have not all asked for their next event yet. */
  busy = false;
  /** Why the running invocations fail when the runtime is stopped for a reason other than its own exit. */
  fatalError?: ErrorJson;
  /** The SHUTDOWN reason the extensions get when the sandbox is reset. */
  resetReason?: "timeout" | "failure";
  shuttingDown = false;
  /** Its end has been reported: the runtime has exited, or was never started and the sandbox was stopped. */
  ended = false;
  /** Resolved when the runtime has exited and its output has been read to the end. */
  exited: Promise<void> = Promise.resolve();
  readonly #events: SandboxEvents;

  constructor(config: SandboxConfig, events: SandboxEvents) {
    this.config = config;
    this.#events = events;
    this.extensions = new Extensions({
      dir: config.extensionsDir,
      env: config.env,
      cwd: config.cwd,
      functionName: config.functionName,
      functionVersion: "$LATEST",
      handler: "bootstrap",
      concurrency: config.concurrency,
      line: (text) => events.record(this, { text }, "extension"),
      onFatal: (error) => events.extensionFailed(this, error),
    });
    // Lambda starts the runtime once every external extension has registered.
    if (config.extensionsDir === undefined) this.#spawnRuntime();
    else void this.extensions.registered().then(() => !this.ended && !this.shuttingDown && this.#spawnRuntime());
  }

  /** The runtime process, once started. */
  get child(): ChildProcess | undefined {
    return this.#runtime?.child;
  }

  /** Init is over: the runtime and every registered extension asked for their first event. */
  get initialized(): boolean {
    return this.initDurationMs !== undefined;
  }

  #spawnRuntime(): void {
    const { command, cwd, env, telemetryLogFd } = this.config;
    const [file, ...args] = command;
    const child = spawn(file!, args, {
      cwd,
      stdio: telemetryLogFd ? ["ignore", "pipe", "pipe", "pipe"] : ["ignore", "pipe", "pipe"],
      // Its own process group, so a signal reaches everything it started (npx → tsx → node), as a sandbox would.
      detached: true,
      env: telemetryLogFd ? { ...env, _LAMBDA_TELEMETRY_LOG_FD: "3" } : env,
    });
    child.on("error", (error) => {
      this.initError ??= { errorType: "Runtime.InvalidEntrypoint", errorMessage: `cannot start ${file}: ${error.message}` };
    });
    const pipes = [child.stdout!, child.stderr!];
    for (const pipe of pipes) eachLine(pipe, (text) => this.#events.record(this, { text }, "function"));
    const frames = child.stdio[3] as Readable | null | undefined;
    if (frames) {
      pipes.push(frames);
      eachFrame(frames, (record) => this.#events.record(this, record, "function"), (why) => this.#events.warn(`micro-lambda emulator: ${why}`));
    }
    const runtime = new Started(child, pipes);
    this.#runtime = runtime;
    // If this process exits first, its function must not outlive it.
    const orphaned = () => runtime.signal("SIGKILL");
    process.on("exit", orphaned);
    this.exited = runtime.exited.then((exit) => {
      process.off("exit", orphaned);
      this.ended = true;
      this.#events.exited(this, exitStatus(exit));
    });
  }

  /** Signals the runtime's whole process group; SIGKILL also reaches whatever else holds its output pipes. */
  signal(name: NodeJS.Signals): void {
    this.#runtime?.signal(name);
  }

  /**
   * Stops the runtime of a sandbox that cannot go on (or whose init failed); its exit fails what was running with
   * `error`, and the extensions get SHUTDOWN. Without a runtime process, it is over at once.
   */
  stop(error: ErrorJson, reason: "timeout" | "failure", during: "init" | "invoke"): void {
    if (during === "init") this.initError ??= error;
    else {
      this.fatalError ??= error;
      this.resetReason ??= reason;
    }
    if (this.#runtime) return this.signal("SIGKILL");
    if (this.ended) return;
    this.ended = true;
    this.#events.exited(this, "signal: SIGKILL");
  }
}

/** The environment Lambda gives the function and its extensions. */
export function lambdaEnvironment(o: { address: string; functionName: string; memoryMB: number; region: string; cwd?: string; concurrency: number; logFormat?: string; logLevel?: string; env?: Record<string, string | undefined> }): Record<string, string | undefined> {
  return {
    ...process.env,
    AWS_LAMBDA_RUNTIME_API: o.address,
    AWS_LAMBDA_FUNCTION_NAME: o.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(o.memoryMB),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${o.functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `${new Date().toISOString().slice(0, 10).replaceAll("-", "/")}/[$LATEST]${randomBytes(16).toString("hex")}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_REGION: o.region,
    AWS_DEFAULT_REGION: o.region,
    LAMBDA_TASK_ROOT: o.cwd ?? process.cwd(),
    _HANDLER: "bootstrap",
    TZ: ":UTC",
    ...(o.concurrency > 1 ? { AWS_LAMBDA_MAX_CONCURRENCY: String(o.concurrency) } : {}),
    ...(o.logFormat ? { AWS_LAMBDA_LOG_FORMAT: o.logFormat } : {}),
    ...(o.logLevel ? { AWS_LAMBDA_LOG_LEVEL: o.logLevel } : {}),
    ...o.env,
  };
}

/** The process's peak resident memory (VmHWM), as Lambda's "Max Memory Used". */
export function peakMemoryMB(pid: number | undefined): number | undefined {
  try {
    const kB = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kB === undefined ? undefined : Math.ceil(Number(kB) / 1024);
  } catch {
    return undefined;
  }
}
