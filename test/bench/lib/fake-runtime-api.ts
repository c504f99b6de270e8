// A loopback fake of the Runtime API built for speed (a raw `net` server answering with pre-built bytes), so that
// the runtime under test, not the server, bounds what the bench measures; it records when each request arrives.
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";

export interface FakeOptions {
  /** Events to serve. The `/next` after the last one is held (never answered): the run is over. */
  invocations: number;
  /** Hold the first `/next` until `release()` (to read the runtime's memory after init). */
  holdFirst?: boolean;
  /** The event body. */
  event?: string;
  /** Resolve `checkpoint` when this many answers are in (to read the runtime's memory mid-run). */
  checkpoint?: number;
}

export interface FakeRuntimeApi {
  /** `127.0.0.1:PORT`, for `AWS_LAMBDA_RUNTIME_API`. */
  readonly address: string;
  /** `performance.now()` when the first `GET /next` request line arrived. */
  readonly firstNext: Promise<number>;
  /** Resolves with `performance.now()` when the `/next` after the last invocation arrives (all answers are in). */
  readonly done: Promise<number>;
  /** Resolves with `performance.now()` when `options.checkpoint` answers are in (never without one). */
  readonly checkpoint: Promise<number>;
  /** Answers the held first `/next`; resolves with `performance.now()` at that moment. */
  release(): number;
  /** Per invocation: milliseconds from the event written to its `/response` (or `/error`) fully read. */
  readonly overheadMs: Float64Array;
  /** Per invocation: milliseconds from the `202` written to the next `/next` read (the runtime's turnaround). */
  readonly turnaroundMs: Float64Array;
  /** Invocations answered with `/error` (a no-op bench handler should never fail). */
  readonly errors: number;
  /** Bodies posted to `/runtime/init/error`. */
  readonly initErrors: string[];
  /** Bytes of one `/next` answer plus one `/response` answer: lets a pipelining client count completed pairs. */
  readonly pairBytes: number;
  close(): Promise<void>;
}

const NEXT = "/2018-06-01/runtime/invocation/next";
const INIT_ERROR = "/2018-06-01/runtime/init/error";
const INVOCATION = "/2018-06-01/runtime/invocation/";
// Request ids are UUID-shaped with the invocation's index in the last 12 digits, so an answer's path tells
// which event it answers (whatever connection it came on) without a map.
const ID_PREFIX = "8e0c2f4a-5b1d-4c3e-9f00-";
const ID_DIGITS = 12;

/** Starts the fake on 127.0.0.1, port 0. */
export async function startFakeRuntimeApi(options: FakeOptions): Promise<FakeRuntimeApi> {
  const invocations = options.invocations;
  const eventBody = Buffer.from(options.event ?? '{"name":"bench"}');
  // A deadline far enough ahead for any bench run, fixed so every answer has the same length.
  const deadline = String(Date.now() + 15 * 60_000);
  const eventHead =
    "HTTP/1.1 200 OK\r\n" +
    "Content-Type: application/json\r\n" +
    `Lambda-Runtime-Aws-Request-Id: ${ID_PREFIX}${"0".repeat(ID_DIGITS)}\r\n` +
    `Lambda-Runtime-Deadline-Ms: ${deadline}\r\n` +
    "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n" +
    `Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be${"0".repeat(ID_DIGITS)};Parent=53995c3f42cd8ad8;Sampled=0\r\n` +
    `Content-Length: ${eventBody.length}\r\n\r\n`;
  const eventTemplate = Buffer.concat([Buffer.from(eventHead, "latin1"), eventBody]);
  const idOffset = eventHead.indexOf(ID_PREFIX) + ID_PREFIX.length;
  // As on Lambda, every invocation has its own trace id too (a runtime that keeps each one would grow).
  const traceOffset = eventHead.indexOf("Root=1-5759e988-bd862e3fe1be") + "Root=1-5759e988-bd862e3fe1be".length;
  const accepted = Buffer.from('HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n', "latin1");
  const notFound = Buffer.from("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "latin1");
  const continueLine = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1");

  const overheadMs = new Float64Array(invocations);
  const turnaroundMs = new Float64Array(invocations);
  const sentAt = new Float64Array(invocations);
  const initErrors: string[] = [];
  let served = 0;
  let answered = 0;
  let errors = 0;
  let lastAcceptedAt = -1;
  let held: Socket | undefined;
  let firstSeen = false;
  let released = !options.holdFirst;
  let resolveFirst!: (t: number) => void;
  let resolveDone!: (t: number) => void;
  let resolveCheckpoint!: (t: number) => void;
  const checkpoint = new Promise<number>((resolve) => (resolveCheckpoint = resolve));
  const firstNext = new Promise<number>((resolve) => (resolveFirst = resolve));
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  function serveEvent(socket: Socket): void {
    const event = Buffer.allocUnsafe(eventTemplate.length);
    eventTemplate.copy(event);
    const digits = String(served).padStart(ID_DIGITS, "0");
    event.write(digits, idOffset, "latin1");
    event.write(digits, traceOffset, "latin1");
    sentAt[served++] = performance.now();
    socket.write(event);
  }

  function onNext(socket: Socket, now: number): void {
    if (!firstSeen) {
      firstSeen = true;
      resolveFirst(now);
      if (!released) return void (held = socket);
    }
    if (lastAcceptedAt >= 0 && answered <= invocations) turnaroundMs[answered - 1] = now - lastAcceptedAt;
    if (served < invocations) return serveEvent(socket);
    held = socket; // the run is over: this /next is never answered, as Lambda does while no event comes
    resolveDone(now);
  }

  function onAnswer(socket: Socket, path: string, isError: boolean, now: number): void {
    const index = Number(path.slice(INVOCATION.length + ID_PREFIX.length, INVOCATION.length + ID_PREFIX.length + ID_DIGITS));
    if (Number.isInteger(index) && index >= 0 && index < served) overheadMs[index] = now - sentAt[index];
    if (isError) errors++;
    answered++;
    if (answered === options.checkpoint) resolveCheckpoint(now);
    lastAcceptedAt = performance.now();
    socket.write(accepted);
  }

  function onRequest(socket: Socket, method: string, path: string, body: Buffer, now: number): void {
    if (method === "GET" && path === NEXT) return onNext(socket, now);
    if (method === "POST" && path.startsWith(INVOCATION)) {
      if (path.endsWith("/response")) return onAnswer(socket, path, false, now);
      if (path.endsWith("/error")) return onAnswer(socket, path, true, now);
    }
    if (method === "POST" && path === INIT_ERROR) {
      initErrors.push(body.toString());
      return void socket.write(accepted);
    }
    socket.write(notFound);
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let continueSent = false;
    socket.on("data", (chunk: Buffer) => {
      const now = performance.now();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let consumed = 0;
      for (;;) {
        const request = parseRequest(pending, consumed);
        if (request === undefined) break;
        if (request === "continue") {
          if (!continueSent) socket.write(continueLine);
          continueSent = true;
          break;
        }
        continueSent = false;
        consumed = request.end;
        onRequest(socket, request.method, request.path, request.body, now);
      }
      pending = consumed === pending.length ? Buffer.alloc(0) : pending.subarray(consumed);
    });
    socket.on("error", () => {}); // a runtime killed mid-request resets its connection: expected here
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    address: `127.0.0.1:${port}`,
    firstNext,
    done,
    checkpoint,
    release() {
      released = true;
      const now = performance.now();
      if (held) {
        const socket = held;
        held = undefined;
        if (served < invocations) serveEvent(socket);
        else resolveDone(now);
      }
      return now;
    },
    overheadMs,
    turnaroundMs,
    get errors() {
      return errors;
    },
    initErrors,
    pairBytes: eventTemplate.length + accepted.length,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface Parsed {
  method: string;
  path: string;
  body: Buffer;
  end: number;
}

/**
 * One HTTP/1.1 request from `buffer` at `start`: undefined when it is not all there yet, "continue" when the
 * client waits for `100 Continue` before sending its body (curl does for large bodies). Bodies come with
 * Content-Length or chunked.
 */
function parseRequest(buffer: Buffer, start: number): Parsed | "continue" | undefined {
  const headEnd = buffer.indexOf("\r\n\r\n", start, "latin1");
  if (headEnd < 0) return undefined;
  const head = buffer.toString("latin1", start, headEnd);
  const lineEnd = head.indexOf("\r\n");
  const requestLine = lineEnd < 0 ? head : head.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(" ");
  const method = requestLine.slice(0, firstSpace);
  const path = requestLine.slice(firstSpace + 1, requestLine.lastIndexOf(" "));
  let contentLength = 0;
  let chunked = false;
  let expectContinue = false;
  if (lineEnd >= 0) {
    for (const line of head.slice(lineEnd + 2).split("\r\n")) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      if (name === "content-length") contentLength = Number(line.slice(colon + 1));
      else if (name === "transfer-encoding") chunked = line.slice(colon + 1).toLowerCase().includes("chunked");
      else if (name === "expect") expectContinue = line.slice(colon + 1).trim().toLowerCase() === "100-continue";
    }
  }
  const bodyStart = headEnd + 4;
  if (!chunked) {
    if (buffer.length < bodyStart + contentLength) return expectContinue && buffer.length === bodyStart ? "continue" : undefined;
    return { method, path, body: buffer.subarray(bodyStart, bodyStart + contentLength), end: bodyStart + contentLength };
  }
  const parts: Buffer[] = [];
  let at = bodyStart;
  for (;;) {
    const sizeEnd = buffer.indexOf("\r\n", at, "latin1");
    if (sizeEnd < 0) return expectContinue && at === bodyStart && buffer.length === bodyStart ? "continue" : undefined;
    const size = parseInt(buffer.toString("latin1", at, sizeEnd), 16);
    if (size === 0) {
      // The last chunk, then trailer lines (the streaming error trailers), then an empty line.
      const after = sizeEnd + 2;
      if (buffer.length < after + 2) return undefined;
      const end = buffer.indexOf("\r\n", after, "latin1") === after ? after + 2 : buffer.indexOf("\r\n\r\n", after, "latin1") + 4;
      if (end < after) return undefined;
      return { method, path, body: Buffer.concat(parts), end };
    }
    if (buffer.length < sizeEnd + 2 + size + 2) return undefined;
    parts.push(buffer.subarray(sizeEnd + 2, sizeEnd + 2 + size));
    at = sizeEnd + 2 + size + 2;
  }
}
