// A Runtime API proxy extension: an allow-list that keeps unwanted events away from the function, and one audit
// line per invocation. Built into a layer with `./build.sh examples/proxy/main.ts --extension`.
//
// Configuration, from the function's environment (extensions see it too):
//   ALLOWED_EVENTS  Which events may reach the function: rules separated by commas. `path=value` matches an event
//                   whose field at that dotted path equals value (as text): `source=aws.events`,
//                   `Records.0.eventSource=aws:sqs`. `path` alone matches an event that has the field at all.
//                   An event that matches any rule passes; any other event (and anything that is not a JSON
//                   object) is failed as Runtime.EventRejected without reaching the function.
//                   Unset or empty: every event passes.
//   MICRO_LAMBDA_PROXY_PORT, MICRO_LAMBDA_PROXY_UPSTREAM: where the proxy listens (9009) and forwards to.
// Point the function at the proxy: MICRO_LAMBDA_RUNTIME_API=127.0.0.1:9009 on provided.* (micro-lambda
// bootstraps), AWS_LAMBDA_EXEC_WRAPPER=/opt/proxy-wrapper.sh on managed runtimes.
//
// Audit lines go to stdout, and so to the function's CloudWatch log stream, one JSON object per invocation:
//   {"audit":"invocation","requestId":"…","outcome":"response","eventBytes":16,"responseBytes":76,"durationMs":1.234}
// outcome is "response", "error" (the function failed) or "rejected" (the allow-list stopped the event).
import { extension, ExtensionError } from "micro-lambda/extension";
import { runtimeApiProxy, type ProxiedAnswer, type ProxiedEvent, type RuntimeApiProxy } from "micro-lambda/proxy";

// Listen first, register second: Lambda starts the runtime as soon as every extension has registered.
start().then(
  (proxy) => extension({ onShutdown: () => proxy.close() }),
  // Register anyway, to report why: Lambda then fails the function's init with this error.
  (error: Error) =>
    extension({
      init() {
        throw error instanceof ExtensionError ? error : new ExtensionError("Extension.ProxyFailed", error.message);
      },
    }),
);

async function start(): Promise<RuntimeApiProxy> {
  const allowed = allowList(process.env.ALLOWED_EVENTS);
  return runtimeApiProxy({
    onEvent(event) {
      if (allowed(event)) return;
      audit(event.requestId, "rejected", event.body.length);
      return { reject: "this event is not in the function's allow-list (ALLOWED_EVENTS)" };
    },
    onResponse: auditAnswer,
    onError: auditAnswer,
  });
}

/** A predicate from ALLOWED_EVENTS; every event passes when it is unset or empty. */
function allowList(setting: string | undefined): (event: ProxiedEvent) => boolean {
  const rules = (setting ?? "").split(",").map((rule) => rule.trim()).filter(Boolean).map(parseRule);
  if (rules.length === 0) return () => true;
  return (event) => {
    const parsed = parseJson(event.body);
    return typeof parsed === "object" && parsed !== null && rules.some((rule) => rule(parsed));
  };
}

function parseRule(rule: string): (event: object) => boolean {
  const equals = rule.indexOf("=");
  const path = (equals < 0 ? rule : rule.slice(0, equals)).split(".");
  const expected = equals < 0 ? undefined : rule.slice(equals + 1);
  if (path.some((key) => key === "")) throw new ExtensionError("Extension.ConfigInvalid", `ALLOWED_EVENTS: ${JSON.stringify(rule)} is not a rule (path or path=value)`);
  return (event) => {
    let value: unknown = event;
    for (const key of path) value = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
    return expected === undefined ? value !== undefined : value !== null && typeof value !== "object" && String(value) === expected;
  };
}

function auditAnswer(answer: ProxiedAnswer): void {
  audit(answer.requestId, answer.kind, answer.event?.body.length, answer.size, answer.durationMs);
}

function audit(requestId: string, outcome: string, eventBytes?: number, responseBytes?: number, durationMs?: number): void {
  const line = { audit: "invocation", requestId, outcome, eventBytes, responseBytes, durationMs: durationMs === undefined ? undefined : Math.round(durationMs * 1000) / 1000 };
  console.log(JSON.stringify(line));
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
}
