// The invoke loop: take an event, run the handler, answer, repeat. A handler's failure is data, reported to /error.
import { createContext, type Context, type FunctionInfo } from "./context.ts";
import { InvocationError, JSONStringifyError, toErrorResponse, xrayErrorCause } from "../wire/errors.ts";
import { invokeStoreKeys, type InvokeStore } from "./invoke-store.ts";
import type { FunctionLog } from "./logging.ts";
import { headers, type ErrorResponse } from "../wire/protocol.ts";
import type { NextEvent, RuntimeApi } from "./runtime-api.ts";
import { isStreaming, ResponseStream, type StreamingHandler } from "./streaming.ts";

export type Handler<TEvent = any, TResult = any> = (event: TEvent, context: Context) => TResult | Promise<TResult>;

/** How one invocation ended: the response bytes (empty for a streaming handler: its bytes went out as it wrote them), or the error JSON and its X-Ray cause. */
export type Outcome = { ok: true; body: string } | { ok: false; error: ErrorResponse; xrayCause?: string };

export interface LoopState {
  info: FunctionInfo;
  /** Events taken from /next and not yet answered (with the response stream of a streaming handler), so a crash can still answer them. */
  inFlight: Map<NextEvent, ResponseStream | undefined>;
  /** The current invocation's request id, trace id and tenant id, for code that is not handed the context (and for the log lines). */
  invokeStore: InvokeStore;
  log: FunctionLog;
  /** With one loop, sets `_X_AMZN_TRACE_ID` (see trace-variable.ts for why it is not a plain assignment). */
  setTraceVariable?: (value: string | undefined) => void;
}

/** Polls /next forever; returns only by throwing a `RuntimeApiError`, which means the sandbox is broken. */
export async function loop(api: RuntimeApi, handler: Handler | StreamingHandler, state: LoopState): Promise<never> {
  for (;;) {
    const event = await api.next();
    // A streaming handler answers while it runs: its streamed POST /response opens at its first write.
    const stream = isStreaming(handler) ? new ResponseStream((contentType) => api.respondStreaming(event, contentType)) : undefined;
    state.inFlight.set(event, stream);
    const outcome = await invoke(handler, event, state, stream);
    if (!state.inFlight.delete(event)) continue; // already answered by the crash handler, which is exiting
    await inScope(event, state, () => answer(api, event, outcome, stream)); // a refused answer is logged with its request id
  }
}

/** Sends an outcome: `/response` or `/error`; for a streaming handler, the end of its streamed `/response`, with a failure in the trailers once bytes have gone out. */
export function answer(api: RuntimeApi, event: NextEvent, outcome: Outcome, stream?: ResponseStream): Promise<void> {
  if (stream && (outcome.ok || stream.started)) return stream.finish(outcome.ok ? undefined : outcome.error);
  return outcome.ok ? api.respond(event, outcome.body) : api.fail(event, outcome.error, outcome.xrayCause);
}

/** Runs the handler on one event. Never throws: every failure becomes an error outcome. */
export function invoke(handler: Handler | StreamingHandler, event: NextEvent, state: LoopState, stream?: ResponseStream): Promise<Outcome> {
  // Everything, from reading the headers to the Invoke Error line, runs as this invocation, so every line has its request id.
  return inScope(event, state, async (): Promise<Outcome> => {
    try {
      const { context, settled } = createContext(event, state.info);
      const payload = parseEvent(event.body);
      const result = await Promise.race([isStreaming(handler) ? handler(payload, stream!, context) : handler(payload, context), settled]);
      if (stream) await stream.complete(); // what broke the stream (the size limit, a destroy) fails the invocation
      return { ok: true, body: stream ? "" : serialise(result) };
    } catch (thrown) {
      state.log.error("Invoke Error", thrown);
      return { ok: false, error: toErrorResponse(thrown), xrayCause: xrayErrorCause(thrown) };
    }
  });
}

/** Runs `run` as the current invocation, for code that is not handed the context (the AWS SDK's X-Ray header, `traceId()`). */
function inScope<T>(event: NextEvent, state: LoopState, run: () => T): T {
  const traceId = event.headers[headers.traceId] as string | undefined;
  // Lambda's X-Ray convention: the trace id of the current invocation, or nothing when it has none. With several
  // invocations at once the environment can hold only one trace id, so it is left alone (no setTraceVariable).
  state.setTraceVariable?.(traceId || undefined);
  const tenantId = event.headers[headers.tenantId] as string | undefined;
  return state.invokeStore.run({ [invokeStoreKeys.requestId]: event.requestId, [invokeStoreKeys.traceId]: traceId, [invokeStoreKeys.tenantId]: tenantId }, run);
}

function parseEvent(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (cause) {
    throw new InvocationError("Runtime.MalformedEvent", `the event is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** As the managed Node.js runtime: `JSON.stringify`, with `undefined` (and anything else it drops) sent as `null`. */
function serialise(result: unknown): string {
  try {
    return JSON.stringify(result) ?? "null";
  } catch (cause) {
    throw new JSONStringifyError({ cause });
  }
}
