// The Runtime API the function's runtime talks to: GET /next, POST /response (buffered or streamed), /error and /init/error, answered as Lambda answers them.
//
// The paths are literals, not imported from src/wire/protocol.ts, on purpose: the emulator is the independent other
// side of the protocol, so a wrong constant in the runtime fails a test instead of being copied.
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, parseJson, pathSegment, printable, readBody, reply, type Route } from "./http.ts";
import type { ErrorJson, Invocation, InvokeResult, StreamHead } from "./index.ts";

/** Lambda's (and aws-lambda-rie's) limit on a buffered response, and on an error: 6 MiB and 100 bytes. */
export const MAX_RESPONSE_BYTES = 6_291_556;
/** Lambda's limit on a streamed response. */
export const MAX_STREAMED_BYTES = 200 * 1024 * 1024;

/** What the Runtime API needs from the emulator. */
export interface RuntimeSide {
  /** GET /next: `res` waits for the next event. */
  next(res: ServerResponse): void;
  /** The invocation the runtime may answer now. */
  running(requestId: string): Invocation | undefined;
  /** It ran, and timed out: a late answer gets 410. */
  timedOut(requestId: string): boolean;
  /** The answer is in: how the invocation ends. */
  finish(invocation: Invocation, ok: boolean, payload: Buffer, extra?: Partial<InvokeResult>): void;
  /** POST /init/error: recorded, or false when init is over. */
  initError(error: ErrorJson, errorType: string): boolean;
}

export function runtimeApi(side: RuntimeSide): Route {
  return (req, res) => {
    const url = req.url ?? "/";
    let match: RegExpMatchArray | null;
    if (req.method === "GET" && url === "/2018-06-01/runtime/invocation/next") return Promise.resolve(side.next(res));
    if (req.method === "POST" && (match = url.match(/^\/2018-06-01\/runtime\/invocation\/([^/?]+)\/(response|error)$/))) {
      return answer(side, req, res, match[1]!, match[2] as "response" | "error");
    }
    if (req.method === "POST" && url === "/2018-06-01/runtime/init/error") return initError(side, req, res);
    return undefined;
  };
}

/** The invocation `raw` (the path's request id) names, or the answer Lambda gives when there is none. */
function invocationFor(side: RuntimeSide, res: ServerResponse, raw: string): Invocation | undefined {
  const requestId = pathSegment(raw);
  if (requestId === undefined) throw new HttpError(400, "InvalidRequestID", `the request id in the path is not percent-encoded correctly: ${printable(raw)}`);
  const invocation = side.running(requestId);
  if (invocation) return invocation;
  if (side.timedOut(requestId)) reply(res, 410, { errorType: "InvocationGone", errorMessage: `invocation ${requestId} has timed out` });
  else reply(res, 400, { errorType: "InvalidRequestID", errorMessage: `no invocation ${requestId} is running` });
  return undefined;
}

// POST /2018-06-01/runtime/invocation/{id}/response and /error
async function answer(side: RuntimeSide, req: IncomingMessage, res: ServerResponse, raw: string, kind: "response" | "error"): Promise<void> {
  if (kind === "response" && req.headers["lambda-runtime-function-response-mode"] === "streaming") return answerStream(side, req, res, raw);
  const { bytes, size } = await readBody(req, MAX_RESPONSE_BYTES);
  const invocation = invocationFor(side, res, raw);
  if (!invocation) return;
  const answerHeaders = { ...req.headers };
  if (size > MAX_RESPONSE_BYTES) {
    // An error over the limit too: the caller gets this, valid JSON, never a truncated body.
    const error = { errorType: "Function.ResponseSizeTooLarge", errorMessage: `Response payload size (${size} bytes) exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).` };
    side.finish(invocation, false, Buffer.from(JSON.stringify(error)), { answerHeaders, error });
    return reply(res, 413, { errorType: "RequestEntityTooLarge", errorMessage: `Exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).` });
  }
  const errorTypeHeader = req.headers["lambda-runtime-function-error-type"] as string | undefined;
  reply(res, 202, { status: "OK" });
  // What the function printed before answering is already in its stdout pipe, but this event loop may see the
  // answer first: give the pipes a turn so those lines land in this invocation's logs.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  side.finish(invocation, kind === "response", bytes, { answerHeaders, errorTypeHeader });
}

/**
 * A streamed /response: each chunk goes to the caller as it arrives, and the runtime is not read further until
 * the caller has taken it (a slow reader slows the function, as on Lambda). A failure after the first byte
 * comes in the trailers, the body one base64 JSON.
 */
async function answerStream(side: RuntimeSide, req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
  const invocation = invocationFor(side, res, raw);
  if (!invocation) return void req.resume();
  const requestId = invocation.requestId;
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
      if (!side.running(requestId)) continue; // timed out meanwhile: drain
      if (size > MAX_STREAMED_BYTES) {
        const error = { errorType: "Function.ResponseSizeTooLarge", errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_STREAMED_BYTES} bytes).` };
        side.finish(invocation, false, Buffer.concat(collected), { error, answerHeaders, streamed: true, head });
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
  if (!side.running(requestId)) return reply(res, 410, { errorType: "InvocationGone", errorMessage: `invocation ${requestId} has timed out` });
  if (prelude) await deliver(prelude); // no delimiter: not a prelude after all, handed over raw
  const errorTypeHeader = req.trailers["lambda-runtime-function-error-type"];
  const errorBody = req.trailers["lambda-runtime-function-error-body"];
  const extra: Partial<InvokeResult> = { answerHeaders, streamed: true, head };
  if (errorTypeHeader !== undefined || errorBody !== undefined) {
    extra.errorTypeHeader = errorTypeHeader;
    extra.error = (parseJson(Buffer.from(errorBody ?? "", "base64")) as ErrorJson | undefined) ?? { errorType: errorTypeHeader ?? "Function.Unknown", errorMessage: "" };
  } else if (!head) await deliver(Buffer.alloc(0)); // an empty response has a head too
  extra.head = head;
  side.finish(invocation, extra.error === undefined, Buffer.concat(collected), extra);
  reply(res, 202, { status: "OK" });
}

// POST /2018-06-01/runtime/init/error
async function initError(side: RuntimeSide, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { bytes, size } = await readBody(req, MAX_RESPONSE_BYTES);
  const errorType = (req.headers["lambda-runtime-function-error-type"] as string | undefined) ?? "Runtime.Unknown";
  const parsed = size > MAX_RESPONSE_BYTES ? undefined : (parseJson(bytes) as ErrorJson | undefined);
  const error = parsed ?? { errorType, errorMessage: size > MAX_RESPONSE_BYTES ? `the init error was ${size} bytes, over Lambda's ${MAX_RESPONSE_BYTES}` : bytes.toString() };
  if (!side.initError(error, errorType)) return reply(res, 403, { errorType: "InvalidStateTransition", errorMessage: "init is over" });
  reply(res, 202, { status: "OK" });
}
