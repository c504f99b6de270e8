// The invoke loop: take an event, run the handler, answer, repeat. A handler's failure is data, reported to /error.
import type { AsyncLocalStorage } from "node:async_hooks";
import { createContext, type Context, type FunctionInfo } from "./context.ts";
import { InvocationError, toErrorResponse } from "./errors.ts";
import { headers, type ErrorResponse } from "./protocol.ts";
import type { NextEvent, RuntimeApi } from "./runtime-api.ts";

export type Handler<TEvent = any, TResult = any> = (event: TEvent, context: Context) => TResult | Promise<TResult>;

/** How one invocation ended: the response bytes, or the error JSON. */
export type Outcome = { ok: true; body: string } | { ok: false; error: ErrorResponse };

export interface LoopState {
  info: FunctionInfo;
  /** Events taken from /next and not yet answered, so a crash can still answer them. */
  inFlight: Set<NextEvent>;
  /** With more than one loop in the process, the trace id lives here instead of in `_X_AMZN_TRACE_ID`. */
  traceIds?: AsyncLocalStorage<string | undefined>;
}

/** Polls /next forever; returns only by throwing a `RuntimeApiError`, which means the sandbox is broken. */
export async function loop(api: RuntimeApi, handler: Handler, state: LoopState): Promise<never> {
  for (;;) {
    const event = await api.next();
    state.inFlight.add(event);
    const outcome = await invoke(handler, event, state);
    if (!state.inFlight.delete(event)) continue; // already answered by the crash handler, which is exiting
    if (outcome.ok) await api.respond(event, outcome.body);
    else await api.fail(event, outcome.error);
  }
}

/** Runs the handler on one event. Never throws: every failure becomes an error outcome. */
export async function invoke(handler: Handler, event: NextEvent, state: LoopState): Promise<Outcome> {
  const traceId = event.headers[headers.traceId] as string | undefined;
  try {
    const { context, settled } = createContext(event, state.info);
    const payload = parseEvent(event.body);
    let result: unknown;
    if (state.traceIds) {
      result = await state.traceIds.run(traceId, () => Promise.race([handler(payload, context), settled]));
    } else {
      // Lambda's X-Ray convention: the trace id of the current invocation, or nothing when it has none.
      if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
      else delete process.env._X_AMZN_TRACE_ID;
      result = await Promise.race([handler(payload, context), settled]);
    }
    return { ok: true, body: serialise(result) };
  } catch (thrown) {
    const error = toErrorResponse(thrown);
    console.error(`${event.requestId}\tERROR\tInvoke Error\t${JSON.stringify(error)}`);
    return { ok: false, error };
  }
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
    throw new InvocationError("Runtime.SerializationError", `the handler's result cannot be serialised to JSON: ${(cause as Error).message}`, { cause });
  }
}
