// The emulator's side of the Extensions and Telemetry APIs: it starts a folder's extensions before the function, as Lambda starts /opt/extensions, and tells them what Lambda would.
//
// Lambda's order, followed here: every external extension is started and must register before the runtime
// starts; init is over when the runtime and every registered extension have asked for their next event; each
// invocation sends INVOKE to its subscribers and is over only when they have all asked again; SHUTDOWN goes
// out with a deadline, and what is still running then is killed. Like the rest of the emulator, API paths and
// header names are written here as literals: this is the independent other side of the protocol.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { Agent, request, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { parseJson, readBody } from "./http.ts";
import { eachLine } from "./logs.ts";
import { Started } from "./processes.ts";

export interface ErrorJson {
  errorType: string;
  errorMessage: string;
}

export interface ExtensionsOptions {
  /** The external extensions: every executable file in this folder, started in name order. */
  dir?: string;
  /** The environment the function gets; extensions get the same. */
  env: Record<string, string | undefined>;
  cwd?: string;
  functionName: string;
  functionVersion: string;
  handler: string;
  /** INVOKE events are sent only while invocations run one at a time. */
  concurrency: number;
  /** A line of the function's log output (CloudWatch Logs): extensions' own lines and the EXTENSION status lines. */
  line(text: string): void;
  /** The first failure that ends the sandbox (a crash, an init or exit error): called once. */
  onFatal(error: ErrorJson): void;
}

/** Lambda's limit on extensions per function. */
const MAX_EXTENSIONS = 10;
const EVENT_TYPES = ["INVOKE", "SHUTDOWN"];
const TELEMETRY_TYPES = ["platform", "function", "extension"];
/** What the emulator keeps of an Extensions or Telemetry API request body: far more than any valid one needs. */
const MAX_REQUEST_BYTES = 1024 * 1024;
const BUFFERING = { maxItems: [1000, 10_000, 1000], maxBytes: [262_144, 1_048_576, 262_144], timeoutMs: [25, 30_000, 1000] } as const;

interface Member {
  name: string;
  /** Started from the folder; an internal extension is one the runtime process registers for itself. */
  external: boolean;
  id?: string;
  events: string[];
  /** Its process, while it runs. */
  process?: Started;
  exited: Promise<void>;
  /** Asked for its next event and has not been given one. */
  ready: boolean;
  /** Its pending GET /event/next. */
  waiting?: ServerResponse;
  /** An event for its next GET /event/next, when it was busy as the event came. */
  queued?: object;
  /** What it reported to /init/error or /exit/error. */
  reported?: ErrorJson & { phase: "init" | "exit" };
}

interface TelemetryEvent {
  time: string;
  type: string;
  record: unknown;
}

interface Subscription {
  member: Member;
  api: "telemetry" | "logs";
  types: Set<string>;
  maxItems: number;
  maxBytes: number;
  timeoutMs: number;
  port: number;
  path: string;
  queue: { event: TelemetryEvent; size: number }[];
  bytes: number;
  timer?: NodeJS.Timeout;
  /** The delivery in flight: batches go one at a time, in order. */
  sending: Promise<void>;
  agent: Agent;
}

/** One sandbox's extensions and telemetry subscriptions. */
export class Extensions {
  readonly #options: ExtensionsOptions;
  readonly #members: Member[] = [];
  readonly #subscriptions: Subscription[] = [];
  /** Telemetry from the start of init, replayed to each subscription made during init. */
  #backlog: TelemetryEvent[] | undefined = [];
  #registrationOpen = true;
  #initDone = false;
  #shuttingDown = false;
  #failed = false;
  /** Resolved when the condition it waits for holds: checked after each GET /event/next. */
  #waiters: { ready: () => boolean; resolve: () => void }[] = [];

  constructor(options: ExtensionsOptions) {
    this.#options = options;
    this.#emit("platform.initStart", { initializationType: "on-demand", phase: "init", functionName: options.functionName, functionVersion: options.functionVersion });
    this.#launch();
  }

  /** Extensions registered (external and internal): Lambda's shutdown budget depends on it. */
  get count(): { external: number; internal: number } {
    const registered = this.#members.filter((member) => member.id !== undefined);
    return { external: registered.filter((member) => member.external).length, internal: registered.filter((member) => !member.external).length };
  }

  /** Whether an invocation must wait for extensions after the function answers. */
  get waitForInvoke(): boolean {
    return this.#members.some((member) => member.id !== undefined && member.events.includes("INVOKE"));
  }

  /** Resolves when every external extension has registered (then Lambda starts the runtime). Never settles after a failure. */
  registered(): Promise<void> {
    return this.#until(() => this.#members.every((member) => !member.external || member.id !== undefined));
  }

  /** The runtime asked for its first event: no more registrations. True when every registered extension has asked for its first event already. */
  closeRegistration(): boolean {
    this.#registrationOpen = false;
    return this.#allReady();
  }

  /** Resolves when every registered extension has asked for its first event: with the runtime's, that ends init. Never settles after a failure. */
  runtimeReady(): Promise<void> {
    return this.#until(() => this.#allReady());
  }

  #allReady(): boolean {
    return this.#members.every((member) => member.id === undefined || member.ready);
  }

  /** Init is over (or failed): the EXTENSION lines, the init telemetry, and no more subscriptions. */
  initDone(durationMs: number, error?: ErrorJson): void {
    this.#initDone = true;
    for (const member of this.#members) {
      const state = member.reported ? (member.reported.phase === "init" ? "InitError" : "ExitError") : member.ready ? "Ready" : member.id ? "Registered" : "Launched";
      const errorType = member.reported ? `\tError Type: ${member.reported.errorType}` : "";
      this.#options.line(`EXTENSION\tName: ${member.name}\tState: ${state}\tEvents: [${member.events.join(", ")}]${errorType}`);
      this.#emit("platform.extension", { name: member.name, state, events: member.events, ...(member.reported ? { errorType: member.reported.errorType } : {}) });
    }
    const status = error ? "error" : "success";
    this.#emitSoon("platform.initRuntimeDone", { initializationType: "on-demand", phase: "init", status, ...(error ? { errorType: error.errorType } : {}) });
    this.#emitSoon("platform.initReport", { initializationType: "on-demand", phase: "init", status, metrics: { durationMs: round(durationMs) } });
    this.#backlog = undefined;
  }

  /** An invocation starts: INVOKE to every subscriber (before the runtime gets its event, as Lambda does), and `platform.start`. */
  invoke(invocation: { requestId: string; deadlineMs: number; invokedFunctionArn: string; traceId?: string }): void {
    const tracing = { type: "X-Amzn-Trace-Id", value: invocation.traceId ?? "" };
    this.#emitSoon("platform.start", { requestId: invocation.requestId, version: this.#options.functionVersion, ...(invocation.traceId ? { tracing } : {}) });
    const event = { eventType: "INVOKE", deadlineMs: invocation.deadlineMs, requestId: invocation.requestId, invokedFunctionArn: invocation.invokedFunctionArn, tracing };
    for (const member of this.#members) if (member.id !== undefined && member.events.includes("INVOKE")) this.#send(member, event);
  }

  /** Resolves when every INVOKE subscriber has asked for its next event: the invocation is over. Never settles after a failure. */
  afterInvoke(): Promise<void> {
    return this.#until(() => this.#members.every((member) => member.id === undefined || !member.events.includes("INVOKE") || member.ready));
  }

  /** The function's answer is in: `platform.runtimeDone`. */
  runtimeDone(record: { requestId: string; status: string; errorType?: string; durationMs: number; producedBytes?: number }): void {
    const { durationMs, producedBytes, ...rest } = record;
    this.#emitSoon("platform.runtimeDone", { ...rest, metrics: { durationMs: round(durationMs), ...(producedBytes === undefined ? {} : { producedBytes }) } });
  }

  /** The invocation is over: `platform.report`. */
  report(record: { requestId: string; status: string; errorType?: string; durationMs: number; memorySizeMB: number; maxMemoryUsedMB?: number; initDurationMs?: number }): void {
    const { requestId, status, errorType, durationMs, memorySizeMB, maxMemoryUsedMB, initDurationMs } = record;
    const metrics = { durationMs: round(durationMs), billedDurationMs: Math.ceil(durationMs), memorySizeMB, maxMemoryUsedMB: maxMemoryUsedMB ?? 0, ...(initDurationMs === undefined ? {} : { initDurationMs: round(initDurationMs) }) };
    this.#emitSoon("platform.report", { requestId, status, ...(errorType ? { errorType } : {}), metrics });
  }

  /** A log record of the function, for `function` subscribers: a line, or the object a JSON-format line holds; `timeMs` when the runtime stamped it. */
  functionLine(record: string | object, timeMs?: number): void {
    this.#emitSoon("function", record, timeMs);
  }

  /** Who has not got as far as init needs, for the init-timeout message. */
  pending(): string {
    const late = this.#members.filter((member) => member.id === undefined || !member.ready).map((member) => `${member.name} (${member.id === undefined ? "never registered" : "never asked for its first event"})`);
    return late.length > 0 ? `extensions not ready: ${late.join(", ")}` : "";
  }

  /**
   * Lambda's shutdown of the extensions, after the runtime's: what is buffered for telemetry is delivered, then
   * SHUTDOWN goes to every external extension registered for it (the others are killed), and whatever has not
   * exited by `deadline` (epoch ms) is killed.
   */
  async shutdown(reason: "spindown" | "timeout" | "failure", deadline: number): Promise<void> {
    if (this.#shuttingDown) return Promise.all(this.#members.map((member) => member.exited)).then(() => {});
    this.#shuttingDown = true;
    await this.#drain(deadline);
    const event = { eventType: "SHUTDOWN", shutdownReason: reason, deadlineMs: deadline };
    for (const member of this.#members.filter((member) => member.process)) {
      if (member.id !== undefined && member.events.includes("SHUTDOWN")) this.#send(member, event);
      else kill(member);
    }
    const killer = setTimeout(() => this.#members.forEach(kill), Math.max(0, deadline - Date.now()));
    await Promise.all(this.#members.map((member) => member.exited));
    clearTimeout(killer);
    this.#close();
  }

  /** Ends everything at once (a sandbox that failed init). */
  async kill(): Promise<void> {
    this.#shuttingDown = true;
    this.#members.forEach(kill);
    await Promise.all(this.#members.map((member) => member.exited));
    this.#close();
  }

  // ---- the extensions' processes --------------------------------------------------------------------

  #launch(): void {
    const dir = this.#options.dir;
    if (!dir) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (error) {
      return this.#fatal({ errorType: "Extension.LaunchError", errorMessage: `cannot read the extensions folder ${dir}: ${(error as Error).message}` });
    }
    const files = names.filter((name) => statSync(join(dir, name), { throwIfNoEntry: false })?.isFile());
    if (files.length > MAX_EXTENSIONS) {
      return this.#fatal({ errorType: "Extension.LaunchError", errorMessage: `${files.length} extensions in ${dir}: Lambda allows at most ${MAX_EXTENSIONS}` });
    }
    for (const name of files) {
      const path = join(dir, name);
      if ((statSync(path).mode & 0o111) === 0) {
        return this.#fatal({ errorType: "Extension.LaunchError", errorMessage: `${path} is not executable: Lambda runs every file in /opt/extensions (chmod +x it; ./build.sh --extension sets the bit)` });
      }
      this.#start(name, path);
    }
  }

  #start(name: string, path: string): void {
    const child = spawn(path, [], { cwd: this.#options.cwd, env: this.#options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const started = new Started(child, [child.stdout!, child.stderr!]);
    const member: Member = { name, external: true, events: [], process: started, ready: false, exited: started.exited.then(() => {}) };
    this.#members.push(member);
    let launchError: Error | undefined;
    child.on("error", (error) => (launchError = error));
    for (const pipe of [child.stdout!, child.stderr!]) eachLine(pipe, (line) => this.#extensionLine(line));
    // If the emulator's process exits first, its extensions must not outlive it.
    const orphaned = () => kill(member);
    process.on("exit", orphaned);
    void started.exited.then(({ code, signal }) => {
      process.off("exit", orphaned);
      member.process = undefined;
      member.ready = false;
      member.waiting?.destroy();
      if (this.#shuttingDown) return;
      const status = launchError ? `could not be started: ${launchError.message}` : signal ? `was killed by ${signal}` : `exited with status ${code}`;
      const reported = member.reported;
      if (launchError) this.#fatal({ errorType: "Extension.LaunchError", errorMessage: `extension ${name} ${status}` });
      else if (reported?.phase === "init") this.#fatal({ errorType: "Extension.InitError", errorMessage: `extension ${name} failed to init: ${reported.errorType}: ${reported.errorMessage}` });
      else if (reported) this.#fatal({ errorType: "Extension.ExitError", errorMessage: `extension ${name} failed: ${reported.errorType}: ${reported.errorMessage}` });
      else this.#fatal({ errorType: "Extension.Crash", errorMessage: `extension ${name} ${status}${member.id === undefined ? " before registering" : this.#initDone ? "" : " during init"}` });
    });
  }

  #extensionLine(line: string): void {
    this.#options.line(line);
    this.#emit("extension", line);
  }

  #fatal(error: ErrorJson): void {
    if (this.#failed || this.#shuttingDown) return;
    this.#failed = true;
    this.#waiters = [];
    // Later, not now: a failure found while the constructor runs must reach a caller that has the object.
    queueMicrotask(() => this.#options.onFatal(error));
  }

  #until(ready: () => boolean): Promise<void> {
    if (this.#failed) return new Promise(() => {});
    if (ready()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ ready, resolve }));
  }

  #check(): void {
    const waiters = this.#waiters;
    this.#waiters = waiters.filter((waiter) => !waiter.ready());
    for (const waiter of waiters) if (!this.#waiters.includes(waiter)) waiter.resolve();
  }

  #send(member: Member, event: object): void {
    const res = member.waiting;
    member.waiting = undefined;
    member.ready = false;
    if (!res || res.destroyed) {
      member.queued = event;
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "lambda-extension-event-identifier": randomUUID() }).end(JSON.stringify(event));
  }

  #close(): void {
    for (const member of this.#members) member.waiting?.destroy();
    for (const subscription of this.#subscriptions) {
      clearTimeout(subscription.timer);
      subscription.agent.destroy();
    }
  }

  // ---- HTTP: the Extensions API and the Telemetry API ---------------------------------------------------

  /** Answers the request when it is for the Extensions, Telemetry or Logs API (the promise settles when it is answered); undefined when it is not. */
  route(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
    const url = req.url ?? "/";
    if (req.method === "POST" && url === "/2020-01-01/extension/register") return this.#register(req, res);
    if (req.method === "GET" && url === "/2020-01-01/extension/event/next") return this.#next(req, res);
    if (req.method === "POST" && url === "/2020-01-01/extension/init/error") return this.#reportError(req, res, "init");
    if (req.method === "POST" && url === "/2020-01-01/extension/exit/error") return this.#reportError(req, res, "exit");
    if (req.method === "PUT" && (url === "/2022-07-01/telemetry" || url === "/2022-07-01/telemetry/")) return this.#subscribe(req, res, "telemetry");
    if (req.method === "PUT" && (url === "/2020-08-15/logs" || url === "/2020-08-15/logs/")) return this.#subscribe(req, res, "logs");
    return undefined;
  }

  // POST /2020-01-01/extension/register
  async #register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req, MAX_REQUEST_BYTES)).bytes;
    const name = header(req, "lambda-extension-name");
    if (!name) return forbidden(res, "Extension.InvalidExtensionName", "Empty extension name: send the Lambda-Extension-Name header");
    const events = (parseJson(body) as { events?: unknown } | undefined)?.events;
    if (!Array.isArray(events) || events.some((event) => typeof event !== "string")) {
      return forbidden(res, "InvalidRequestFormat", `the body must be {"events": [...]}, got ${body.toString().slice(0, 200)}`);
    }
    const unknown = events.find((event) => !EVENT_TYPES.includes(event));
    if (unknown) return forbidden(res, "Extension.InvalidEventType", `${unknown}: not an event Lambda sends (INVOKE, SHUTDOWN)`);
    if (events.includes("INVOKE") && this.#options.concurrency > 1) {
      return forbidden(res, "Extension.InvalidEventType", "INVOKE: the emulator sends INVOKE events only when invocations run one at a time (concurrency 1)");
    }
    let member = this.#members.find((member) => member.external && member.name === name);
    if (member?.id !== undefined) return forbidden(res, "Extension.InvalidExtensionState", `an extension named ${name} is already registered`);
    if (!member) {
      // Not a file of the folder: an internal extension, which the runtime process registers for itself.
      const externals = this.#members.filter((member) => member.external).map((member) => member.name);
      if (!this.#registrationOpen) return forbidden(res, "Extension.RegistrationClosed", "Extension registration closed already: register during init, before the first event/next");
      if (events.includes("SHUTDOWN")) {
        return forbidden(
          res,
          "Extension.InvalidEventType",
          `SHUTDOWN: only an external extension can register for SHUTDOWN, and ${JSON.stringify(name)} is not the file name of one ` +
            `(the extensions folder has ${externals.length > 0 ? externals.join(", ") : "none"}): an external extension registers with its executable's file name`,
        );
      }
      if (this.#members.filter((member) => member.id !== undefined).length >= MAX_EXTENSIONS) return forbidden(res, "Extension.TooManyExtensions", `Extension limit (${MAX_EXTENSIONS}) reached`);
      member = { name, external: false, events: [], ready: false, exited: Promise.resolve() };
      this.#members.push(member);
    }
    member.id = randomUUID();
    member.events = events;
    const info: Record<string, string> = { functionName: this.#options.functionName, functionVersion: this.#options.functionVersion, handler: this.#options.handler };
    if (header(req, "lambda-extension-accept-feature")?.includes("accountId")) info.accountId = "012345678912";
    res.writeHead(200, { "content-type": "application/json", "lambda-extension-identifier": member.id }).end(JSON.stringify(info));
    this.#check();
  }

  // GET /2020-01-01/extension/event/next
  async #next(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await readBody(req, MAX_REQUEST_BYTES);
    const member = this.#identify(req, res);
    if (!member) return;
    if (member.queued) {
      const event = member.queued;
      member.queued = undefined;
      member.waiting = res;
      return this.#send(member, event);
    }
    member.waiting = res;
    member.ready = true;
    res.on("close", () => {
      if (member.waiting === res) member.waiting = undefined;
    });
    this.#check();
  }

  // POST /2020-01-01/extension/init/error and /2020-01-01/extension/exit/error: recorded; the extension exits next, and its exit fails the sandbox.
  async #reportError(req: IncomingMessage, res: ServerResponse, phase: "init" | "exit"): Promise<void> {
    const body = (await readBody(req, MAX_REQUEST_BYTES)).bytes;
    const member = this.#identify(req, res);
    if (!member) return;
    const errorType = header(req, "lambda-extension-function-error-type");
    if (!errorType) return forbidden(res, "Extension.MissingHeader", "Lambda-Extension-Function-Error-Type not found");
    if (phase === "init" && this.#initDone) return forbidden(res, "Extension.InvalidExtensionState", `${member.name}: init is over: report failures to /extension/exit/error`);
    const parsed = parseJson(body) as { errorMessage?: unknown } | undefined;
    member.reported = { phase, errorType, errorMessage: typeof parsed?.errorMessage === "string" ? parsed.errorMessage : body.toString().slice(0, 1000) };
    res.writeHead(202, { "content-type": "application/json" }).end('{"status":"OK"}');
    if (!member.external) this.#fatal({ errorType: phase === "init" ? "Extension.InitError" : "Extension.ExitError", errorMessage: `extension ${member.name}: ${errorType}: ${member.reported.errorMessage}` });
  }

  // PUT /2022-07-01/telemetry and PUT /2020-08-15/logs: a subscription, during init only.
  async #subscribe(req: IncomingMessage, res: ServerResponse, api: "telemetry" | "logs"): Promise<void> {
    const body = (await readBody(req, MAX_REQUEST_BYTES)).bytes;
    const member = this.#identify(req, res);
    if (!member) return;
    if (this.#initDone) return forbidden(res, api === "logs" ? "Logs.SubscriptionClosed" : "Telemetry.SubscriptionClosed", `${api === "logs" ? "Logs" : "Telemetry"} API subscription is closed already: subscribe during init`);
    const request = parseJson(body) as { schemaVersion?: unknown; types?: unknown; buffering?: Record<string, unknown>; destination?: { protocol?: unknown; URI?: unknown } } | undefined;
    const invalid = (message: string) => res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ errorType: "ValidationError", errorMessage: message }));
    if (!request) return void invalid("the body is not JSON");
    const versions = api === "logs" ? ["2020-08-15", "2021-03-18"] : ["2022-07-01", "2022-12-13", "2025-01-29"];
    if (!versions.includes(request.schemaVersion as string)) return void invalid(`schemaVersion must be one of ${versions.join(", ")}, got ${JSON.stringify(request.schemaVersion)}`);
    const types = request.types;
    if (!Array.isArray(types) || types.length === 0 || types.some((type) => !TELEMETRY_TYPES.includes(type))) {
      return void invalid(`types must be a non-empty array of ${TELEMETRY_TYPES.join(", ")}, got ${JSON.stringify(types)}`);
    }
    const buffering: Record<string, number> = {};
    for (const [key, [min, max, fallback]] of Object.entries(BUFFERING)) {
      const value = request.buffering?.[key] ?? fallback;
      if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) return void invalid(`buffering.${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
      buffering[key] = value as number;
    }
    if (request.destination?.protocol !== "HTTP") return void invalid(`destination.protocol must be HTTP (the emulator does not deliver over TCP), got ${JSON.stringify(request.destination?.protocol)}`);
    let uri: URL;
    try {
      uri = new URL(String(request.destination.URI));
    } catch {
      return void invalid(`destination.URI is not a URI: ${JSON.stringify(request.destination.URI)}`);
    }
    if (uri.protocol !== "http:" || uri.hostname !== "sandbox.localdomain" || !uri.port || uri.port === "9001") {
      return void invalid(`destination.URI must be http://sandbox.localdomain:PORT/..., PORT not 9001, got ${uri.href}`);
    }
    const subscription: Subscription = {
      member,
      api,
      types: new Set(types),
      maxItems: buffering.maxItems!,
      maxBytes: buffering.maxBytes!,
      timeoutMs: buffering.timeoutMs!,
      port: Number(uri.port),
      path: uri.pathname + uri.search,
      queue: [],
      bytes: 0,
      sending: Promise.resolve(),
      agent: new Agent({ keepAlive: true }),
    };
    this.#subscriptions.push(subscription);
    res.writeHead(200, { "content-type": "application/json" }).end('"OK"');
    // Everything since init began, then this subscription's own record, then what comes.
    for (const event of this.#backlog ?? []) this.#enqueue(subscription, event);
    this.#emit(api === "logs" ? "platform.logsSubscription" : "platform.telemetrySubscription", { name: member.name, state: "Subscribed", types });
  }

  #identify(req: IncomingMessage, res: ServerResponse): Member | undefined {
    const id = header(req, "lambda-extension-identifier");
    if (!id) return void forbidden(res, "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header");
    const member = this.#members.find((member) => member.id === id);
    if (!member) forbidden(res, "Extension.UnknownExtensionIdentifier", `Unknown extension ${id}`);
    return member;
  }

  // ---- telemetry delivery -------------------------------------------------------------------------------

  #emit(type: string, record: unknown, timeMs = Date.now()): void {
    if (!this.#backlog && this.#subscriptions.length === 0) return; // nobody will ever read it
    const event = { time: new Date(timeMs).toISOString(), type, record };
    this.#backlog?.push(event);
    for (const subscription of this.#subscriptions) this.#enqueue(subscription, event);
  }

  /**
   * A record, a turn later: the lines the function printed before answering reach the emulator through a pipe
   * that may be read after the answer's socket, so the platform records that follow them wait a turn. The
   * function's lines go the same way, in the same first-in first-out order: a line of the next invocation,
   * read while its platform.start is still waiting, must not overtake it.
   */
  #emitSoon(type: string, record: unknown, timeMs?: number): void {
    if (!this.#backlog && this.#subscriptions.length === 0) return;
    const at = timeMs ?? Date.now();
    setImmediate(() => this.#emit(type, record, at));
  }

  #enqueue(subscription: Subscription, event: TelemetryEvent): void {
    for (const delivered of subscription.api === "logs" ? logsApiEvents(event) : [event]) {
      const category = delivered.type.startsWith("platform.") ? "platform" : delivered.type;
      if (!subscription.types.has(category)) continue;
      const size = Buffer.byteLength(JSON.stringify(delivered));
      subscription.queue.push({ event: delivered, size });
      subscription.bytes += size;
    }
    if (subscription.queue.length >= subscription.maxItems || subscription.bytes >= subscription.maxBytes) this.#flush(subscription);
    else if (subscription.queue.length > 0 && !subscription.timer) subscription.timer = setTimeout(() => this.#flush(subscription), subscription.timeoutMs);
  }

  /** Sends one batch (up to `maxItems`, `maxBytes`) after the one in flight; schedules the rest. */
  #flush(subscription: Subscription): Promise<void> {
    clearTimeout(subscription.timer);
    subscription.timer = undefined;
    if (subscription.queue.length === 0) return subscription.sending;
    let count = 0;
    let bytes = 0;
    while (count < subscription.queue.length && count < subscription.maxItems && (count === 0 || bytes + subscription.queue[count]!.size <= subscription.maxBytes)) {
      bytes += subscription.queue[count]!.size;
      count++;
    }
    const batch = subscription.queue.splice(0, count).map((item) => item.event);
    subscription.bytes -= bytes;
    subscription.sending = subscription.sending.then(() => this.#deliver(subscription, batch));
    if (subscription.queue.length >= subscription.maxItems || subscription.bytes >= subscription.maxBytes) void this.#flush(subscription);
    else if (subscription.queue.length > 0) subscription.timer = setTimeout(() => this.#flush(subscription), subscription.timeoutMs);
    return subscription.sending;
  }

  /** POSTs a batch to the subscriber's listener on 127.0.0.1 (what sandbox.localdomain stands for here); a failed delivery is tried 3 times, then dropped with a log line. */
  async #deliver(subscription: Subscription, batch: TelemetryEvent[]): Promise<void> {
    const body = JSON.stringify(batch);
    let why = "";
    for (let attempt = 1; attempt <= 3; attempt++) {
      const status = await post(subscription, body).catch((error: Error) => error);
      if (typeof status === "number" && status >= 200 && status < 300) return;
      why = typeof status === "number" ? `HTTP ${status}` : status.message;
      if (typeof status === "number" && status < 500) break; // the listener refused this batch: resending it would not help
      if (this.#shuttingDown && attempt === 1) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(subscription.timeoutMs, 250)));
    }
    this.#options.line(`TELEMETRY\tName: ${subscription.member.name}\tDropped: ${batch.length} events\tReason: ${why}`);
  }

  /** Every subscription's queue delivered, or `deadline` (epoch ms) reached. */
  async #drain(deadline: number): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve)); // what #emitSoon holds is queued first
    const all = Promise.all(
      this.#subscriptions.map(async (subscription) => {
        while (subscription.queue.length > 0) void this.#flush(subscription);
        await subscription.sending;
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
  }
}

/** The Logs API's shape of a Telemetry API event (it predates the Telemetry API): some are renamed, some absent. */
function logsApiEvents(event: TelemetryEvent): TelemetryEvent[] {
  const record = event.record as Record<string, unknown>;
  switch (event.type) {
    case "platform.start":
      return [{ ...event, record: { requestId: record.requestId, version: record.version } }];
    case "platform.runtimeDone":
      return [{ ...event, record: { requestId: record.requestId, status: record.status } }];
    case "platform.report":
      return [
        { time: event.time, type: "platform.end", record: { requestId: record.requestId } },
        { ...event, record: { requestId: record.requestId, metrics: record.metrics } },
      ];
    case "platform.telemetrySubscription":
      return [];
    case "platform.initStart":
    case "platform.initRuntimeDone":
    case "platform.initReport":
      return [];
    default:
      return [event];
  }
}

function post(subscription: Subscription, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: subscription.port, path: subscription.path, method: "POST", agent: subscription.agent, headers: { "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** SIGKILL to the extension's process group and whatever holds its output. */
function kill(member: Member): void {
  member.process?.signal("SIGKILL");
}

function forbidden(res: ServerResponse, errorType: string, errorMessage: string): void {
  res.writeHead(403, { "content-type": "application/json" }).end(JSON.stringify({ errorType, errorMessage }));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}


function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
