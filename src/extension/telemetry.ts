// The Telemetry API from an extension's side: check a subscription, start the listener Lambda delivers to, subscribe, and hand each batch to a callback.
//
// Call it from an extension's init (after registration, before the first event/next: Lambda refuses
// subscriptions once init is over). Lambda then POSTs JSON arrays of `{time, type, record}` to the listener:
// the function's stdout/stderr lines (`function`), extensions' lines (`extension`), and `platform.*` records.
// Batches go out one at a time, when `maxItems` or `maxBytes` is reached or `timeoutMs` has passed.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readBody, tooLarge } from "../wire/body.ts";
import { RuntimeApiError } from "../wire/errors.ts";
import { httpClient } from "../wire/http.ts";
import { headers, telemetryPaths } from "../wire/protocol.ts";

export type TelemetryType = "platform" | "function" | "extension";

/** When Lambda sends a batch: whichever limit is reached first. */
export interface Buffering {
  /** 1,000 to 10,000 events; default 1,000. */
  maxItems?: number;
  /** 262,144 to 1,048,576 bytes; default 262,144. */
  maxBytes?: number;
  /** 25 to 30,000 ms; default 1,000. */
  timeoutMs?: number;
}

export interface TelemetryOptions {
  /** Default: `platform` and `function`. */
  types?: TelemetryType[];
  buffering?: Buffering;
  /** Default `2022-12-13`. Lambda Managed Instances require `2025-01-29`. */
  schemaVersion?: "2022-07-01" | "2022-12-13" | "2025-01-29";
  /** `logs` subscribes through the older Logs API (`PUT /2020-08-15/logs`), which Managed Instances do not have. */
  api?: "telemetry" | "logs";
  /** The listener's port; default 0, any free one (the subscription carries the one it got). Not 9001: that is Lambda's. */
  port?: number;
  /** The address the listener binds; by default the one `sandbox.localdomain` resolves to (see `listenHost`). */
  host?: string;
  /** Each batch, in order. The next batch waits until this settles; a throw answers Lambda with 500. */
  onEvents(events: TelemetryEvent[]): void | Promise<void>;
}

export interface TelemetryListener {
  /** The destination Lambda was given: `http://sandbox.localdomain:PORT/`. */
  uri: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

// ---- what Lambda sends (schema 2022-12-13; fields Lambda may leave out are optional) -----------------------

interface Tracing {
  spanId?: string;
  type: string;
  value: string;
}

export type RuntimeDoneStatus = "success" | "failure" | "error" | "timeout";

/** One element of a batch, told apart by `type`. Log lines are strings, or objects when the function logs JSON. */
export type TelemetryEvent =
  | { time: string; type: "function" | "extension"; record: string | Record<string, unknown> }
  | { time: string; type: "platform.initStart"; record: { initializationType: string; phase: string; runtimeVersion?: string; functionName?: string; functionVersion?: string } }
  | { time: string; type: "platform.initRuntimeDone"; record: { initializationType: string; phase: string; status: RuntimeDoneStatus; errorType?: string } }
  | { time: string; type: "platform.initReport"; record: { initializationType: string; phase: string; status?: RuntimeDoneStatus; metrics: { durationMs: number } } }
  | { time: string; type: "platform.start"; record: { requestId: string; version?: string; tracing?: Tracing } }
  | { time: string; type: "platform.runtimeDone"; record: { requestId: string; status: RuntimeDoneStatus; errorType?: string; metrics?: { durationMs: number; producedBytes?: number }; tracing?: Tracing } }
  | {
      time: string;
      type: "platform.report";
      record: {
        requestId: string;
        status: RuntimeDoneStatus;
        errorType?: string;
        metrics: { durationMs: number; billedDurationMs: number; memorySizeMB: number; maxMemoryUsedMB: number; initDurationMs?: number };
        tracing?: Tracing;
      };
    }
  | { time: string; type: "platform.extension"; record: { name: string; state: string; events: string[]; errorType?: string } }
  | { time: string; type: "platform.telemetrySubscription"; record: { name: string; state: string; types: string[] } }
  | { time: string; type: "platform.logsDropped"; record: { reason: string; droppedRecords: number; droppedBytes: number } }
  // The Logs API's names for the end of an invocation and for a subscription.
  | { time: string; type: "platform.end"; record: { requestId: string } }
  | { time: string; type: "platform.logsSubscription"; record: { name: string; state: string; types: string[] } };

const limits = {
  maxItems: [1000, 10_000, 1000],
  maxBytes: [262_144, 1_048_576, 262_144],
  timeoutMs: [25, 30_000, 1000],
} as const;
const knownTypes: readonly TelemetryType[] = ["platform", "function", "extension"];
/** Lambda's batches are at most `maxBytes` (1 MiB); anything far bigger is not Lambda. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/**
 * Starts the listener, then subscribes `registration` (`{id, address}` from the extension's registration)
 * to the Telemetry API with it as the destination. Options are checked before anything is sent, so a wrong
 * buffering limit is an error here, not a 400 from Lambda. Rejects with `RuntimeApiError` when Lambda
 * refuses the subscription (after init it answers 403).
 */
export async function subscribeTelemetry(registration: { id: string; address: string }, options: TelemetryOptions): Promise<TelemetryListener> {
  const body = subscriptionBody(options);
  const listener = await listen(options);
  const path = options.api === "logs" ? telemetryPaths.logs : telemetryPaths.telemetry;
  body.destination = { protocol: "HTTP", URI: listener.uri };
  // PUT /2022-07-01/telemetry (or /2020-08-15/logs) — during init, with the extension's identifier.
  const http = httpClient(registration.address);
  let status = 0;
  let answer = "";
  try {
    const reply = await http.request("PUT", path, { [headers.extensionIdentifier]: registration.id, "content-type": "application/json" }, JSON.stringify(body));
    status = reply.status;
    answer = reply.body.toString("utf8", 0, Math.min(reply.body.length, 500)).trim();
  } catch (cause) {
    await listener.close();
    throw new RuntimeApiError(`the Telemetry API at ${registration.address} cannot be reached (PUT ${path}): ${(cause as Error).message}`, undefined, { cause });
  } finally {
    http.close();
  }
  if (status !== 200) {
    await listener.close();
    throw new RuntimeApiError(`PUT ${path} answered ${status}: ${answer || "(empty body)"}`, status);
  }
  return listener;
}

/** The subscription's JSON, checked against Lambda's limits. Throws a `RangeError` or `TypeError` naming the option. */
export function subscriptionBody(options: Omit<TelemetryOptions, "onEvents">): { schemaVersion: string; types: TelemetryType[]; buffering: Required<Buffering>; destination?: { protocol: "HTTP"; URI: string } } {
  const types = options.types ?? ["platform", "function"];
  if (!Array.isArray(types) || types.length === 0) throw new TypeError("telemetry types must be a non-empty array of platform, function, extension");
  for (const type of types) {
    if (!knownTypes.includes(type)) throw new TypeError(`telemetry type ${JSON.stringify(type)} is not one of platform, function, extension`);
  }
  const buffering = {} as Required<Buffering>;
  for (const key of Object.keys(limits) as (keyof Buffering)[]) {
    const [min, max, fallback] = limits[key];
    const value = options.buffering?.[key] ?? fallback;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`telemetry buffering.${key} must be an integer from ${min} to ${max} (Lambda's limits), got ${JSON.stringify(value)}`);
    }
    buffering[key] = value;
  }
  const schemaVersion = options.api === "logs" ? "2021-03-18" : (options.schemaVersion ?? "2022-12-13");
  if (!["2022-07-01", "2022-12-13", "2025-01-29", "2021-03-18"].includes(schemaVersion)) throw new RangeError(`telemetry schemaVersion ${JSON.stringify(schemaVersion)} is not one Lambda knows`);
  return { schemaVersion, types: [...types], buffering };
}

/**
 * Where the listener binds when the caller does not say. Lambda delivers to `sandbox.localdomain`, a name that
 * resolves inside the sandbox to a link-local address private to it (169.254.79.130 as extensions have logged
 * it), not to 127.0.0.1: a listener on loopback would never be reached there. So bind what the name resolves
 * to, which, like loopback and unlike 0.0.0.0, is reachable only from inside the sandbox (the listener has no
 * authentication). Where the name does not resolve (a laptop, the emulator, CI), bind 127.0.0.1: the
 * micro-lambda emulator delivers `sandbox.localdomain` destinations there.
 */
export async function listenHost(): Promise<string> {
  try {
    const { address } = await process.getBuiltinModule("node:dns").promises.lookup("sandbox.localdomain", { family: 4 });
    return address;
  } catch {
    return "127.0.0.1";
  }
}

async function listen(options: TelemetryOptions): Promise<TelemetryListener> {
  if (typeof options.onEvents !== "function") throw new TypeError("subscribeTelemetry needs an onEvents(events) function");
  if (options.port === 9001) throw new RangeError("the telemetry listener cannot use port 9001: Lambda's Runtime API has it");
  const host = options.host ?? (await listenHost());
  const http = process.getBuiltinModule("node:http");
  const server = http.createServer((req, res) => handle(req, res, options.onEvents));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    uri: `http://sandbox.localdomain:${port}/`,
    host,
    port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The one place every request to the listener goes through: whatever goes wrong while serving it ends as a 500
 * for that request and a line on stderr, and the listener takes the next batch.
 */
function handle(req: IncomingMessage, res: ServerResponse, onEvents: TelemetryOptions["onEvents"]): void {
  receive(req, res, onEvents).catch((thrown: unknown) => {
    const message = `${req.method} ${req.url}: the telemetry listener failed: ${describe(thrown)}`;
    try {
      console.error(`micro-lambda telemetry: ${message}`);
    } catch {
      // stderr itself may be what failed: the answer below still says why
    }
    if (res.headersSent || res.destroyed) return void res.destroy();
    req.resume();
    answer(res, 500, { errorType: "ListenerFailed", errorMessage: message });
  });
}

// POST / from Lambda: one batch. 200 when the callback took it; 400 when it is not a batch, 413 when it is far larger
// than Lambda sends (and the listener goes on); 500 when the callback threw.
async function receive(req: IncomingMessage, res: ServerResponse, onEvents: TelemetryOptions["onEvents"]): Promise<void> {
  const body = await readBody(req, MAX_BATCH_BYTES).catch(() => undefined);
  if (body === undefined) return void res.destroy(); // the sender hung up midway: there is no one to answer
  if (body === tooLarge) {
    req.resume(); // the rest is read and dropped, never held
    const message = `a batch larger than ${MAX_BATCH_BYTES} bytes (Lambda's are at most 1 MiB)`;
    console.error(`micro-lambda telemetry: refused ${message} (413)`);
    return answer(res, 413, { errorType: "BatchTooLarge", errorMessage: message });
  }
  const events = req.method === "POST" ? parseBatch(body) : `${req.method} with ${body.length} bytes, not a POST`;
  if (typeof events === "string") {
    console.error(`micro-lambda telemetry: refused a malformed batch (400): ${events}`);
    return answer(res, 400, { errorType: "MalformedBatch", errorMessage: events });
  }
  try {
    await onEvents(events);
  } catch (thrown) {
    const message = describe(thrown);
    console.error(`micro-lambda telemetry: onEvents failed on a batch of ${events.length} (answered 500): ${message}`);
    return answer(res, 500, { errorType: "CallbackFailed", errorMessage: message });
  }
  res.writeHead(200, { "content-type": "application/json" }).end('"OK"');
}

function answer(res: ServerResponse, status: number, error: { errorType: string; errorMessage: string }): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(error));
}

/** What a callback threw, as text, whatever it was (an Error, a string, an object whose getters throw). */
function describe(thrown: unknown): string {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown);
  } catch {
    return "a thrown value that cannot be read";
  }
}

/** The events of a batch, or why it is not one: a JSON array of objects with a string `time` and `type` and a `record`. */
export function parseBatch(body: Buffer): TelemetryEvent[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  if (!Array.isArray(parsed)) return `not a JSON array but ${parsed === null ? "null" : typeof parsed}`;
  for (const [index, event] of parsed.entries()) {
    if (typeof event !== "object" || event === null || typeof event.time !== "string" || typeof event.type !== "string" || !("record" in event)) {
      return `element ${index} is not {time, type, record}: ${JSON.stringify(event)?.slice(0, 200)}`;
    }
  }
  return parsed as TelemetryEvent[];
}
