// {{name}}: a Runtime API proxy extension. It sits between the function's runtime and Lambda, sees every event
// before the function does and every answer after, and here keeps unwanted events away from the function and
// writes one audit line per invocation, without any change to the function's code.
//
// ALLOWED_SOURCES: comma-separated values of the event's `source` field that may reach the function (as in
// EventBridge events: `aws.events,my.app`); any other event is failed as Runtime.EventRejected before the
// function sees it. Unset or empty: every event passes.
// Point the function at the proxy: MICRO_LAMBDA_RUNTIME_API=127.0.0.1:9009 on provided.al2023 (a micro-lambda
// bootstrap reads it); AWS_LAMBDA_EXEC_WRAPPER=/opt/proxy-wrapper.sh on managed runtimes (nodejs24.x...).
// MICRO_LAMBDA_PROXY_PORT (default 9009) is where the proxy listens.
import { extension } from "micro-lambda/extension";
import { runtimeApiProxy, type ProxiedAnswer } from "micro-lambda/proxy";

const allowed = new Set((process.env.ALLOWED_SOURCES ?? "").split(",").map((source) => source.trim()).filter(Boolean));

// Listen first, register second: Lambda starts the runtime as soon as every extension has registered.
runtimeApiProxy({
  onEvent(event) {
    if (allowed.size === 0 || allowed.has(sourceOf(event.body))) return; // passes as it is
    audit({ requestId: event.requestId, outcome: "rejected", eventBytes: event.body.length });
    return { reject: "this event's source is not in ALLOWED_SOURCES" };
  },
  onResponse: auditAnswer,
  onError: auditAnswer,
}).then((proxy) => extension({ onShutdown: () => proxy.close() }));

function sourceOf(body: Buffer): string {
  try {
    return String(JSON.parse(body.toString("utf8"))?.source);
  } catch {
    return "";
  }
}

function auditAnswer(answer: ProxiedAnswer): void {
  audit({ requestId: answer.requestId, outcome: answer.kind, eventBytes: answer.event?.body.length, responseBytes: answer.size, durationMs: answer.durationMs });
}

/** One JSON line on stdout: the extension's log, in the function's log stream. */
function audit(line: { requestId: string; outcome: string; eventBytes?: number; responseBytes?: number; durationMs?: number }): void {
  console.log(JSON.stringify({ audit: "{{name}}", ...line }));
}
