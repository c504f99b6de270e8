// The one place every request to the emulator goes through: routes are tried in order, and whatever fails in one (a client that hangs up, a malformed path, a bug) becomes an HTTP error for that request and a log line, never a crash.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * A route answers the request when it is for it (the promise settles when it is done) and returns undefined when it
 * is not: the next route is tried.
 */
export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | undefined;

/** A failure with the HTTP answer it deserves. Thrown by routes; turned into that answer by the server. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
    /** Extra response headers (the Invoke API names its error type in `X-Amzn-ErrorType`). */
    readonly headers: Record<string, string> = {},
    /** The body, when it is not `{errorType, errorMessage}` (the Invoke API's errors are `{Type, message}`). */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** The request broke off before its body was whole: the client hung up mid-upload. Nobody is left to answer. */
export class BodyAborted extends Error {
  override readonly name = "BodyAborted";
}

/**
 * An HTTP server for `routes`, on which no request can take the process down: a route that throws or rejects gets
 * its request answered with the error (a 500 for an unexpected one), or its connection closed when the answer had
 * begun, and `log` gets one line naming the request. Malformed HTTP gets a 400 from Node, logged the same way.
 */
export function apiServer(routes: Route[], log: (text: string) => void): Server {
  const server = createServer((req, res) => void handle(routes, req, res, log));
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code !== "ECONNRESET") log(`micro-lambda emulator: a malformed request (${error.code ?? error.message}): answered 400`);
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    else socket.destroy();
  });
  return server;
}

async function handle(routes: Route[], req: IncomingMessage, res: ServerResponse, log: (text: string) => void): Promise<void> {
  // A response whose socket is gone must not throw on write: there is simply nobody to read it.
  res.on("error", () => {});
  try {
    for (const route of routes) {
      const handling = route(req, res);
      if (handling) return await handling;
    }
    await readBody(req); // drained, so the connection can serve the next request
    throw new HttpError(404, "NotFound", `no such endpoint: ${req.method} ${req.url}`);
  } catch (error) {
    fail(req, res, error, log);
  }
}

function fail(req: IncomingMessage, res: ServerResponse, error: unknown, log: (text: string) => void): void {
  const where = `${req.method} ${printable(req.url ?? "")}`;
  if (error instanceof BodyAborted) {
    log(`micro-lambda emulator: ${where}: ${error.message}`);
    return void res.destroy();
  }
  const known = error instanceof HttpError;
  // An HttpError is an answer the route chose (404, 413...); anything else is a failure of the emulator itself.
  if (!known) log(`micro-lambda emulator: ${where} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  if (res.headersSent || res.destroyed) return void res.destroy();
  const status = known ? error.status : 500;
  const body = known && error.body !== undefined ? error.body : { errorType: known ? error.errorType : "Emulator.InternalError", errorMessage: known ? error.message : `the emulator failed on this request: ${String(error)}` };
  reply(res, status, body, known ? error.headers : {});
}

/** JSON answer. */
export function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

/**
 * Reads a request body, keeping at most `limit` bytes; the rest is read and counted, not kept, so the connection stays
 * usable and memory stays bounded. Rejects with BodyAborted when the client hangs up before the body is whole.
 */
export function readBody(req: IncomingMessage, limit = Infinity): Promise<{ bytes: Buffer; size: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (kept >= limit) return;
      const part = kept + chunk.length > limit ? chunk.subarray(0, limit - kept) : chunk;
      chunks.push(part);
      kept += part.length;
    });
    req.once("end", () => resolve({ bytes: Buffer.concat(chunks), size }));
    const aborted = () => reject(new BodyAborted(`the client hung up after ${size} bytes of the body${req.headers["content-length"] ? ` (Content-Length: ${req.headers["content-length"]})` : ""}`));
    req.once("error", aborted);
    req.once("close", () => req.complete || aborted());
  });
}

/** A path segment, percent-decoded; undefined when it holds a malformed escape (`%ZZ`). */
export function pathSegment(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** A string safe to print on one line of a log. */
export function printable(text: string, max = 200): string {
  const shown = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return shown.slice(1, -1);
}

/** The JSON in `bytes`, or undefined when they hold none. */
export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
