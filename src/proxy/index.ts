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
import { readBody, tooLarge } from "../wire/body.ts";
import { parseAddress } from "../wire/http.ts";
import { errorContentType, headers, invocationPathPattern, limits, runtimePaths, type ErrorResponse } from "../wire/protocol.ts";
import { runtimeApi, type RuntimeApi } from "../runtime/runtime-api.ts";

/** The environment variables a proxy reads when its options leave them out. */
export const proxyEnv = {
  /** The port to listen on, on 127.0.0.1. Default 9009, the port of AWS's proxy sample. The exec wrapper reads it too. */
  port: "MICRO_LAMBDA_PROXY_PORT",
  /** Where calls go on (`host:port`). Default: `AWS_LAMBDA_RUNTIME_API`, Lambda's own. Set it to chain proxies. */
  upstream: "MICRO_LAMBDA_PROXY_UPSTREAM",
} as const;

const DEFAULT_PORT = 9009;
/**
 * The most a buffered `/response` or `/error` may hold when a hook reads it: Lambda's own limit. Past it the proxy
 * answers Lambda's 413 itself, rather than hold the rest.
 */
const MAX_BUFFERED_BYTES = limits.bufferedResponseBytes;

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

  const server = http.createServer((req, res) => handle(proxy, readsEvents, req, res));
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

/**
 * The one place every request goes through. Whatever goes wrong while serving it (a bug, a value no HTTP message
 * can carry, a new route's mistake) ends here: that request gets a 500 whose JSON says why (or, midway through its
 * answer, a broken connection), the proxy logs a line with the stack, and goes on serving the others.
 */
function handle(proxy: ProxyState, readsEvents: boolean, req: IncomingMessage, res: ServerResponse): void {
  guarded(proxy, req, res, () => route(proxy, readsEvents, req, res));
}

/** Runs part of serving a request (its start, or an event listener's work), sending whatever it throws or rejects with to `failed`. */
function guarded(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, work: () => void | Promise<void>): void {
  try {
    work()?.catch((error: unknown) => failed(proxy, req, res, error));
  } catch (error) {
    failed(proxy, req, res, error);
  }
}

/** Which calls a hook looks at; everything else (and everything, without hooks) is forwarded untouched. */
function route(proxy: ProxyState, readsEvents: boolean, req: IncomingMessage, res: ServerResponse): void | Promise<void> {
  const url = req.url ?? "/";
  if (readsEvents && req.method === "GET" && url === runtimePaths.next) return next(proxy, req, res);
  const answer = req.method === "POST" && proxy.delivered ? invocationPathPattern.exec(url) : null;
  const requestId = answer ? decode(answer[1]!) : undefined;
  if (answer && requestId !== undefined) {
    const delivered = proxy.delivered!.get(requestId);
    proxy.delivered!.delete(requestId);
    const hook = answer[2] === "response" ? proxy.hooks.onResponse : proxy.hooks.onError;
    if (hook) return answerWithHook(proxy, req, res, { requestId, kind: answer[2] as "response" | "error", delivered }, hook);
  }
  return forward(proxy, req, res);
}

/** Any call no hook looks at (`/init/error`, unknown paths, everything when there are no hooks): streamed both ways, untouched. */
function forward(proxy: ProxyState, req: IncomingMessage, res: ServerResponse): void {
  const outgoing = open(proxy, req, res, req.url!, forwarded(req.rawHeaders, proxy.upstream));
  stream(proxy, req, outgoing);
  outgoing.once("response", (answer: IncomingMessage) => guarded(proxy, req, res, () => relay(proxy, req, res, answer)));
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
      event.body = decision.body ?? body;
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

/** Asks onEvent; a hook that throws, or returns what no `/next` answer can carry, fails this invocation (and only this one) as a rejection would. */
async function decide(proxy: ProxyState, event: ProxiedEvent): Promise<{ body?: Buffer; headers?: Record<string, string> } | { reject: ErrorResponse }> {
  if (!proxy.hooks.onEvent) return {};
  try {
    return eventDecision(await proxy.hooks.onEvent(event));
  } catch (thrown) {
    return { reject: hookFailed(proxy, "onEvent", event.requestId, thrown) };
  }
}

// POST /runtime/invocation/{id}/response and /error, when onResponse or onError looks at them. A buffered answer
// is read whole (up to Lambda's limit), shown to the hook, and sent on (rewritten or not); a hook that throws, or
// returns what cannot be sent, turns it into an /error. A streamed response passes through as it comes, and the
// hook sees it once it has gone.
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
  const name = call.kind === "response" ? "onResponse" : "onError";

  if (call.kind === "response" && req.headers[headers.responseMode] === "streaming") {
    let size = 0;
    forward(proxy, req, res);
    req.on("data", (chunk: Buffer) => (size += chunk.length));
    res.once("finish", () =>
      guarded(proxy, req, res, async () => {
        try {
          await hook(show(undefined, size));
        } catch (thrown) {
          proxy.log(`micro-lambda proxy: ${name} threw on the streamed response of ${call.requestId}, which had already gone on: ${describe(thrown)}`);
        }
      }),
    );
    return;
  }

  const body = await readBody(req, MAX_BUFFERED_BYTES).catch(() => undefined);
  if (body === undefined) return; // the runtime hung up mid-body: there is nothing to answer
  if (body === tooLarge) return answerTooLarge(proxy, req, res, call.requestId);
  let sent: Buffer;
  try {
    sent = answerDecision(await hook(show(body, body.length))) ?? body;
  } catch (thrown) {
    return reportUpstream(proxy, req, res, call.requestId, hookFailed(proxy, name, call.requestId, thrown));
  }
  const list = forwarded(req.rawHeaders, proxy.upstream);
  const outgoing = open(proxy, req, res, req.url!, sent === body ? list : rewritten(list, sent));
  if (sent === body && req.rawTrailers.length > 0) outgoing.addTrailers(pairs(req.rawTrailers));
  outgoing.end(sent);
  const answer = await answerOf(outgoing);
  if (answer) relay(proxy, req, res, answer);
}

/**
 * An answer over Lambda's limit, to be read whole for a hook: the runtime gets the 413 Lambda's Runtime API gives
 * (the rest of its body is read and dropped, never held), and the invocation fails upstream as on Lambda.
 */
async function answerTooLarge(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  req.resume();
  const body = JSON.stringify({ errorMessage: `Exceeded maximum allowed payload size (${MAX_BUFFERED_BYTES} bytes).`, errorType: "RequestEntityTooLarge" });
  res.writeHead(413, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }).end(body);
  proxy.log(`micro-lambda proxy: ${requestId}: the function's ${req.url?.endsWith("/error") ? "error" : "response"} is larger than ${MAX_BUFFERED_BYTES} bytes: answered 413, the invocation fails`);
  const error = { errorType: "Function.ResponseSizeTooLarge", errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_BUFFERED_BYTES} bytes).`, trace: [] };
  try {
    await proxy.api.fail({ requestId, body: Buffer.alloc(0), headers: req.headers }, error);
  } catch (cause) {
    proxy.log(`micro-lambda proxy: ${requestId}: the upstream Runtime API at ${proxy.upstream} did not take the invocation's failure: ${(cause as Error).message}`);
  }
}

/** Fails the invocation upstream with `error` in place of the runtime's answer, and relays the upstream's answer to the runtime. */
async function reportUpstream(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, requestId: string, error: ErrorResponse): Promise<void> {
  const json = JSON.stringify(error);
  const list = ["Host", proxy.upstream, "Content-Type", errorContentType, headers.functionErrorType, error.errorType, "Content-Length", String(Buffer.byteLength(json))];
  const invocationId = req.headers[headers.invocationId];
  if (typeof invocationId === "string") list.push(headers.invocationId, invocationId);
  const outgoing = open(proxy, req, res, runtimePaths.error(requestId), list);
  outgoing.end(json);
  const answer = await answerOf(outgoing);
  if (answer) relay(proxy, req, res, answer);
}

// ---- what hooks return: checked before anything is sent ------------------------------------------------------

/** A hook returned a value the proxy cannot send on; its invocation fails, as when a hook throws. */
class HookReturnError extends Error {
  override readonly name = "HookReturnError";
}

/** Names a hook may not set: the proxy frames each message and each hop owns its connection. */
const framingHeaders = new Set(["content-length", "transfer-encoding", "trailer", "connection", "keep-alive", "upgrade", "host", "te", "proxy-connection"]);
/** RFC 9110 §5.6.2 and §5.5, as node:http checks them: a name is a token; a value is latin1 without control characters but HTAB. */
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const invalidValue = /[^\t\x20-\x7e\x80-\xff]/;

/** onEvent's decision, checked: nothing, `{body?, headers?}` or `{reject, errorType?}`. Throws a HookReturnError saying what is wrong. */
function eventDecision(decision: unknown): { body?: Buffer; headers?: Record<string, string> } | { reject: ErrorResponse } {
  if (decision === undefined || decision === null) return {};
  if (typeof decision !== "object") throw new HookReturnError(`${preview(decision)}, not nothing, {body?, headers?} or {reject, errorType?}`);
  if ("reject" in decision) {
    const { reject, errorType = proxyErrorTypes.rejected } = decision as { reject: unknown; errorType?: unknown };
    if (typeof errorType !== "string" || errorType === "" || invalidValue.test(errorType)) {
      throw new HookReturnError(`errorType ${preview(errorType)}: an error type is a non-empty string of latin1 characters without line breaks (it travels in a header)`);
    }
    return { reject: { errorType, errorMessage: String(reject), trace: [] } };
  }
  const { body, headers: set } = decision as { body?: unknown; headers?: unknown };
  if (set === undefined) return { body: bodyOf(body) };
  if (typeof set !== "object" || set === null || Array.isArray(set)) throw new HookReturnError(`headers ${preview(set)}, not an object of names and string values`);
  for (const [name, value] of Object.entries(set)) {
    if (!token.test(name)) throw new HookReturnError(`a header name ${JSON.stringify(name)} that HTTP does not allow (letters, digits and !#$%&'*+-.^_\`|~ only)`);
    if (framingHeaders.has(name.toLowerCase())) throw new HookReturnError(`a ${name} header: the proxy frames the answer itself`);
    if (typeof value !== "string") throw new HookReturnError(`headers[${JSON.stringify(name)}] = ${preview(value)}, not a string`);
    if (invalidValue.test(value)) throw new HookReturnError(`headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}, which no header can carry (latin1 characters only, no line breaks or other control characters)`);
  }
  return { body: bodyOf(body), headers: set as Record<string, string> };
}

/** onResponse's and onError's decision, checked: nothing (undefined), or the new body. */
function answerDecision(decision: unknown): Buffer | undefined {
  if (decision === undefined || decision === null) return undefined;
  if (typeof decision !== "object") throw new HookReturnError(`${preview(decision)}, not nothing or {body}`);
  return bodyOf((decision as { body?: unknown }).body);
}

function bodyOf(body: unknown): Buffer | undefined {
  if (body === undefined || Buffer.isBuffer(body)) return body;
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new HookReturnError(`body ${preview(body)}, not a string or a Buffer (JSON.stringify it first)`);
}

function preview(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  if (typeof value === "function" || typeof value === "symbol") return `a ${typeof value}`;
  return `${typeof value} ${JSON.stringify(String(value)).slice(0, 100)}`;
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
  outgoing.on("error", (cause) => guarded(proxy, req, res, () => upstreamFailed(proxy, req, res, cause)));
  const cancel = () => res.writableFinished || outgoing.destroy();
  res.once("close", cancel);
  outgoing.once("response", () => res.off("close", cancel));
  return outgoing;
}

/** The upstream's answer to `outgoing`, or nothing once the request failed (the runtime has had its 502) or was dropped. */
function answerOf(outgoing: ClientRequest): Promise<IncomingMessage | undefined> {
  return new Promise((resolve) => {
    outgoing.once("response", resolve);
    outgoing.once("close", () => resolve(undefined)); // failed (its error handled by open), or dropped as the runtime hung up
  });
}

/** Sends the runtime's bodiless request (a /next) upstream and resolves with the answer, or with nothing once the runtime has had its 502. */
function call(proxy: ProxyState, req: IncomingMessage, res: ServerResponse): Promise<IncomingMessage | undefined> {
  // A /next has no body; one sent anyway is dropped, and not announced upstream (whose server would wait for it).
  req.resume();
  const list = forwarded(req.rawHeaders, proxy.upstream).filter((_, i, all) => !/^(content-length|transfer-encoding|trailer)$/i.test(all[i - (i % 2)]!));
  const outgoing = open(proxy, req, res, req.url!, list);
  outgoing.end();
  return answerOf(outgoing);
}

/** The upstream's answer, back to the runtime: its status line, headers, body (as it comes) and trailers. */
function relay(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, answer: IncomingMessage): void {
  if (res.destroyed) return void answer.destroy(); // the runtime hung up meanwhile
  res.sendDate = false; // the upstream's Date, if it sent one, is in its headers; the proxy adds none of its own
  res.writeHead(answer.statusCode!, answer.statusMessage, forwarded(answer.rawHeaders));
  answer.once("error", (cause) => guarded(proxy, req, res, () => upstreamFailed(proxy, req, res, cause))); // before stream()'s own listener, which breaks res
  stream(proxy, answer, res);
  // The runtime hung up mid-answer: stop reading an answer nobody will get.
  res.once("close", () => answer.complete || answer.destroy());
}

/**
 * Pipes a body on chunk by chunk as it arrives, with backpressure (a streamed response is never held whole),
 * then its trailers (`Lambda-Runtime-Function-Error-Type`/`-Body` on a stream that failed midway).
 */
function stream(proxy: ProxyState, from: IncomingMessage, to: OutgoingMessage): void {
  from.pipe(to, { end: false });
  from.once("end", () => {
    try {
      if (from.rawTrailers.length > 0) to.addTrailers(pairs(from.rawTrailers));
      to.end();
    } catch (error) {
      // Trailers node:http parsed but will not write (a control character in a value): the message cannot end whole.
      to.destroy();
      try {
        proxy.log(`micro-lambda proxy: ${describe(error)}: trailers that cannot be sent on; the message is broken off`);
      } catch {
        // a log that throws changes nothing here: the message is broken off either way
      }
    }
  });
  // Broken off midway: break the other side too, rather than let it pass for a complete message.
  from.once("error", () => to.destroy());
}

/** The upstream cannot be reached, or broke off: a 502 whose body the runtime prints, and a log line. */
function upstreamFailed(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, cause: Error): void {
  if (res.destroyed || res.writableFinished) return; // the runtime hung up first (the cause is our own cancel), or has its answer
  const message = `${req.method} ${req.url}: the upstream Runtime API at ${proxy.upstream} cannot be reached or broke off: ${cause.message}`;
  proxy.log(`micro-lambda proxy: ${message}`);
  answerError(req, res, 502, { errorType: "ProxyUpstreamUnreachable", errorMessage: message });
}

/** Serving a request failed in a way nothing else handled (see `handle`): a 500 for it, and a log line with the stack. */
function failed(proxy: ProxyState, req: IncomingMessage, res: ServerResponse, thrown: unknown): void {
  const error = toErrorResponse(thrown);
  const message = `${req.method} ${req.url}: the proxy failed: ${error.errorType}: ${error.errorMessage}`;
  const stack = error.trace.length > 0 ? `\n${error.trace.join("\n")}` : "";
  const line = `micro-lambda proxy: ${message}${res.destroyed || res.writableFinished ? " (after the answer had gone)" : ""}${stack}`;
  try {
    proxy.log(line);
  } catch {
    console.error(line); // the log itself may be what failed
  }
  if (!res.destroyed && !res.writableFinished) answerError(req, res, 500, { errorType: "ProxyFailed", errorMessage: message });
}

/** An error answer of the proxy's own, as JSON; midway through an answer, all that can be said is that it broke. */
function answerError(req: IncomingMessage, res: ServerResponse, status: number, error: { errorType: string; errorMessage: string }): void {
  // Drain what the runtime is still sending, so that it reads the answer rather than a broken connection.
  req.unpipe();
  req.resume();
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify(error);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}

/**
 * A hook threw, or returned what cannot be sent: the invocation fails with this error, and the proxy goes on. The
 * stack trace goes to the log only: the error reaches whoever invoked the function, who has no business reading
 * the extension's internals.
 */
function hookFailed(proxy: ProxyState, hook: string, requestId: string, thrown: unknown): ErrorResponse {
  const cause = toErrorResponse(thrown);
  const errorMessage =
    thrown instanceof HookReturnError ? `the Runtime API proxy's ${hook} hook returned ${cause.errorMessage}` : `the Runtime API proxy's ${hook} hook threw ${cause.errorType}: ${cause.errorMessage}`;
  const stack = thrown instanceof HookReturnError || cause.trace.length === 0 ? "" : `\n${cause.trace.join("\n")}`;
  proxy.log(`micro-lambda proxy: ${requestId}: ${errorMessage}; this invocation fails${stack}`);
  return { errorType: proxyErrorTypes.hookFailed, errorMessage, trace: [] };
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
  let trailer = -1;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (hopByHop.has(name)) continue;
    if (name === "trailer") trailer = list.length;
    else if (name === "transfer-encoding") chunked = true;
    list.push(raw[i]!, raw[i + 1]!);
  }
  // A Trailer header on a message that is not chunked announces trailers it cannot carry (node:http refuses to send it).
  if (trailer >= 0 && !chunked) return list.filter((_, i) => !/^trailer$/i.test(list[i - (i % 2)]!));
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
