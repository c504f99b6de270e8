// Graceful shutdown's opt-in: Lambda sends the runtime SIGTERM at shutdown only when an extension is registered, so the runtime registers a no-op internal one.
import { RuntimeApiError } from "../wire/errors.ts";
import { httpClient } from "../wire/http.ts";
import { extensionPaths, headers } from "../wire/protocol.ts";

/** What the no-op extension is called (Go's is `GoLangEnableSIGTERM`, Rust's `_lambda-rust-runtime-no-op-graceful-shutdown-helper`). */
export const shutdownExtensionName = "micro-lambda-graceful-shutdown";

/**
 * Registers an internal extension that subscribes to no events, from inside the function's process, during init
 * (before the runtime's first `/next`: registration closes then). Without any extension Lambda ends a sandbox
 * with a bare SIGKILL; with one, the runtime gets SIGTERM first and 500 ms (internal extensions only) before
 * the SIGKILL. Throws when the Extensions API refuses (a `RuntimeApiError`) or cannot be reached.
 */
export async function registerNoOpExtension(address: string): Promise<void> {
  const http = httpClient(address);
  // POST /extension/register
  const registered = await http.request("POST", extensionPaths.register, { [headers.extensionName]: shutdownExtensionName, "content-type": "application/json" }, JSON.stringify({ events: [] }));
  const id = registered.headers[headers.extensionIdentifier];
  if (registered.status !== 200 || typeof id !== "string") {
    const why = registered.body.toString("utf8", 0, 500).trim() || "(empty body)";
    const what = registered.status === 200 ? "200 without a Lambda-Extension-Identifier" : registered.status;
    throw new RuntimeApiError(`POST ${extensionPaths.register} answered ${what}: ${why}`, registered.status);
  }
  // GET /extension/event/next — Lambda counts an extension as initialised once it asks for its first event, and
  // holds the first invoke until then. With no events subscribed, this request is never answered: it stays open.
  http.request("GET", extensionPaths.next, { [headers.extensionIdentifier]: id }).catch(() => {});
}
