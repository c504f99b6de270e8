// The Runtime API proxy: a server the function talks to as if it were the Runtime API, which forwards every call
// to the real one (or to the next proxy) untouched, and lets hooks see, rewrite or reject events and answers.
//
// It runs inside an external extension (or on its own): the extension starts it during its init, before it
// registers, because Lambda starts the runtime only once every extension has registered. The function is pointed
// at it through `MICRO_LAMBDA_RUNTIME_API` (micro-lambda bootstraps on provided.*) or, on managed runtimes, through
// an `AWS_LAMBDA_EXEC_WRAPPER` script that sets `AWS_LAMBDA_RUNTIME_API` (src/proxy-wrapper.sh).
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { toErrorResponse } from "../wire/errors.ts";
import { parseAddress } from "../wire/http.ts";
import { errorContentType, headers, invocationPathPattern, runtimePaths, type ErrorResponse } from "../wire/protocol.ts";
import { runtimeApi, type RuntimeApi } from "../runtime/runtime-api.ts";

/** The environment variables a proxy reads when its options leave them out. */
export const proxyEnv = {
  /** The port to listen on, on 127.0.0.1. Default 9009, the port of AWS's proxy sample. The exec wrapper reads it too. */
  port: "MICRO_LAMBDA_PROXY_PORT",
  /** Where calls go on (`host:port`). Default: `AWS_LAMBDA_RUNTIME_API`, Lambda's own. Set it to chain proxies. */
  upstream: "MICRO_LAMBDA_PROXY_UPSTREAM",
} as const;

const DEFAULT_PORT = 9009;

/** The `errorType` of an invocation failed by the proxy: an event `onEvent` rejected, and a hook that threw. */
export const proxyErrorTypes = { rejected: "Runtime.EventRejected", hookFailed: "Runtime.ProxyHookError" } as const;

/** An event on its way to the function, as `/next` delivered it. */
export interface ProxiedEvent {
  requestId: string;
  /** The event's bytes. */
  body: Buffer;
  /** The headers of the `/next` answer, names lower-cased (`lambda-runtime-deadline-ms`, `lambda-runtime-trace-id`...). */
  headers: IncomingHttpHeaders;
}

/**
 * What `onEvent` decides: nothing (the event goes on as it is), a rewrite (a new body, headers to set on the
 * `/next` answer), or a rejection: the proxy fails the invocation upstream and asks for the next event, so the
 * function never sees it.
 */
export type EventDecision = void | { body?: string | Buffer; headers?: Record<string, string> } | { reject: string; errorType?: string };

/** The function's answer to one event (`/response` or `/error`), on its way to Lambda. */
export interface ProxiedAnswer {
  requestId: string;
  kind: "response" | "error";
  /** The answer's bytes; undefined for a streamed response, which passes through without being held. */
  body: Buffer | undefined;
  /** True for a streamed response: the hook sees it after it has passed, and cannot change it. */
  streamed: boolean;
  /** How many bytes the function sent (for a streamed response, counted as they passed). */
  size: number;
  /** The headers of the function's request, names lower-cased. */
  headers: IncomingHttpHeaders;
  /** The event as the function received it, when this proxy delivered it. */
  event: ProxiedEvent | undefined;
  /** From the event's delivery to the function until this answer arrived, when this proxy delivered it. */
  durationMs: number | undefined;
}

/** What `onResponse` and `onError` decide: nothing (the answer goes on as it is), or a new body. */
export type AnswerDecision = void | { body: string | Buffer };

export interface ProxyOptions {
  /** Sees every event before the function does; may rewrite or reject it. */
  onEvent?: (event: ProxiedEvent) => EventDecision | Promise<EventDecision>;
  /** Sees every `/response`; may rewrite a buffered one. */
  onResponse?: (answer: ProxiedAnswer) => AnswerDecision | Promise<AnswerDecision>;
  /** Sees every `/error` the function reports for an event; may rewrite it. */
  onError?: (answer: ProxiedAnswer) => AnswerDecision | Promise<AnswerDecision>;
  /** The port to listen on, on 127.0.0.1; 0 picks a free one. Default: `MICRO_LAMBDA_PROXY_PORT`, else 9009. */
  port?: number;
  /** `host:port` to forward to. Default: `MICRO_LAMBDA_PROXY_UPSTREAM`, else `AWS_LAMBDA_RUNTIME_API`. */
  upstream?: string;
  /** Where the proxy's own log lines go. Default: stderr, which Lambda sends to CloudWatch Logs. */
  log?: (line: string) => void;
}

export interface RuntimeApiProxy {
  /** `127.0.0.1:PORT`: the Runtime API address to give the function. */
  readonly address: string;
  /** Where calls go on: Lambda's Runtime API, or the next proxy. */
  readonly upstream: string;
  /** Stops listening and drops every connection, a pending `/next` included. */
  close(): Promise<void>;
}

/** One proxy's working parts, passed to each function below. */
interface ProxyState {
  http: typeof import("node:http");
  /** The upstream's client: its keep-alive agent carries every forwarded call, and it reports rejected events. */
  api: RuntimeApi;
  upstream: string;
  hooks: ProxyOptions;
  /** Events delivered and not yet answered, by request id, for `onResponse`/`onError`; only kept when one of them is set. */
  delivered: Map<string, Delivered> | undefined;
  log: (line: string) => void;
}

interface Delivered {
  event: ProxiedEvent;
  /** `performance.now()` when the function was handed the event. */
  at: number;
  /** Lambda's deadline for it (epoch ms): past it, no answer will come, and the entry is dropped. */
  deadlineMs: number;
}

/**
 * Starts a Runtime API proxy on 127.0.0.1 and resolves once it is listening. In an extension, call it (and
 * wait for it) before registering: Lambda starts the runtime only once every extension has registered.
 */
export async function runtimeApiProxy(options: ProxyOptions = {}): Promise<RuntimeApiProxy> {
  const upstream = options.upstream ?? (process.env[proxyEnv.upstream] || process.env.AWS_LAMBDA_RUNTIME_API);
  if (!upstream) {
    throw new TypeError(`runtimeApiProxy: no upstream Runtime API: Lambda sets AWS_LAMBDA_RUNTIME_API; elsewhere set ${proxyEnv.upstream} or pass { upstream }`);
  }
  parseAddress(upstream); // a clear error now, not on the first call
  const port = options.port ?? listenPort(process.env[proxyEnv.port]);
  // node:http is loaded here, not at import: a V8 startup snapshot cannot be built once it is loaded.
  const http = process.getBuiltinModule("node:http");
  const keepsAnswers = Boolean(options.onResponse || options.onError);
  const proxy: ProxyState = {
    http,
    api: runtimeApi(upstream),
    upstream,
    hooks: options,
    delivered: keepsAnswers ? new Map() : undefined,
    log: options.log ?? ((line) => console.error(line)),
  };
  const readsEvents = Boolean(options.onEvent) || keepsAnswers;

  const server = http.createServer((req, res) => route(proxy, readsEvents, req, res));
  // Lambda's Runtime API never closes an idle connection nor times a request out: a /next waits as long as the
  // sandbox has no event (frozen, for minutes), and a streamed response may last the whole invocation.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (cause: Error) => reject(new Error(`runtimeApiProxy: cannot listen on 127.0.0.1:${port} (${proxyEnv.port}): ${cause.message}`, { cause })));
    server.listen(port, "127.0.0.1", resolve);
  });
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    proxy.api.http.close();
  };
  if (sameAddress(upstream, address)) {
    await close();
    throw new TypeError(`runtimeApiProxy: the upstream ${upstream} is this proxy itself: every call would loop`);
  }
  return { address, upstream, close };
}

/** Which calls a hook looks at; everything else (and everything, without hooks) is forwarded untouched. */
function route(proxy: ProxyState, readsEvents: boolean, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? "/";
  if (readsEvents && req.method === "GET" && url === runtimePaths.next) return void next(proxy, req, res);
  const answer = req.method === "POST" && proxy.delivered ? invocationPathPattern.exec(url) : null;
  const requestId = answer ? decode(answer[1]!) : undefined;
  if (answer && requestId !== undefined) {
    const delivered = proxy.delivered!.get(requestId);
    proxy.delivered!.delete(requestId);
    const hook = answer[2] === "response" ? proxy.hooks.onResponse : proxy.hooks.onError;
    if (hook) return void answerWithHook(proxy, req, res, { requestId, kind: answer[2] as "response" | "error", delivered }, hook);
  }
  forward(proxy, req, res);
}

/** Any call no hook looks at (`/init/error`, unknown paths, everything when there are no hooks): streamed both ways, untouched. */
function forward(proxy: ProxyState, req: IncomingMessage, res: ServerResponse): void {
  const outgoing = open(proxy, req, res, req.url!, forwarded(req.rawHeaders, proxy.upstream));
  outgoing.on("response", (answer) => relay(proxy, req, res, answer));
  stream(req, outgoing);
}

// GET /runtime/invocation/next — held upstream for as long as Lambda has no event; the event is read whole and
// shown to onEvent. A rejected event is failed upstream and the proxy asks again: the function never sees it.
async function next(proxy: ProxyState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  for (;;) {
    const answer = await call(proxy, req, res);
    if (!answer) return;
    if (answer.statusCode !== 200) return relay(proxy, req, res, answer); // 204, 403, 500...: the runtime knows what they mean
    let body: Buffer;
    try {
      body = await readBody(answer);
    } catch (cause) {
      return upstreamFailed(proxy, req, res, cause as Error);
    }
    const event: ProxiedEvent = { requestId: String(answer.headers[headers.requestId] ?? ""), body, headers: answer.headers };
    const decision = await decide(proxy, event);
    if ("reject" in decision) {
      try {
        await proxy.api.fail(event, decision.reject);
      } catch (cause) {
        return upstreamFailed(proxy, req, res, cause as Error);
      }
      continue;
    }
    const unchanged = decision.body === undefined && !decision.headers;
    if (!unchanged) {
      event.body = decision.body === undefined ? body : Buffer.from(decision.body);
      event.headers = { ...event.headers, ...lowerCased(decision.headers) };
    }
    if (proxy.delivered) remember(proxy.delivered, event);
    res.sendDate = false;
    res.writeHead(200, answer.statusMessage, unchanged ? forwarded(answer.rawHeaders) : rewritten(forwarded(answer.rawHeaders), event.body, decision.headers));
    if (unchanged && answer.rawTrailers.length > 0) res.addTrailers(pairs(answer.rawTrailers));
    res.end(event.body);
    return;
  }
}

/** Asks onEvent; a hook that throws fails this invocation (and only this one) as a rejection would. */
async function decide(proxy: ProxyState, event: ProxiedEvent): Promise<{ body?: string | Buffer; headers?: Record<string, string> } | { reject: ErrorResponse }> {
  if (!proxy.hooks.onEvent) return {};
  try {
    const decision = await proxy.hooks.onEvent(event);
    if (decision && "reject" in decision) {
      return { reject: { errorType: decision.errorType ?? proxyErrorTypes.rejected, errorMessage: String(decision.reject), stackTrace: [] } };
    }
    return decision ?? {};
  } catch (thrown) {
    return { reject: hookFailed(proxy, "onEvent", event.requestId, thrown) };
  }
}

// POST /runtime/invocation/{id}/response and /error, when onResponse or onError looks at them. A buffered answer
// is read whole, shown to the hook, and sent on (rewritten or not); a hook that throws turns it into an /error.
// A streamed response passes through as it comes, and the hook sees it once it has gone.
async function answerWithHook(
  proxy: ProxyState,
  req: IncomingMessage,
  res: ServerResponse,
  call: { requestId: string; kind: "response" | "error"; delivered: Delivered | undefined },
  hook: NonNullable<ProxyOptions["onResponse"]>,
): Promise<void> {
  const show = (body: Buffer | undefined, size: number): ProxiedAnswer => ({
    requestId: call.requestId,
    kind: call.kind,
    body,
    streamed: body === undefined,
    size,
    headers: req.headers,
    event: call.delivered?.event,
    durationMs: call.delivered && performance.now() - call.delivered.at,
  });

  if (call.kind === "response" && req.headers[headers.responseMode] === "streaming") {
    let size = 0;
    forward(proxy, req, res);
    req.on("data", (chunk: Buffer) => (size += chunk.length));
    res.once("finish", async () => {
      try {
        await hook(show(undefined, size));
      } catch (thrown) {
        proxy.log(`micro-lambda proxy: ${call.kind} hook threw on the streamed response of ${call.requestId}, which had already gone on: ${describe(thrown)}`);
      }
    });
    return;
  }

  let body: Buffer;
  try {
    body = await readBody(req);
  } catch {
    return; // the runtime hung up mid-body: there is nothing to answer
  }
  let decision: AnswerDecision;
  try {
    decision = await hook(show(body, body.length));
  } catch (thrown) {
    const error = hookFailed(proxy, call.kind === "response" ? "onResponse" : "onError", call.requestId, thrown);
    const json = JSON.stringify(error);
    const list = ["Host", proxy.upstream, "Content-Type", errorContentType, headers.functionErrorType, error.errorType, "Content-Length", String(Buffer.byteLength(json))];
    const invocationId = req.headers[headers.invocationId];
    if (typeof invocationId === "string") list.push(headers.invocationId, invocationId);
    return void open(proxy, req, res, runtimePaths.error(call.requestId), list)
      .on("response", (answer) => relay(proxy, req, res, answer))
      .end(json);
  }
  const list = forwarded(req.rawHeaders, proxy.upstream);
  const sent = decision?.body === undefined ? body : Buffer.from(decision.body);
  const outgoing = open(proxy, req, res, req.url!, sent === body ? list : rewritten(list, sent));
  outgoing.on("response", (answer) => relay(proxy, req, res, answer));
  if (sent === body && req.rawTrailers.length > 0) outgoing.addTrailers(pairs(req.rawTrailers));
  outgoing.end(sent);
}

// ---- the plumbing: one upstream request, and bodies streamed through ----------------------------------------

/**
 * A request to the upstream, on the shared keep-alive connections. If the upstream cannot be reached the runtime
 * gets a 502; if the runtime hangs up before the upstream answers, the upstream request is dropped too (so an
 * event cannot be handed to a /next nobody is waiting on).
 */
function open(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, path: string, list: string[]): ClientRequest {
  const { host, port, agent } = proxy.api.http;
  const outgoing = proxy.http.request({ host, port, agent, method: req.method, path, headers: list });
  outgoing.on("error", (cause) => upstreamFailed(proxy, req, res, cause));
  const cancel = () => res.writableFinished || outgoing.destroy();
  res.once("close", cancel);
  outgoing.once("response", () => res.off("close", cancel));
  return outgoing;
}

/** Sends the runtime's bodiless request (a /next) upstream and resolves with the answer, or with nothing once the runtime has had its 502. */
function call(proxy: ProxyState, req: IncomingMessage, res: ServerResponse): Promise<IncomingMessage | undefined> {
  return new Promise((resolve) => {
    const outgoing = open(proxy, req, res, req.url!, forwarded(req.rawHeaders, proxy.upstream));
    outgoing.once("response", resolve);
    outgoing.once("error", () => resolve(undefined));
    outgoing.once("close", () => resolve(undefined)); // hung up: the runtime is gone
    outgoing.end();
  });
}

/** The upstream's answer, back to the runtime: its status line, headers, body (as it comes) and trailers. */
function relay(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, answer: IncomingMessage): void {
  res.sendDate = false; // the upstream's Date, if it sent one, is in its headers; the proxy adds none of its own
  res.writeHead(answer.statusCode!, answer.statusMessage, forwarded(answer.rawHeaders));
  answer.once("error", (cause) => upstreamFailed(proxy, req, res, cause)); // before stream()'s own listener, which breaks res
  stream(answer, res);
  // The runtime hung up mid-answer: stop reading an answer nobody will get.
  res.once("close", () => answer.complete || answer.destroy());
}

/**
 * Pipes a body on chunk by chunk as it arrives, with backpressure (a streamed response is never held whole),
 * then its trailers (`Lambda-Runtime-Function-Error-Type`/`-Body` on a stream that failed midway).
 */
function stream(from: IncomingMessage, to: OutgoingMessage): void {
  from.pipe(to, { end: false });
  from.once("end", () => {
    if (from.rawTrailers.length > 0) to.addTrailers(pairs(from.rawTrailers));
    to.end();
  });
  // Broken off midway: break the other side too, rather than let it pass for a complete message.
  from.once("error", () => to.destroy());
}

/** The upstream cannot be reached, or broke off: a 502 whose body the runtime prints, and a log line. */
function upstreamFailed(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, cause: Error): void {
  if (res.destroyed || res.writableFinished) return; // the runtime hung up first (the cause is our own cancel), or has its answer
  const message = `${req.method} ${req.url}: the upstream Runtime API at ${proxy.upstream} cannot be reached or broke off: ${cause.message}`;
  proxy.log(`micro-lambda proxy: ${message}`);
  // Drain what the runtime is still sending, so that it reads the 502 rather than a broken connection.
  req.unpipe();
  req.resume();
  if (res.headersSent) return void res.destroy(); // midway through the answer: all that can be said is that it broke
  const body = JSON.stringify({ errorType: "ProxyUpstreamUnreachable", errorMessage: message });
  res.writeHead(502, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}

/**
 * A hook threw: the invocation fails with this error, and the proxy goes on. The stack trace goes to the log
 * only: the error reaches whoever invoked the function, who has no business reading the extension's internals.
 */
function hookFailed(proxy: ProxyState, hook: string, requestId: string, thrown: unknown): ErrorResponse {
  const cause = toErrorResponse(thrown);
  const errorMessage = `the Runtime API proxy's ${hook} hook threw ${cause.errorType}: ${cause.errorMessage}`;
  const stack = cause.stackTrace.length > 0 ? `\n${cause.stackTrace.join("\n")}` : "";
  proxy.log(`micro-lambda proxy: ${requestId}: ${errorMessage}; this invocation fails${stack}`);
  return { errorType: proxyErrorTypes.hookFailed, errorMessage, stackTrace: [] };
}

// ---- headers ------------------------------------------------------------------------------------------------

/** Headers that belong to one connection, not to the message: each hop sets its own. */
const hopByHop = new Set(["connection", "keep-alive", "proxy-connection", "upgrade", "host"]);

/**
 * The raw header list (names spelled as sent, in order, repeats kept) without the hop-by-hop headers; with
 * `host`, led by the upstream's Host. Everything else, every `Lambda-Runtime-*` header included, goes on as it came.
 */
function forwarded(raw: string[], host?: string): string[] {
  const list = host === undefined ? [] : ["Host", host];
  for (let i = 0; i < raw.length; i += 2) {
    if (!hopByHop.has(raw[i]!.toLowerCase())) list.push(raw[i]!, raw[i + 1]!);
  }
  return list;
}

/** A header list for a rewritten body: its own length, no chunking, and `set` replacing headers of the same name. */
function rewritten(list: string[], body: Buffer, set: Record<string, string> = {}): string[] {
  const replaced = new Set(["content-length", "transfer-encoding", "trailer", ...Object.keys(set).map((name) => name.toLowerCase())]);
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!replaced.has(list[i]!.toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  for (const [name, value] of Object.entries(set)) out.push(name, value);
  out.push("Content-Length", String(body.length));
  return out;
}

function lowerCased(set: Record<string, string> = {}): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(set).map(([name, value]) => [name.toLowerCase(), value]));
}

function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

// ---- small helpers ------------------------------------------------------------------------------------------

/** Keeps a delivered event until its answer comes; events past their deadline will get none (Lambda timed them out). */
function remember(delivered: Map<string, Delivered>, event: ProxiedEvent): void {
  const now = Date.now();
  for (const [id, kept] of delivered) if (kept.deadlineMs < now) delivered.delete(id);
  const deadlineMs = Number(event.headers[headers.deadlineMs]) || now + 15 * 60 * 1000; // Lambda's longest timeout
  delivered.set(event.requestId, { event, at: performance.now(), deadlineMs });
}

function readBody(message: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    message.on("data", (chunk: Buffer) => chunks.push(chunk));
    message.once("end", () => resolve(Buffer.concat(chunks)));
    message.once("error", reject);
  });
}

function listenPort(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`${proxyEnv.port}=${value}: not a port number`);
  return port;
}

function sameAddress(upstream: string, address: string): boolean {
  const { host, port } = parseAddress(upstream);
  return String(port) === address.split(":")[1] && ["127.0.0.1", "localhost", "0.0.0.0", "::1"].includes(host);
}

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function describe(thrown: unknown): string {
  const error = toErrorResponse(thrown);
  return `${error.errorType}: ${error.errorMessage}`;
}
