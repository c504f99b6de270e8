// A local Lambda: a real Runtime API server that starts the function, feeds it invocations, and reports what came back.
//
// The API paths are written here as literals, not imported from protocol.ts, on purpose: the emulator is the
// independent other side of the protocol, so a wrong constant in the runtime fails a test instead of being copied.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Writable } from "node:stream";
import { eachLine, Extensions, parseJson, readBody } from "./extensions.ts";

export interface EmulatorOptions {
  /** The function's command: a bootstrap (`["dist/hello/x86_64/bootstrap"]`) or `["npx", "tsx", "main.ts"]`. */
  command: string[];
  cwd?: string;
  /** Added to the environment Lambda gives the function (and to this process's own environment). */
  env?: Record<string, string | undefined>;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The function's timeout; Lambda's default is 3 s. */
  timeoutMs?: number;
  /** How long init (spawn → first /next) may take; Lambda's limit is 10 s. */
  initTimeoutMs?: number;
  memoryMB?: number;
  functionName?: string;
  region?: string;
  /** How many invocations the function takes at once (Lambda Managed Instances); sets `AWS_LAMBDA_MAX_CONCURRENCY` when above 1. */
  concurrency?: number;
  /** Where the function's output and the START/END/REPORT lines go, as in CloudWatch Logs. None by default. */
  output?: Writable;
  /**
   * A folder of Lambda extensions, as a layer puts them in /opt/extensions: every executable in it is started
   * before the function and must register; the first invoke waits for all of them.
   */
  extensionsDir?: string;
}

export interface InvokeOptions {
  /** Sent as `Lambda-Runtime-Client-Context`: an object is JSON-encoded, a string is sent as it is. */
  clientContext?: unknown;
  /** Sent as `Lambda-Runtime-Cognito-Identity`: an object is JSON-encoded, a string is sent as it is. */
  identity?: unknown;
  /** The X-Ray trace header; a fresh one by default, none with `null`. */
  traceId?: string | null;
  tenantId?: string;
  /** A streamed response has started: its content type, and for function URLs the prelude (status, headers, cookies). */
  onHead?: (head: StreamHead) => void;
  /**
   * Each chunk of a streamed response, in order, as it arrives (after the prelude). Return a promise to hold the
   * function's stream until it settles, as a slow reader does. When given, chunks are not collected in `payload`.
   */
  onChunk?: (chunk: Buffer) => void | Promise<void>;
}

/** The start of a streamed response, as a function URL reads it. */
export interface StreamHead {
  contentType: string;
  /** Set when the content type is `application/vnd.awslambda.http-integration-response`: the JSON before the 8 NUL bytes. */
  prelude?: { statusCode?: number; headers?: Record<string, string>; cookies?: string[] };
}

export interface ErrorJson {
  errorType: string;
  errorMessage: string;
  stackTrace?: string[];
}

/** How one invocation ended, as the caller of Lambda's Invoke API sees it, plus what only an emulator can show. */
export interface InvokeResult {
  requestId: string;
  ok: boolean;
  /** The response bytes (the error JSON when `ok` is false). Streamed: the bytes streamed after any prelude, also when it failed mid-stream. */
  payload: Buffer;
  /** The runtime answered with a streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`). */
  streamed?: boolean;
  /** A streamed response's content type and prelude. */
  head?: StreamHead;
  /** The response parsed as JSON, when `ok` and it parses. */
  result?: unknown;
  error?: ErrorJson;
  /** The `Lambda-Runtime-Function-Error-Type` header the runtime sent with its error, if any. */
  errorTypeHeader?: string;
  /** The headers of the runtime's `/response` or `/error` request. */
  answerHeaders?: Record<string, string | string[] | undefined>;
  /** What the function printed while this invocation ran (and during init, for the invocation that started it). */
  logs: string;
  durationMs: number;
  initDurationMs?: number;
  maxMemoryUsedMB?: number;
}

/** The invocation id Lambda sends with each event (2026) and expects back on the answer. */
const INVOCATION_ID = "lambda-runtime-invocation-id";
const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;
const MAX_STREAMED_BYTES = 200 * 1024 * 1024;

interface Invocation {
  requestId: string;
  invocationId: string;
  payload: Buffer;
  headers: Record<string, string>;
  options: InvokeOptions;
  logs: string[];
  initDurationMs?: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  /** Set once the result is decided: a late answer and a timeout must not both finish it. */
  finished?: boolean;
  resolve(result: InvokeResult): void;
}

interface Sandbox {
  /** The runtime; started once every external extension has registered. */
  child?: ChildProcess;
  /** Its extensions (external from `extensionsDir`, internal ones the runtime registers) and telemetry subscriptions. */
  extensions: Extensions;
  env: Record<string, string | undefined>;
  /** The runtime asked for its first event (init is over when the extensions have too). */
  runtimeReady?: boolean;
  /** The function has answered, and its INVOKE subscribers have not all asked for their next event yet. */
  busy?: boolean;
  /** Why the running invocations fail when the runtime is stopped for a reason other than its own exit. */
  fatalError?: ErrorJson;
  /** The SHUTDOWN reason the extensions get when the sandbox is reset. */
  resetReason?: "timeout" | "failure";
  shuttingDown?: boolean;
  spawnedAt: number;
  initDurationMs?: number;
  initError?: ErrorJson;
  initTimer?: NodeJS.Timeout;
  /** The invocation whose arrival started this sandbox: init logs and init failures belong to it. */
  initiator?: Invocation;
  exited: Promise<void>;
}

export class Emulator {
  readonly #options: Required<Pick<EmulatorOptions, "timeoutMs" | "initTimeoutMs" | "memoryMB" | "functionName" | "region" | "concurrency">> & EmulatorOptions;
  readonly #server: Server;
  readonly #queue: Invocation[] = [];
  readonly #running = new Map<string, Invocation>();
  readonly #timedOut = new Set<string>();
  /** GET /next requests waiting for an event. */
  readonly #waiting: ServerResponse[] = [];
  #sandbox?: Sandbox;
  /** The extensions of a reset sandbox shutting down: the next sandbox starts after. */
  #teardown?: Promise<void>;
  /** The latest sandbox's extensions: they still talk to the API (SHUTDOWN, telemetry) after its runtime has exited. */
  #extensions?: Extensions;
  #closed = false;

  private constructor(options: EmulatorOptions) {
    this.#options = { timeoutMs: 3000, initTimeoutMs: 10_000, memoryMB: 128, functionName: "function", region: "us-east-1", concurrency: 1, ...options };
    this.#server = createServer((req, res) => this.#route(req, res));
    // Lambda never closes an idle Runtime API connection; a keep-alive timeout here would race the runtime's next request.
    this.#server.keepAliveTimeout = 0;
  }

  /** Starts the Runtime API server; the function itself starts on the first invoke. */
  static async start(options: EmulatorOptions): Promise<Emulator> {
    const emulator = new Emulator(options);
    await new Promise<void>((resolve, reject) => {
      emulator.#server.once("error", reject);
      emulator.#server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve);
    });
    return emulator;
  }

  /** `host:port`, what the function gets as `AWS_LAMBDA_RUNTIME_API`. */
  get address(): string {
    const { address, port } = this.#server.address() as AddressInfo;
    return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  /** Invokes the function once. A Buffer is sent as the raw event bytes; anything else as JSON. Never rejects: failures are results. */
  invoke(event: unknown, options: InvokeOptions = {}): Promise<InvokeResult> {
    const payload = Buffer.isBuffer(event) ? event : Buffer.from(JSON.stringify(event) ?? "null");
    const headers: Record<string, string> = {};
    const traceId = options.traceId === undefined ? newTraceId() : options.traceId;
    if (traceId !== null) headers["lambda-runtime-trace-id"] = traceId;
    if (options.clientContext !== undefined) headers["lambda-runtime-client-context"] = asHeader(options.clientContext);
    if (options.identity !== undefined) headers["lambda-runtime-cognito-identity"] = asHeader(options.identity);
    if (options.tenantId !== undefined) headers["lambda-runtime-aws-tenant-id"] = options.tenantId;
    return new Promise((resolve) => {
      const invocation: Invocation = { requestId: randomUUID(), invocationId: randomUUID(), payload, headers, options, logs: [], resolve };
      if (this.#closed) return resolve(this.#failed(invocation, "Emulator.Closed", "the emulator is closed"));
      this.#queue.push(invocation);
      this.#pump();
    });
  }

  /**
   * Stops the function and the server as Lambda ends a sandbox: with an extension registered (external, or an
   * internal one the runtime registered), SIGTERM, then SIGKILL after the budget (500 ms with internal extensions
   * only; with external ones, 30% of 2 s, then SHUTDOWN to the extensions); with none, a bare SIGKILL.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const invocation of this.#queue.splice(0)) invocation.resolve(this.#failed(invocation, "Emulator.Closed", "the emulator closed before this invocation ran"));
    const sandbox = this.#sandbox;
    if (sandbox) {
      sandbox.shuttingDown = true;
      const budget = shutdownBudget(sandbox);
      const deadline = Date.now() + budget.totalMs;
      const { external, internal } = sandbox.extensions.count;
      // Lambda sends SIGTERM only when an extension is registered: that is the runtime's only way to opt in.
      signal(sandbox, external + internal > 0 ? "SIGTERM" : "SIGKILL");
      const killer = setTimeout(() => signal(sandbox, "SIGKILL"), budget.runtimeMs);
      await sandbox.exited;
      clearTimeout(killer);
      // Then the extensions: SHUTDOWN with the deadline, and SIGKILL for what is still running at it.
      await sandbox.extensions.shutdown("spindown", deadline);
    }
    await this.#teardown;
    for (const res of this.#waiting.splice(0)) res.destroy();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  // ---- the function's sandbox -------------------------------------------------------------------------

  /** Starts the function when work is waiting and nothing runs; hands queued events to waiting /next requests. */
  #pump(): void {
    if (this.#closed) return;
    if (!this.#sandbox && !this.#teardown && this.#queue.length > 0) this.#spawn();
    const sandbox = this.#sandbox;
    if (sandbox?.initDurationMs === undefined || sandbox.busy) return;
    while (this.#waiting.length > 0 && this.#queue.length > 0 && this.#running.size < this.#options.concurrency) {
      this.#dispatch(this.#waiting.shift()!, this.#queue.shift()!);
    }
  }

  /** A new sandbox: its extensions first (Lambda starts the runtime once they have all registered), then the runtime. */
  #spawn(): void {
    const o = this.#options;
    const sandbox: Sandbox = { spawnedAt: performance.now(), initiator: this.#queue[0], env: this.#environment(), exited: Promise.resolve() } as Sandbox;
    this.#sandbox = sandbox;
    sandbox.initTimer = setTimeout(() => {
      this.#line(`INIT_REPORT Init Duration: ${o.initTimeoutMs.toFixed(2)} ms\tPhase: init\tStatus: timeout`);
      const late = sandbox.extensions.pending();
      this.#initFailed(sandbox, { errorType: "Sandbox.Timedout", errorMessage: `Init timed out after ${(o.initTimeoutMs / 1000).toFixed(2)} seconds${late ? ` (${late})` : ""}` });
    }, o.initTimeoutMs);
    sandbox.extensions = new Extensions({
      dir: o.extensionsDir,
      env: sandbox.env,
      cwd: o.cwd,
      functionName: o.functionName,
      functionVersion: "$LATEST",
      handler: "bootstrap",
      concurrency: o.concurrency,
      line: (text) => this.#extensionOutput(sandbox, text),
      onFatal: (error) => this.#extensionFailed(sandbox, error),
    });
    this.#extensions = sandbox.extensions;
    if (o.extensionsDir === undefined) this.#spawnRuntime(sandbox);
    else void sandbox.extensions.registered().then(() => this.#sandbox === sandbox && this.#spawnRuntime(sandbox));
  }

  /** The environment Lambda gives the function and its extensions. */
  #environment(): Record<string, string | undefined> {
    const o = this.#options;
    return {
        ...process.env,
        AWS_LAMBDA_RUNTIME_API: this.address,
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
        ...o.env,
    };
  }

  #spawnRuntime(sandbox: Sandbox): void {
    const o = this.#options;
    const [file, ...args] = o.command;
    const child = spawn(file!, args, {
      cwd: o.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, so a signal reaches everything it started (npx → tsx → node), as a sandbox would.
      detached: true,
      env: sandbox.env,
    });
    sandbox.child = child;
    sandbox.exited = new Promise((resolve) => child.once("close", () => resolve()));
    child.on("error", (error) => {
      sandbox.initError = { errorType: "Runtime.InvalidEntrypoint", errorMessage: `cannot start ${file}: ${error.message}` };
    });
    eachLine(child, (line) => this.#functionOutput(sandbox, line));
    // If this process exits first, its function must not outlive it.
    const orphaned = () => signal(sandbox, "SIGKILL");
    process.on("exit", orphaned);
    child.once("close", (code, signal) => {
      process.off("exit", orphaned);
      this.#exited(sandbox, code, signal);
    });
  }

  #functionOutput(sandbox: Sandbox, line: string): void {
    const targets = this.#running.size > 0 ? this.#running.values() : sandbox.initDurationMs === undefined && sandbox.initiator ? [sandbox.initiator] : [];
    for (const invocation of targets) invocation.logs.push(line);
    this.#options.output?.write(line + "\n");
    sandbox.extensions.functionLine(line);
  }

  /** An extension's line, or the emulator's EXTENSION/TELEMETRY lines: the same log stream as the function's, as in CloudWatch Logs. */
  #extensionOutput(sandbox: Sandbox, line: string): void {
    const targets = this.#running.size > 0 ? this.#running.values() : sandbox.initDurationMs === undefined && sandbox.initiator ? [sandbox.initiator] : [];
    for (const invocation of targets) invocation.logs.push(line);
    this.#options.output?.write(line + "\n");
  }

  /** An extension failed (crashed, or reported an init or exit error): during init the init fails; after it, the sandbox is reset. */
  #extensionFailed(sandbox: Sandbox, error: ErrorJson): void {
    if (this.#sandbox !== sandbox || sandbox.shuttingDown) return;
    if (sandbox.initDurationMs === undefined) {
      this.#line(`INIT_REPORT Init Duration: ${(performance.now() - sandbox.spawnedAt).toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${error.errorType}`);
      return this.#initFailed(sandbox, error);
    }
    this.#line(`${error.errorType}: ${error.errorMessage}: resetting the sandbox`);
    this.#reset(sandbox, "failure", error);
  }

  /** Stops the runtime of a sandbox that cannot go on; its exit fails what was running with `error`, and the extensions get SHUTDOWN. */
  #reset(sandbox: Sandbox, reason: "timeout" | "failure", error: ErrorJson): void {
    sandbox.fatalError ??= error;
    sandbox.resetReason ??= reason;
    if (sandbox.child) return signal(sandbox, "SIGKILL");
    this.#exited(sandbox, null, "SIGKILL");
  }

  /** Init failed: the invocation that started the sandbox gets `error` (the runtime's exit, if it runs, reports it). */
  #initFailed(sandbox: Sandbox, error: ErrorJson): void {
    sandbox.initError ??= error;
    if (sandbox.child) return signal(sandbox, "SIGKILL");
    this.#exited(sandbox, null, "SIGKILL");
  }

  #exited(sandbox: Sandbox, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(sandbox.initTimer);
    if (this.#sandbox === sandbox) this.#sandbox = undefined;
    if (!sandbox.shuttingDown) {
      // Lambda resets the whole sandbox: extensions get SHUTDOWN (killed, if init never finished), and the next one waits for them.
      const ended = sandbox.initDurationMs === undefined ? sandbox.extensions.kill() : sandbox.extensions.shutdown(sandbox.resetReason ?? "failure", Date.now() + 2000);
      const teardown: Promise<void> = ended.then(() => {
        if (this.#teardown === teardown) this.#teardown = undefined;
        this.#pump();
      });
      this.#teardown = teardown;
    }
    for (const res of this.#waiting.splice(0)) res.destroy();
    const status = signal ? `signal: ${signal}` : `exit status ${code}`;
    if (sandbox.initDurationMs === undefined) {
      // Died during init: the invocation that started it gets the init error, or the exit status.
      const initiator = sandbox.initiator && this.#queue.indexOf(sandbox.initiator);
      if (initiator !== undefined && initiator >= 0) {
        const [invocation] = this.#queue.splice(initiator, 1);
        const error = sandbox.initError ?? { errorType: "Runtime.ExitError", errorMessage: `RequestId: ${invocation!.requestId} Error: Runtime exited with error: ${status}` };
        this.#finish(invocation!, false, Buffer.from(JSON.stringify(error)), { errorTypeHeader: error.errorType });
      }
    }
    for (const invocation of [...this.#running.values()]) {
      const error = sandbox.fatalError ?? { errorType: "Runtime.ExitError", errorMessage: `RequestId: ${invocation.requestId} Error: Runtime exited with error: ${status}` };
      this.#finish(invocation, false, Buffer.from(JSON.stringify(error)));
    }
    this.#pump();
  }

  #dispatch(res: ServerResponse, invocation: Invocation): void {
    const deadline = Date.now() + this.#options.timeoutMs;
    invocation.startedAt = performance.now();
    this.#running.set(invocation.requestId, invocation);
    this.#line(`START RequestId: ${invocation.requestId} Version: $LATEST`);
    const invokedFunctionArn = `arn:aws:lambda:${this.#options.region}:012345678912:function:${this.#options.functionName}`;
    // Lambda releases the extensions' INVOKE before the runtime's event.
    this.#sandbox?.extensions.invoke({ requestId: invocation.requestId, deadlineMs: deadline, invokedFunctionArn, traceId: invocation.headers["lambda-runtime-trace-id"] });
    res.writeHead(200, {
      "content-type": "application/json",
      "lambda-runtime-aws-request-id": invocation.requestId,
      "lambda-runtime-deadline-ms": String(deadline),
      "lambda-runtime-invoked-function-arn": invokedFunctionArn,
      [INVOCATION_ID]: invocation.invocationId,
      ...invocation.headers,
    });
    res.end(invocation.payload);
    invocation.timer = setTimeout(() => {
      this.#timedOut.add(invocation.requestId);
      const error = { errorType: "Sandbox.Timedout", errorMessage: `RequestId: ${invocation.requestId} Error: Task timed out after ${(this.#options.timeoutMs / 1000).toFixed(2)} seconds` };
      this.#finish(invocation, false, Buffer.from(JSON.stringify(error)));
      // Lambda stops the whole sandbox on a timeout; the next invoke starts a fresh one.
      if (this.#sandbox) this.#sandbox.resetReason ??= "timeout";
      if (this.#sandbox) signal(this.#sandbox, "SIGKILL");
    }, this.#options.timeoutMs);
  }

  #finish(invocation: Invocation, ok: boolean, payload: Buffer, extra: Partial<InvokeResult> = {}): void {
    if (invocation.finished) return;
    invocation.finished = true;
    clearTimeout(invocation.timer);
    this.#running.delete(invocation.requestId);
    const durationMs = invocation.startedAt === undefined ? 0 : performance.now() - invocation.startedAt;
    const sandbox = this.#sandbox;
    const maxMemoryUsedMB = sandbox?.child && peakMemoryMB(sandbox.child.pid);
    const result: InvokeResult = { requestId: invocation.requestId, ok, payload, logs: invocation.logs.join("\n"), durationMs, initDurationMs: invocation.initDurationMs, maxMemoryUsedMB, ...extra };
    if (ok) result.result = extra.streamed ? undefined : parseJson(payload);
    else result.error ??= (parseJson(payload) as ErrorJson | undefined) ?? { errorType: extra.errorTypeHeader ?? "Function.Unknown", errorMessage: payload.toString() };
    if (invocation.startedAt !== undefined) {
      const startedAt = invocation.startedAt;
      const status = ok ? "success" : result.error?.errorType === "Sandbox.Timedout" ? "timeout" : "error";
      sandbox?.extensions.runtimeDone({ requestId: invocation.requestId, status, ...(ok ? {} : { errorType: result.error?.errorType }), durationMs, producedBytes: payload.length });
      if (sandbox?.child && sandbox.extensions.waitForInvoke && !sandbox.fatalError && status !== "timeout") {
        // The caller has its answer now, as on Lambda; the invocation is over, and the next one may start, only
        // when every INVOKE subscriber has asked for its next event: extension work is on the invocation's clock.
        sandbox.busy = true;
        invocation.resolve(result);
        const late = setTimeout(() => {
          this.#line(`RequestId: ${invocation.requestId} Error: extensions did not ask for their next event before the timeout: resetting the sandbox`);
          this.#reset(sandbox, "timeout", { errorType: "Sandbox.Timedout", errorMessage: `RequestId: ${invocation.requestId} Error: Task timed out` });
        }, Math.max(0, this.#options.timeoutMs - durationMs));
        void sandbox.extensions.afterInvoke().then(() => {
          clearTimeout(late);
          sandbox.busy = false;
          this.#report(sandbox, invocation, status, result, performance.now() - startedAt);
          this.#pump();
        });
        return;
      }
      this.#report(sandbox, invocation, status, result, durationMs);
    }
    invocation.resolve(result);
    this.#pump();
  }

  /** END and REPORT in the log, and `platform.report` for telemetry: the invocation is over. */
  #report(sandbox: Sandbox | undefined, invocation: Invocation, status: string, result: InvokeResult, durationMs: number): void {
    const { maxMemoryUsedMB } = result;
    this.#line(`END RequestId: ${invocation.requestId}`);
    this.#line(
      `REPORT RequestId: ${invocation.requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${Math.ceil(durationMs)} ms\t` +
        `Memory Size: ${this.#options.memoryMB} MB\tMax Memory Used: ${maxMemoryUsedMB ?? "?"} MB` +
        (invocation.initDurationMs === undefined ? "" : `\tInit Duration: ${invocation.initDurationMs.toFixed(2)} ms`),
    );
    sandbox?.extensions.report({
      requestId: invocation.requestId,
      status,
      ...(result.ok ? {} : { errorType: result.error?.errorType }),
      durationMs,
      memorySizeMB: this.#options.memoryMB,
      maxMemoryUsedMB,
      initDurationMs: invocation.initDurationMs,
    });
  }

  #failed(invocation: Invocation, errorType: string, errorMessage: string): InvokeResult {
    const error = { errorType, errorMessage };
    return { requestId: invocation.requestId, ok: false, payload: Buffer.from(JSON.stringify(error)), error, logs: "", durationMs: 0 };
  }

  #line(text: string): void {
    this.#options.output?.write(text + "\n");
  }

  // ---- HTTP: the Runtime API for the function, the Invoke API for callers ---------------------------

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    let match: RegExpMatchArray | null;
    if (req.method === "GET" && url === "/2018-06-01/runtime/invocation/next") return this.#next(res);
    if (this.#extensions?.route(req, res)) return; // /2020-01-01/extension/*, /2022-07-01/telemetry, /2020-08-15/logs
    if (req.method === "POST" && (match = url.match(/^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/))) {
      return this.#answer(req, res, decodeURIComponent(match[1]!), match[2] as "response" | "error");
    }
    if (req.method === "POST" && url === "/2018-06-01/runtime/init/error") return this.#initError(req, res);
    if (req.method === "POST" && /^\/2015-03-31\/functions\/[^/]+\/invocations(\?.*)?$/.test(url)) return this.#invokeApi(req, res);
    const body = await readBody(req);
    reply(res, 404, { errorType: "NotFound", errorMessage: `no such endpoint: ${req.method} ${url} (${body.length} bytes)` });
  }

  #next(res: ServerResponse): void {
    const sandbox = this.#sandbox;
    if (sandbox && sandbox.initDurationMs === undefined && !sandbox.runtimeReady) {
      // The runtime's first /next ends init, once every registered extension has asked for its first event too.
      sandbox.runtimeReady = true;
      const initDone = () => {
        clearTimeout(sandbox.initTimer);
        sandbox.initDurationMs = performance.now() - sandbox.spawnedAt;
        if (sandbox.initiator) sandbox.initiator.initDurationMs = sandbox.initDurationMs;
        sandbox.extensions.initDone(sandbox.initDurationMs);
      };
      if (sandbox.extensions.closeRegistration()) initDone();
      else
        void sandbox.extensions.runtimeReady().then(() => {
          if (this.#sandbox !== sandbox) return;
          initDone();
          this.#pump();
        });
    }
    res.on("close", () => {
      const index = this.#waiting.indexOf(res);
      if (index >= 0) this.#waiting.splice(index, 1);
    });
    this.#waiting.push(res);
    this.#pump();
  }

  async #answer(req: IncomingMessage, res: ServerResponse, requestId: string, kind: "response" | "error"): Promise<void> {
    if (kind === "response" && req.headers["lambda-runtime-function-response-mode"] === "streaming") return this.#answerStream(req, res, requestId);
    const body = await readBody(req, MAX_RESPONSE_BYTES + 1);
    const invocation = this.#running.get(requestId);
    if (!invocation) {
      if (this.#timedOut.has(requestId)) return reply(res, 410, { errorType: "InvocationGone", errorMessage: `invocation ${requestId} has timed out` });
      return reply(res, 400, { errorType: "InvalidRequestID", errorMessage: `no invocation ${requestId} is running` });
    }
    const answerHeaders = { ...req.headers };
    if (kind === "response" && body.length > MAX_RESPONSE_BYTES) {
      const error = { errorType: "Function.ResponseSizeTooLarge", errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).` };
      this.#finish(invocation, false, Buffer.from(JSON.stringify(error)), { answerHeaders });
      return reply(res, 413, error);
    }
    const errorTypeHeader = req.headers["lambda-runtime-function-error-type"] as string | undefined;
    reply(res, 202, { status: "OK" });
    // What the function printed before answering is already in its stdout pipe, but this event loop may see the
    // answer first: give the pipes a turn so those lines land in this invocation's logs.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    this.#finish(invocation, kind === "response", body, { answerHeaders, errorTypeHeader });
  }

  /**
   * A streamed /response: each chunk goes to the caller as it arrives, and the runtime is not read further until
   * the caller has taken it (a slow reader slows the function, as on Lambda). A failure after the first byte
   * comes in the trailers, the body one base64 JSON.
   */
  async #answerStream(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const invocation = this.#running.get(requestId);
    if (!invocation) {
      req.resume();
      if (this.#timedOut.has(requestId)) return reply(res, 410, { errorType: "InvocationGone", errorMessage: `invocation ${requestId} has timed out` });
      return reply(res, 400, { errorType: "InvalidRequestID", errorMessage: `no invocation ${requestId} is running` });
    }
    const answerHeaders = { ...req.headers };
    const contentType = req.headers["content-type"] ?? "application/octet-stream";
    const { onHead, onChunk } = invocation.options;
    let head: StreamHead | undefined;
    let prelude: Buffer | undefined = contentType === "application/vnd.awslambda.http-integration-response" ? Buffer.alloc(0) : undefined;
    const collected: Buffer[] = [];
    let size = 0;
    const deliver = async (chunk: Buffer) => {
      if (!head) {
        head = { contentType };
        onHead?.(head);
      }
      if (chunk.length === 0) return;
      if (onChunk) await onChunk(chunk);
      else collected.push(chunk);
    };
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (!this.#running.has(requestId)) continue; // timed out meanwhile: drain
        if (size > MAX_STREAMED_BYTES) {
          const error = { errorType: "Function.ResponseSizeTooLarge", errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_STREAMED_BYTES} bytes).` };
          this.#finish(invocation, false, Buffer.concat(collected), { error, answerHeaders, streamed: true, head });
          res.setHeader("connection", "close");
          return reply(res, 413, error);
        }
        if (prelude) {
          // Function URLs: JSON, then 8 NUL bytes (JSON never contains NUL), then the body.
          prelude = Buffer.concat([prelude, chunk]);
          const end = prelude.indexOf(Buffer.alloc(8));
          if (end < 0) continue;
          head = { contentType, prelude: parseJson(prelude.subarray(0, end)) as StreamHead["prelude"] };
          onHead?.(head);
          const rest = prelude.subarray(end + 8);
          prelude = undefined;
          await deliver(rest);
        } else await deliver(chunk);
      }
    } catch {
      return; // the connection broke: the function died, and its exit is reported
    }
    if (!this.#running.has(requestId)) return reply(res, 410, { errorType: "InvocationGone", errorMessage: `invocation ${requestId} has timed out` });
    if (prelude) await deliver(prelude); // no delimiter: not a prelude after all, handed over raw
    const errorTypeHeader = req.trailers["lambda-runtime-function-error-type"];
    const errorBody = req.trailers["lambda-runtime-function-error-body"];
    const extra: Partial<InvokeResult> = { answerHeaders, streamed: true, head };
    if (errorTypeHeader !== undefined || errorBody !== undefined) {
      extra.errorTypeHeader = errorTypeHeader;
      extra.error = (parseJson(Buffer.from(errorBody ?? "", "base64")) as ErrorJson | undefined) ?? { errorType: errorTypeHeader ?? "Function.Unknown", errorMessage: "" };
    } else if (!head) await deliver(Buffer.alloc(0)); // an empty response has a head too
    extra.head = head;
    this.#finish(invocation, extra.error === undefined, Buffer.concat(collected), extra);
    reply(res, 202, { status: "OK" });
  }

  async #initError(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const sandbox = this.#sandbox;
    if (!sandbox || sandbox.initDurationMs !== undefined) return reply(res, 403, { errorType: "InvalidStateTransition", errorMessage: "init is over" });
    const errorType = (req.headers["lambda-runtime-function-error-type"] as string | undefined) ?? "Runtime.Unknown";
    sandbox.initError = (parseJson(body) as ErrorJson | undefined) ?? { errorType, errorMessage: body.toString() };
    this.#line(`INIT_REPORT Init Duration: ${(performance.now() - sandbox.spawnedAt).toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${errorType}`);
    reply(res, 202, { status: "OK" });
  }

  /**
   * Lambda's Invoke API, as aws-lambda-rie serves it: the function's response, or its error with `X-Amz-Function-Error: Unhandled`.
   * A streamed response (which aws-lambda-rie does not support) is passed on as a function URL passes it on: the
   * prelude's status, headers and cookies, then the body chunk by chunk as it arrives; a failure after that is
   * reported in the trailers (`X-Amz-Function-Error`, and Lambda's two error trailers as the runtime sent them).
   */
  async #invokeApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const clientContext = req.headers["x-amz-client-context"];
    let streaming = false;
    const result = await this.invoke(body.length > 0 ? body : Buffer.from("{}"), {
      clientContext: typeof clientContext === "string" ? Buffer.from(clientContext, "base64").toString() : undefined,
      tenantId: req.headers["x-amz-tenant-id"] as string | undefined,
      onHead: ({ contentType, prelude }) => {
        streaming = true;
        // With a prelude, the content type is the prelude's own, as a function URL sends it.
        const headers: Record<string, string | string[]> = { "content-type": prelude ? "application/octet-stream" : contentType, ...lowerCased(prelude?.headers) };
        if (prelude?.cookies?.length) headers["set-cookie"] = prelude.cookies;
        delete headers["content-length"]; // the body is streamed, chunked, with trailers
        headers.trailer = "X-Amz-Function-Error, Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body";
        res.writeHead(prelude?.statusCode ?? 200, headers);
      },
      onChunk: (chunk) => {
        if (res.destroyed || res.write(chunk)) return;
        return new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
      },
    });
    if (!streaming) {
      res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": result.requestId, ...(result.ok ? {} : { "x-amz-function-error": "Unhandled" }) });
      return void res.end(result.ok || !result.streamed ? result.payload : JSON.stringify(result.error));
    }
    if (!result.ok) {
      res.addTrailers({
        "x-amz-function-error": "Unhandled",
        "lambda-runtime-function-error-type": result.errorTypeHeader ?? result.error!.errorType,
        "lambda-runtime-function-error-body": Buffer.from(JSON.stringify(result.error)).toString("base64"),
      });
    }
    res.end();
  }
}

/**
 * Lambda's shutdown budget: 300 ms with no extension, 500 ms with internal ones only, 2 s with an external one.
 * The runtime gets SIGTERM and, when external extensions share the budget, 30% of it before SIGKILL (as the
 * Runtime Interface Emulator does); the extensions get the rest.
 */
function shutdownBudget(sandbox: Sandbox): { totalMs: number; runtimeMs: number } {
  const { external, internal } = sandbox.extensions.count;
  if (external > 0) return { totalMs: 2000, runtimeMs: 600 };
  if (internal > 0) return { totalMs: 500, runtimeMs: 500 };
  return { totalMs: 300, runtimeMs: 300 };
}

/** Signals the function's whole process group. */
function signal(sandbox: Sandbox, name: NodeJS.Signals): void {
  if (!sandbox.child?.pid) return;
  try {
    process.kill(-sandbox.child.pid, name);
  } catch {
    // already gone
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function lowerCased(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
}

function asHeader(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** An X-Ray trace header like Lambda's: `Root=1-{epoch hex}-{96-bit hex};Parent={64-bit hex};Sampled=0`. */
function newTraceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString("hex")};Parent=${randomBytes(8).toString("hex")};Sampled=0`;
}

/** The process's peak resident memory (VmHWM), as Lambda's "Max Memory Used". */
function peakMemoryMB(pid: number | undefined): number | undefined {
  try {
    const kB = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kB === undefined ? undefined : Math.ceil(Number(kB) / 1024);
  } catch {
    return undefined;
  }
}
