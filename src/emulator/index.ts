// A local Lambda: a real Runtime API server that starts the function, feeds it invocations, and reports what came back.
//
// This file queues invocations, hands them to the sandbox's runtime, and decides how each one ends. The rest is in
// units of their own: http.ts (the one place requests go through), invoke-api.ts (callers), runtime-api.ts (the
// runtime), extensions.ts (the Extensions and Telemetry APIs), sandbox.ts (processes), logs.ts (log lines).
import { randomBytes, randomUUID } from "node:crypto";
import type { Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Writable } from "node:stream";
import { apiServer, parseJson } from "./http.ts";
import { invokeApi } from "./invoke-api.ts";
import { endLines, initReportLine, jsonRecord, requestIdOf, startLine, type LogRecord } from "./logs.ts";
import { runtimeApi } from "./runtime-api.ts";
import { lambdaEnvironment, peakMemoryMB, Sandbox } from "./sandbox.ts";

export interface EmulatorOptions {
  /** The function's command: a bootstrap (`["dist/hello/x86_64/bootstrap"]`) or `["npx", "tsx", "main.ts"]`. */
  command: string[];
  cwd?: string;
  /** Added to the environment Lambda gives the function (and to this process's own environment). */
  env?: Record<string, string | undefined>;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The function's timeout; default `AWS_LAMBDA_FUNCTION_TIMEOUT` seconds (as aws-lambda-rie reads it), else Lambda's 3 s. */
  timeoutMs?: number;
  /** How long init (spawn → first /next) may take; Lambda's limit is 10 s. */
  initTimeoutMs?: number;
  /** Default `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, else 128. */
  memoryMB?: number;
  /** Default `AWS_LAMBDA_FUNCTION_NAME`, else "function". The ARN and the log group follow it. */
  functionName?: string;
  /** Default `AWS_REGION`, else us-east-1. */
  region?: string;
  /** How many invocations the function takes at once (Lambda Managed Instances); sets `AWS_LAMBDA_MAX_CONCURRENCY` when above 1. */
  concurrency?: number;
  /** Where the function's output and the START/END/REPORT lines go, as in CloudWatch Logs; also the emulator's own warnings. None by default. */
  output?: Writable;
  /**
   * A folder of Lambda extensions, as a layer puts them in /opt/extensions: every executable in it is started
   * before the function and must register; the first invoke waits for all of them.
   */
  extensionsDir?: string;
  /** The function's log format, as Lambda's advanced logging controls give it to a custom runtime: `AWS_LAMBDA_LOG_FORMAT`. */
  logFormat?: "Text" | "JSON";
  /** `AWS_LAMBDA_LOG_LEVEL`: the runtime drops what is below it. */
  logLevel?: "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL";
  /**
   * Give the function a telemetry log fd, as Lambda does: an extra pipe whose number is in `_LAMBDA_TELEMETRY_LOG_FD`.
   * Each frame the runtime writes to it is one log record, however many lines it has.
   */
  telemetryLogFd?: boolean;
}

export interface InvokeOptions {
  /** Sent as `Lambda-Runtime-Client-Context` (UTF-8): an object is JSON-encoded, a string is sent as it is. */
  clientContext?: unknown;
  /** Sent as `Lambda-Runtime-Cognito-Identity` (UTF-8): an object is JSON-encoded, a string is sent as it is. */
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

/** One invocation on its way through the emulator: queued, running, then finished. */
export interface Invocation {
  requestId: string;
  invocationId: string;
  payload: Buffer;
  /** The `/next` headers particular to this invocation (trace id, client context, identity, tenant). */
  headers: Record<string, string>;
  options: InvokeOptions;
  logs: string[];
  initDurationMs?: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  /** It timed out: the error it ends with once its sandbox is gone, and how long it ran. */
  timedOutWith?: ErrorJson;
  durationMs?: number;
  /** Set once the result is decided: a late answer and a timeout must not both finish it. */
  finished?: boolean;
  resolve(result: InvokeResult): void;
}

/** The result of an invocation that never reached the function. */
export function refused(requestId: string, errorType: string, errorMessage: string): InvokeResult {
  const error = { errorType, errorMessage };
  return { requestId, ok: false, payload: Buffer.from(JSON.stringify(error)), error, logs: "", durationMs: 0 };
}

/** The invocation id Lambda sends with each event (2026) and expects back on the answer. */
const INVOCATION_ID = "lambda-runtime-invocation-id";
const LOG_FORMATS = ["Text", "JSON"];
const LOG_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/** What Node refuses in a header value, after UTF-8 bytes are put in it one per character. */
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

type Settings = Required<Pick<EmulatorOptions, "timeoutMs" | "initTimeoutMs" | "memoryMB" | "functionName" | "region" | "concurrency">> & EmulatorOptions;

export class Emulator {
  readonly #options: Settings;
  readonly #server: Server;
  readonly #queue: Invocation[] = [];
  /** Invocations the runtime may answer now, by request id. */
  readonly #running = new Map<string, Invocation>();
  readonly #timedOut = new Set<string>();
  /** GET /next requests waiting for an event. */
  readonly #waiting: ServerResponse[] = [];
  #sandbox?: Sandbox;
  /** The extensions of a reset sandbox shutting down: the next sandbox starts after. */
  #teardown?: Promise<void>;
  /** The latest sandbox: its extensions still talk to the API (SHUTDOWN, telemetry) after its runtime has exited. */
  #latest?: Sandbox;
  #closed = false;

  private constructor(options: EmulatorOptions) {
    this.#options = settings(options);
    const log = (text: string) => this.#line(text);
    this.#server = apiServer(
      [
        runtimeApi({
          next: (res) => this.#next(res),
          running: (requestId) => this.#running.get(requestId),
          timedOut: (requestId) => this.#timedOut.has(requestId),
          finish: (invocation, ok, payload, extra) => this.#finish(invocation, ok, payload, extra),
          initError: (error, errorType) => this.#initError(error, errorType),
        }),
        (req, res) => this.#latest?.extensions.route(req, res), // /2020-01-01/extension/*, /2022-07-01/telemetry, /2020-08-15/logs
        invokeApi((event, options) => this.invoke(event, options)),
      ],
      log,
    );
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

  /** The settings in effect: the options given, with defaults from the environment (as aws-lambda-rie reads it) or Lambda's. */
  get options(): Readonly<Settings> {
    return this.#options;
  }

  /** Invokes the function once. A Buffer is sent as the raw event bytes; anything else as JSON. Never rejects: failures are results. */
  invoke(event: unknown, options: InvokeOptions = {}): Promise<InvokeResult> {
    return new Promise((resolve) => {
      const requestId = randomUUID();
      let payload: Buffer;
      const headers: Record<string, string> = {};
      try {
        payload = Buffer.isBuffer(event) ? event : Buffer.from(JSON.stringify(event) ?? "null");
        const traceId = options.traceId === undefined ? newTraceId() : options.traceId;
        if (traceId !== null) headers["lambda-runtime-trace-id"] = headerValue("traceId", traceId);
        if (options.clientContext !== undefined) headers["lambda-runtime-client-context"] = headerValue("clientContext", options.clientContext);
        if (options.identity !== undefined) headers["lambda-runtime-cognito-identity"] = headerValue("identity", options.identity);
        if (options.tenantId !== undefined) headers["lambda-runtime-aws-tenant-id"] = headerValue("tenantId", options.tenantId);
      } catch (error) {
        return resolve(refused(requestId, "InvalidRequestContentException", (error as Error).message));
      }
      const invocation: Invocation = { requestId, invocationId: randomUUID(), payload, headers, options, logs: [], resolve };
      if (this.#closed) return resolve(refused(requestId, "Emulator.Closed", "the emulator is closed"));
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
    for (const invocation of this.#queue.splice(0)) invocation.resolve(refused(invocation.requestId, "Emulator.Closed", "the emulator closed before this invocation ran"));
    const sandbox = this.#sandbox;
    if (sandbox) {
      sandbox.shuttingDown = true;
      const budget = shutdownBudget(sandbox);
      const deadline = Date.now() + budget.totalMs;
      const { external, internal } = sandbox.extensions.count;
      // Lambda sends SIGTERM only when an extension is registered: that is the runtime's only way to opt in.
      sandbox.signal(external + internal > 0 ? "SIGTERM" : "SIGKILL");
      const killer = setTimeout(() => sandbox.signal("SIGKILL"), budget.runtimeMs);
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

  /** Ends the sandbox (its extensions get SHUTDOWN): the next invoke starts a fresh one from the code as it is then. `micro-lambda watch` calls it on each change. */
  async restart(): Promise<void> {
    const sandbox = this.#sandbox;
    if (!sandbox) return;
    sandbox.busy = true; // no more events for it
    sandbox.stop({ errorType: "Emulator.Restarted", errorMessage: "the function's code changed: its sandbox was restarted" }, "failure", sandbox.initialized ? "invoke" : "init");
    await sandbox.exited;
    await this.#teardown;
  }

  // ---- the sandbox's lifecycle --------------------------------------------------------------------------

  /** Starts the function when work is waiting and nothing runs; hands queued events to waiting /next requests. */
  #pump(): void {
    if (this.#closed) return;
    if (!this.#sandbox && !this.#teardown && this.#queue.length > 0) this.#spawn();
    const sandbox = this.#sandbox;
    if (!sandbox?.initialized || sandbox.busy) return;
    while (this.#waiting.length > 0 && this.#queue.length > 0 && this.#running.size < this.#options.concurrency) {
      this.#dispatch(sandbox, this.#waiting.shift()!, this.#queue.shift()!);
    }
  }

  /** A new sandbox: its extensions first (Lambda starts the runtime once they have all registered), then the runtime. */
  #spawn(): void {
    const o = this.#options;
    const env = lambdaEnvironment({ ...o, address: this.address });
    const sandbox = new Sandbox(
      { command: o.command, cwd: o.cwd, env, functionName: o.functionName, concurrency: o.concurrency, extensionsDir: o.extensionsDir, telemetryLogFd: o.telemetryLogFd },
      {
        record: (sandbox, record, source) => this.#record(sandbox, record, source),
        extensionFailed: (sandbox, error) => this.#extensionFailed(sandbox, error),
        exited: (sandbox, status) => this.#exited(sandbox, status),
        warn: (text) => this.#line(text),
      },
    );
    sandbox.initiator = this.#queue[0];
    this.#sandbox = sandbox;
    this.#latest = sandbox;
    sandbox.initTimer = setTimeout(() => {
      this.#line(initReportLine(o.initTimeoutMs, "timeout"));
      const late = sandbox.extensions.pending();
      sandbox.stop({ errorType: "Sandbox.Timedout", errorMessage: `Init timed out after ${(o.initTimeoutMs / 1000).toFixed(2)} seconds${late ? ` (${late})` : ""}` }, "timeout", "init");
    }, o.initTimeoutMs);
    if (this.#waiting.length > 0) this.#runtimeAsked(sandbox);
  }

  /** An extension failed (crashed, or reported an init or exit error): during init the init fails; after it, the sandbox is reset. */
  #extensionFailed(sandbox: Sandbox, error: ErrorJson): void {
    if (this.#sandbox !== sandbox || sandbox.shuttingDown) return;
    if (!sandbox.initialized) {
      this.#line(initReportLine(performance.now() - sandbox.spawnedAt, "error", error.errorType));
      return sandbox.stop(error, "failure", "init");
    }
    this.#line(`${error.errorType}: ${error.errorMessage}: resetting the sandbox`);
    sandbox.stop(error, "failure", "invoke");
  }

  /** The runtime is gone (its output read): the sandbox is over, and what it was running fails. */
  #exited(sandbox: Sandbox, status: string): void {
    clearTimeout(sandbox.initTimer);
    if (this.#sandbox === sandbox) this.#sandbox = undefined;
    if (!sandbox.shuttingDown) {
      // Lambda resets the whole sandbox: extensions get SHUTDOWN (killed, if init never finished), and the next one waits for them.
      const ended = !sandbox.initialized ? sandbox.extensions.kill() : sandbox.extensions.shutdown(sandbox.resetReason ?? "failure", Date.now() + 2000);
      const teardown: Promise<void> = ended.then(() => {
        if (this.#teardown === teardown) this.#teardown = undefined;
        this.#pump();
      });
      this.#teardown = teardown;
    }
    for (const res of this.#waiting.splice(0)) res.destroy();
    if (!sandbox.initialized) {
      // Died during init: the invocation that started it gets the init error, or the exit status.
      const index = sandbox.initiator ? this.#queue.indexOf(sandbox.initiator) : -1;
      if (index >= 0) {
        const [invocation] = this.#queue.splice(index, 1);
        const error = sandbox.initError ?? { errorType: "Runtime.ExitError", errorMessage: `RequestId: ${invocation!.requestId} Error: Runtime exited with error: ${status}` };
        this.#finish(invocation!, false, Buffer.from(JSON.stringify(error)), { errorTypeHeader: error.errorType }, sandbox);
      }
    }
    for (const invocation of [...sandbox.invocations]) {
      const error = invocation.timedOutWith ?? sandbox.fatalError ?? { errorType: "Runtime.ExitError", errorMessage: `RequestId: ${invocation.requestId} Error: Runtime exited with error: ${status}` };
      this.#finish(invocation, false, Buffer.from(JSON.stringify(error)), {}, sandbox);
    }
    this.#pump();
  }

  // ---- the Runtime API's side ---------------------------------------------------------------------------

  #next(res: ServerResponse): void {
    res.on("close", () => {
      const index = this.#waiting.indexOf(res);
      if (index >= 0) this.#waiting.splice(index, 1);
    });
    this.#waiting.push(res);
    if (this.#sandbox) this.#runtimeAsked(this.#sandbox);
    this.#pump();
  }

  /**
   * The runtime's first /next ends init, once every registered extension has asked for its first event too. (A /next
   * that came between two sandboxes, from a test playing the runtime, counts for the next one.)
   */
  #runtimeAsked(sandbox: Sandbox): void {
    if (!sandbox.initialized && !sandbox.runtimeReady) {
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
  }

  #initError(error: ErrorJson, errorType: string): boolean {
    const sandbox = this.#sandbox;
    if (!sandbox || sandbox.initialized) return false;
    sandbox.initError = error;
    this.#line(initReportLine(performance.now() - sandbox.spawnedAt, "error", errorType));
    return true;
  }

  #dispatch(sandbox: Sandbox, res: ServerResponse, invocation: Invocation): void {
    const o = this.#options;
    const deadline = Date.now() + o.timeoutMs;
    invocation.startedAt = performance.now();
    this.#running.set(invocation.requestId, invocation);
    sandbox.invocations.add(invocation);
    this.#line(startLine(invocation.requestId));
    const invokedFunctionArn = `arn:aws:lambda:${o.region}:012345678912:function:${o.functionName}`;
    // Lambda releases the extensions' INVOKE before the runtime's event.
    sandbox.extensions.invoke({ requestId: invocation.requestId, deadlineMs: deadline, invokedFunctionArn, traceId: invocation.headers["lambda-runtime-trace-id"] });
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
      // Lambda stops the whole sandbox on a timeout; the invocation ends once the sandbox has (what the function
      // printed up to the end is in its logs), and the next invoke starts a fresh one.
      this.#running.delete(invocation.requestId);
      this.#timedOut.add(invocation.requestId);
      invocation.timedOutWith = { errorType: "Sandbox.Timedout", errorMessage: `RequestId: ${invocation.requestId} Error: Task timed out after ${(o.timeoutMs / 1000).toFixed(2)} seconds` };
      invocation.durationMs = performance.now() - invocation.startedAt!;
      // Others running with it (concurrency above 1) end with the runtime's exit, as before a reset.
      sandbox.resetReason ??= "timeout";
      sandbox.signal("SIGKILL");
    }, o.timeoutMs);
  }

  #finish(invocation: Invocation, ok: boolean, payload: Buffer, extra: Partial<InvokeResult> = {}, sandbox = this.#sandbox): void {
    if (invocation.finished) return;
    invocation.finished = true;
    clearTimeout(invocation.timer);
    this.#running.delete(invocation.requestId);
    sandbox?.invocations.delete(invocation);
    const durationMs = invocation.durationMs ?? (invocation.startedAt === undefined ? 0 : performance.now() - invocation.startedAt);
    const maxMemoryUsedMB = sandbox?.child && peakMemoryMB(sandbox.child.pid);
    const result: InvokeResult = { requestId: invocation.requestId, ok, payload, logs: invocation.logs.join("\n"), durationMs, initDurationMs: invocation.initDurationMs, maxMemoryUsedMB, ...extra };
    if (ok) result.result = extra.streamed ? undefined : parseJson(payload);
    else {
      const parsed = parseJson(payload) as ErrorJson | undefined;
      result.error ??= parsed ?? { errorType: extra.errorTypeHeader ?? "Function.Unknown", errorMessage: payload.toString() };
      // The caller gets JSON, as from Lambda, even when the runtime's error body was not.
      if (!parsed && !extra.streamed) result.payload = Buffer.from(JSON.stringify(result.error));
    }
    if (invocation.startedAt !== undefined && sandbox) {
      const startedAt = invocation.startedAt;
      const status = ok ? "success" : result.error?.errorType === "Sandbox.Timedout" ? "timeout" : "error";
      sandbox.extensions.runtimeDone({ requestId: invocation.requestId, status, ...(ok ? {} : { errorType: result.error?.errorType }), durationMs, producedBytes: payload.length });
      if (sandbox.child && !sandbox.ended && sandbox.extensions.waitForInvoke && !sandbox.fatalError && status !== "timeout") {
        // The caller has its answer now, as on Lambda; the invocation is over, and the next one may start, only
        // when every INVOKE subscriber has asked for its next event: extension work is on the invocation's clock.
        sandbox.busy = true;
        invocation.resolve(result);
        const late = setTimeout(() => {
          this.#line(`RequestId: ${invocation.requestId} Error: extensions did not ask for their next event before the timeout: resetting the sandbox`);
          sandbox.stop({ errorType: "Sandbox.Timedout", errorMessage: `RequestId: ${invocation.requestId} Error: Task timed out` }, "timeout", "invoke");
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

  // ---- log lines ----------------------------------------------------------------------------------------

  /**
   * A log record of the sandbox: to the output (CloudWatch Logs), to the invocation it belongs to (the one whose
   * request id it names; else every running one, or during init the one that started the sandbox), and for the
   * function's own, to Telemetry API `function` subscribers (a JSON-format record as the object it is, as Lambda sends it).
   */
  #record(sandbox: Sandbox, record: LogRecord, source: "function" | "extension"): void {
    const parsed = source === "function" && (record.json || this.#options.logFormat === "JSON") ? jsonRecord(record.text) : undefined;
    const id = requestIdOf(record.text, parsed);
    const named = id === undefined ? undefined : [...sandbox.invocations].find((invocation) => invocation.requestId === id);
    const targets = named ? [named] : sandbox.invocations.size > 0 ? sandbox.invocations : !sandbox.initialized && sandbox.initiator ? [sandbox.initiator] : [];
    for (const invocation of targets) invocation.logs.push(record.text);
    this.#options.output?.write(record.text + "\n");
    if (source === "function") sandbox.extensions.functionLine(parsed ?? record.text, record.timeMs);
  }

  /** END and REPORT in the log, and `platform.report` for telemetry: the invocation is over. */
  #report(sandbox: Sandbox, invocation: Invocation, status: string, result: InvokeResult, durationMs: number): void {
    const { maxMemoryUsedMB } = result;
    for (const line of endLines({ requestId: invocation.requestId, durationMs, memoryMB: this.#options.memoryMB, maxMemoryUsedMB, initDurationMs: invocation.initDurationMs })) this.#line(line);
    sandbox.extensions.report({
      requestId: invocation.requestId,
      status,
      ...(result.ok ? {} : { errorType: result.error?.errorType }),
      durationMs,
      memorySizeMB: this.#options.memoryMB,
      maxMemoryUsedMB,
      initDurationMs: invocation.initDurationMs,
    });
  }

  #line(text: string): void {
    this.#options.output?.write(text + "\n");
  }
}

/**
 * The options with their defaults: what is not given comes from the variables aws-lambda-rie users set
 * (`AWS_LAMBDA_FUNCTION_TIMEOUT`, `_NAME`, `_MEMORY_SIZE`, `AWS_REGION`, in `env` or this process's environment),
 * else Lambda's defaults.
 */
function settings(options: EmulatorOptions): Settings {
  const env = { ...process.env, ...options.env };
  const number = (name: string) => {
    const value = Number(env[name]);
    return env[name] && Number.isFinite(value) && value > 0 ? value : undefined;
  };
  if (options.logFormat !== undefined && !LOG_FORMATS.includes(options.logFormat)) throw new TypeError(`logFormat must be Text or JSON, got ${JSON.stringify(options.logFormat)}`);
  if (options.logLevel !== undefined && !LOG_LEVELS.includes(options.logLevel)) throw new TypeError(`logLevel must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(options.logLevel)}`);
  const seconds = number("AWS_LAMBDA_FUNCTION_TIMEOUT");
  return {
    ...options,
    timeoutMs: options.timeoutMs ?? (seconds === undefined ? 3000 : seconds * 1000),
    initTimeoutMs: options.initTimeoutMs ?? 10_000,
    memoryMB: options.memoryMB ?? number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") ?? 128,
    functionName: options.functionName ?? (env.AWS_LAMBDA_FUNCTION_NAME || "function"),
    region: options.region ?? (env.AWS_REGION || "us-east-1"),
    concurrency: options.concurrency ?? 1,
  };
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

/**
 * A `/next` header value: an object JSON-encoded, a string as it is, sent as UTF-8 bytes (Lambda sends them so, and
 * a runtime must decode them so). Throws for what no header can carry (CR, LF, other control characters).
 */
function headerValue(name: string, value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (typeof text !== "string") throw new TypeError(`${name} cannot be sent: it has no JSON form`);
  const bytes = Buffer.from(text, "utf8").toString("latin1");
  if (INVALID_HEADER_CHAR.test(bytes)) throw new TypeError(`${name} cannot be sent as a header: it holds a control character (CR, LF, NUL...)`);
  return bytes;
}

/** An X-Ray trace header like Lambda's: `Root=1-{epoch hex}-{96-bit hex};Parent={64-bit hex};Sampled=0`. */
function newTraceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString("hex")};Parent=${randomBytes(8).toString("hex")};Sampled=0`;
}
