// The Runtime API client: one function per endpoint, and what each status code means.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { RuntimeApiError } from "../wire/errors.ts";
import { httpClient, MalformedReplyError, type HttpClient, type Reply } from "../wire/http.ts";
import { errorContentType, headers, runtimePaths, type ErrorResponse } from "../wire/protocol.ts";

/** One event as `/next` delivered it: its id, the raw event bytes, and the headers the context is built from. */
export interface NextEvent {
  requestId: string;
  body: Buffer;
  headers: IncomingHttpHeaders;
}

export interface RuntimeApi {
  next(): Promise<NextEvent>;
  respond(event: NextEvent, body: string | Buffer): Promise<void>;
  respondStreaming(event: NextEvent, contentType: string): StreamedResponse;
  /** `xrayCause`: the `Lambda-Runtime-Function-XRay-Error-Cause` header (see `xrayErrorCause`). */
  fail(event: NextEvent, error: ErrorResponse, xrayCause?: string): Promise<void>;
  failInit(error: ErrorResponse): Promise<void>;
  /** The transport, for the streaming response (which writes its own request body). */
  readonly http: HttpClient;
}

/** A `POST /response` whose body is being written: the response of a streaming handler. */
export interface StreamedResponse {
  /** Sends one chunk; `done` is called when the connection can take more (backpressure), or with the error that broke it. */
  write(chunk: Buffer, done: (error?: Error | null) => void): void;
  /** Ends the body, with `error` in the trailers if there is one, and waits for Lambda's answer. */
  end(error?: ErrorResponse): Promise<void>;
}

/** A client for the Runtime API at `address` (`host:port`). Failures of the API itself are thrown as `RuntimeApiError`. */
export function runtimeApi(address: string): RuntimeApi {
  const http = httpClient(address);

  async function call(method: string, path: string, sent: OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply> {
    try {
      return await http.request(method, path, sent, body);
    } catch (cause) {
      const what = cause instanceof MalformedReplyError ? "answered with something that is not valid HTTP" : "cannot be reached";
      throw new RuntimeApiError(`the Runtime API at ${address} ${what} (${method} ${path}): ${(cause as Error).message}`, undefined, { cause });
    }
  }

  return {
    http,

    // GET /runtime/invocation/next — blocks until there is an event. The function is billed until it calls this again.
    async next() {
      for (let idle = 0; ; idle++) {
        const reply = await call("GET", runtimePaths.next, {});
        // Some emulators answer 204 while idle: ask again, waiting longer each time so that idling is not a busy loop.
        if (reply.status === 204) {
          await new Promise((resolve) => setTimeout(resolve, idleDelayMs(idle)));
          continue;
        }
        const requestId = reply.headers[headers.requestId];
        if (reply.status !== 200 || typeof requestId !== "string" || requestId === "") {
          const what = reply.status === 200 ? "200 without a request id" : reply.status;
          throw new RuntimeApiError(`GET ${runtimePaths.next} answered ${what}: ${text(reply)}`, reply.status);
        }
        // Header bytes arrive as latin1 characters; Lambda's are UTF-8.
        return { requestId: Buffer.from(requestId, "latin1").toString("utf8"), body: reply.body, headers: reply.headers };
      }
    },

    // POST /runtime/invocation/{id}/response
    async respond(event, body) {
      const path = runtimePaths.response(event.requestId);
      checkAnswer("POST", path, await call("POST", path, echoInvocationId(event, { "content-type": "application/json" }), body));
    },

    // POST /runtime/invocation/{id}/response, streamed: the body goes out while the handler writes it (up to 200 MB),
    // chunked, and a failure after the first byte is reported in the two trailers the request announces.
    respondStreaming(event, contentType) {
      const path = runtimePaths.response(event.requestId);
      const sent = echoInvocationId(event, {
        "content-type": contentType,
        [headers.responseMode]: "streaming",
        "transfer-encoding": "chunked",
        trailer: `${headers.functionErrorType}, ${headers.functionErrorBody}`,
      });
      const request = process.getBuiltinModule("node:http").request({ host: http.host, port: http.port, agent: http.agent, method: "POST", path, headers: sent });
      let broken: Error | undefined;
      const answered = new Promise<Reply>((resolve, reject) => {
        request.on("response", (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        });
        request.on("error", (cause) => {
          broken ??= cause;
          reject(new RuntimeApiError(`the Runtime API at ${address} broke the streamed POST ${path}: ${cause.message}`, undefined, { cause }));
        });
        request.on("close", () => (broken ??= new Error(`the Runtime API at ${address} closed the streamed POST ${path}`)));
      });
      answered.catch(() => {}); // awaited, and so reported, by end()
      return {
        write(chunk, done) {
          if (broken) return done(broken);
          if (request.write(chunk)) return done();
          const settle = () => {
            request.off("drain", settle).off("close", settle);
            done(broken);
          };
          request.on("drain", settle).on("close", settle);
        },
        async end(error) {
          if (error) request.addTrailers({ [headers.functionErrorType]: headerSafe(error.errorType), [headers.functionErrorBody]: Buffer.from(JSON.stringify(error)).toString("base64") });
          request.end();
          checkAnswer("POST", path, await answered);
        },
      };
    },

    // POST /runtime/invocation/{id}/error
    async fail(event, error, xrayCause) {
      const path = runtimePaths.error(event.requestId);
      const sent = echoInvocationId(event, errorHeaders(error));
      if (xrayCause) sent[headers.xrayErrorCause] = xrayCause;
      checkAnswer("POST", path, await call("POST", path, sent, JSON.stringify(error)));
    },

    // POST /runtime/init/error — before the first /next; the caller exits afterwards.
    async failInit(error) {
      checkAnswer("POST", runtimePaths.initError, await call("POST", runtimePaths.initError, errorHeaders(error), JSON.stringify(error)));
    },
  };
}

/** The headers that go with an error JSON body, on this API and the Extensions API. */
export function errorHeaders(error: ErrorResponse, typeHeader: string = headers.functionErrorType): OutgoingHttpHeaders {
  return { "content-type": errorContentType, [typeHeader]: headerSafe(error.errorType) };
}

/**
 * How long to wait after the `n`th 204 in a row before asking `/next` again: 1 ms, doubling up to 250 ms (a 200
 * starts the count again). Bounded, so an event that arrives while idling waits at most a quarter of a second more.
 */
export function idleDelayMs(n: number): number {
  return Math.min(2 ** n, 250);
}

/** 2026: Lambda sends an invocation id with each event and wants it back on the answer. */
function echoInvocationId(event: NextEvent, sent: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const invocationId = event.headers[headers.invocationId];
  if (typeof invocationId === "string") sent[headers.invocationId] = invocationId;
  return sent;
}

/**
 * What an answer to `/response` or `/error` means. 202: accepted. 413: the response was too large, Lambda has
 * already failed the invocation (posting `/error` now would get a 403). 400/403/410 and other 4xx: this
 * answer was refused (410: too late, the invocation timed out); the runtime logs it and takes the next event.
 * 5xx: the sandbox is broken; thrown.
 */
export function checkAnswer(method: string, path: string, reply: Reply): void {
  if (reply.status >= 200 && reply.status < 300) return;
  const what = `${method} ${path} answered ${reply.status}`;
  if (reply.status >= 500 || reply.status < 400) throw new RuntimeApiError(`${what}: ${text(reply)}`, reply.status);
  const why = reply.status === 413 ? " (response too large: Lambda has already failed this invocation)" : reply.status === 410 ? " (too late: the invocation is over)" : "";
  console.error(`micro-lambda: ${what}${why}: ${text(reply)}`);
}

function text(reply: Reply): string {
  return reply.body.toString("utf8", 0, Math.min(reply.body.length, 500)).trim() || "(empty body)";
}

/** Header values must be visible ASCII; an error name can be anything. */
function headerSafe(value: string): string {
  return value.replace(/[\r\n\t]+/g, " ").replace(/[^\x20-\x7e]/g, "").trim() || "Unknown";
}
