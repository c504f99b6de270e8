// The Extensions API client: register, wait for the next event, report a failure. One function per endpoint.
import { RuntimeApiError } from "../wire/errors.ts";
import { httpClient, type HttpClient, type Reply } from "../wire/http.ts";
import { errorContentType, extensionPaths, headers, type ErrorResponse } from "../wire/protocol.ts";

export type ExtensionEventType = "INVOKE" | "SHUTDOWN";

/** Sent to every extension registered for INVOKE when an invocation starts, at the same time as the function gets its event. */
export interface InvokeEvent {
  eventType: "INVOKE";
  /** When the invocation times out, in epoch milliseconds. */
  deadlineMs: number;
  requestId: string;
  invokedFunctionArn: string;
  tracing: { type: string; value: string };
}

/** Sent once, when Lambda is about to stop the sandbox; the extension must exit before `deadlineMs` or be killed. */
export interface ShutdownEvent {
  eventType: "SHUTDOWN";
  shutdownReason: "spindown" | "timeout" | "failure";
  /** When Lambda kills what is still running, in epoch milliseconds. */
  deadlineMs: number;
}

/** What `GET /extension/event/next` answers, told apart by `eventType`. */
export type ExtensionEvent = InvokeEvent | ShutdownEvent;

/** An extension's identity with Lambda, from `POST /extension/register`. */
export interface Registration {
  /** `Lambda-Extension-Identifier`: every later call carries it. */
  id: string;
  /** The name it registered with (the executable's file name, for an external extension). */
  name: string;
  /** The Runtime API address (`host:port`) it registered with; the Telemetry API is there too. */
  address: string;
  functionName: string;
  functionVersion: string;
  handler: string;
  /** Only when asked for with `Lambda-Extension-Accept-Feature: accountId`. */
  accountId?: string;
}

export interface ExtensionsApi {
  register(name: string, events: ExtensionEventType[]): Promise<Registration>;
  next(id: string): Promise<ExtensionEvent>;
  initError(id: string, error: ErrorResponse): Promise<void>;
  exitError(id: string, error: ErrorResponse): Promise<void>;
  readonly http: HttpClient;
}

/** A client for the Extensions API at `address` (`host:port`). Failures of the API itself are thrown as `RuntimeApiError`. */
export function extensionsApi(address: string): ExtensionsApi {
  const http = httpClient(address);

  async function call(method: string, path: string, sent: Record<string, string>, body?: string): Promise<Reply> {
    try {
      return await http.request(method, path, sent, body);
    } catch (cause) {
      throw new RuntimeApiError(`the Extensions API at ${address} cannot be reached (${method} ${path}): ${(cause as Error).message}`, undefined, { cause });
    }
  }

  // POST /extension/init/error and /extension/exit/error: the same body and headers, a different moment.
  async function reportError(path: string, id: string, error: ErrorResponse): Promise<void> {
    const sent = { "content-type": errorContentType, [headers.extensionIdentifier]: id, [headers.extensionErrorType]: headerSafe(error.errorType) };
    const reply = await call("POST", path, sent, JSON.stringify(error));
    if (reply.status < 200 || reply.status >= 300) throw new RuntimeApiError(`POST ${path} answered ${reply.status}: ${text(reply)}`, reply.status);
  }

  return {
    http,

    // POST /extension/register — during init only. An external extension must give its executable's file name.
    async register(name, events) {
      const sent = { [headers.extensionName]: name, [headers.extensionAcceptFeature]: "accountId", "content-type": "application/json" };
      const reply = await call("POST", extensionPaths.register, sent, JSON.stringify({ events }));
      const id = reply.headers[headers.extensionIdentifier];
      if (reply.status === 403) throw new RuntimeApiError(refusal(name, reply), 403);
      if (reply.status !== 200 || typeof id !== "string" || id === "") {
        throw new RuntimeApiError(`POST ${extensionPaths.register} answered ${reply.status}${id ? "" : " without an extension identifier"}: ${text(reply)}`, reply.status);
      }
      const info = json(reply) as Partial<Registration>;
      return {
        id,
        name,
        address,
        functionName: String(info.functionName ?? ""),
        functionVersion: String(info.functionVersion ?? ""),
        handler: String(info.handler ?? ""),
        ...(typeof info.accountId === "string" ? { accountId: info.accountId } : {}),
      };
    },

    // GET /extension/event/next — blocks, with no timeout, until the next INVOKE or SHUTDOWN. The sandbox may be frozen meanwhile.
    async next(id) {
      const reply = await call("GET", extensionPaths.next, { [headers.extensionIdentifier]: id });
      const event = reply.status === 200 ? (json(reply) as ExtensionEvent | undefined) : undefined;
      if (event?.eventType !== "INVOKE" && event?.eventType !== "SHUTDOWN") {
        throw new RuntimeApiError(`GET ${extensionPaths.next} answered ${reply.status} without an INVOKE or SHUTDOWN event: ${text(reply)}`, reply.status);
      }
      return event;
    },

    // POST /extension/init/error — a failure before the first event/next; the extension exits afterwards.
    initError(id, error) {
      return reportError(extensionPaths.initError, id, error);
    },

    // POST /extension/exit/error — a failure after init; the extension exits afterwards.
    exitError(id, error) {
      return reportError(extensionPaths.exitError, id, error);
    },
  };
}

/** Lambda answers a registration it refuses with 403; the commonest cause is a name that is not the executable's. */
function refusal(name: string, reply: Reply): string {
  const body = json(reply) as { errorType?: string; errorMessage?: string } | undefined;
  const why = body?.errorType ? `${body.errorType}: ${body.errorMessage ?? ""}` : text(reply);
  return (
    `Lambda refused to register the extension ${JSON.stringify(name)} (403 ${why}). An external extension must register ` +
    `with the file name of its executable in the layer's extensions/ folder (/opt/extensions/NAME), and may register ` +
    `for SHUTDOWN only then. Build it with ./build.sh --extension --name NAME, or pass extension({ name }).`
  );
}

function json(reply: Reply): unknown {
  try {
    return JSON.parse(reply.body.toString("utf8"));
  } catch {
    return undefined;
  }
}

function text(reply: Reply): string {
  return reply.body.toString("utf8", 0, Math.min(reply.body.length, 500)).trim() || "(empty body)";
}

/** Header values must be visible ASCII; an error name can be anything. */
function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "").trim() || "Extension.Unknown";
}
