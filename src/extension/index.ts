// The extension entry point: `extension({ init, onInvoke, onShutdown })` registers, runs init, dispatches events, and is the only place an extension exits.
//
// An external extension is a separate program in the layer's extensions/ folder (/opt/extensions/NAME). Lambda
// starts it before the function, waits for it to register, then for its first GET /event/next before the first
// invocation, and, after each invocation, for it to ask for the next event again: work done in onInvoke is on
// the invocation's clock. It never imports the runtime (src/runtime/): the two share only the HTTP helper.
import { RuntimeApiError, toErrorResponse } from "../wire/errors.ts";
import { extensionsApi, type ExtensionEventType, type ExtensionsApi, type InvokeEvent, type Registration, type ShutdownEvent } from "./extensions-api.ts";
import type { ErrorResponse } from "../wire/protocol.ts";

export type { ExtensionEvent, ExtensionEventType, InvokeEvent, Registration, ShutdownEvent } from "./extensions-api.ts";
export type { ErrorResponse } from "../wire/protocol.ts";

/**
 * A failure with the error type the extension chooses (Lambda recommends `Extension.Reason`, such as
 * `Extension.ConfigInvalid`). Thrown from `init`, `onInvoke` or `onShutdown`; anything else thrown is reported
 * as `Extension.<its name>`.
 */
export class ExtensionError extends Error {
  override readonly name = "ExtensionError";
  constructor(
    readonly errorType: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface ExtensionOptions<State> {
  /** The name to register with. Lambda requires an external extension's executable file name, the default. */
  name?: string;
  /** The events to receive. Default: SHUTDOWN, and INVOKE when there is an `onInvoke` (Lambda waits on every INVOKE subscriber). */
  events?: ExtensionEventType[];
  /**
   * After registration, before the first event: read configuration, subscribe to telemetry, open connections.
   * What it returns is handed to `onInvoke` and `onShutdown`. A throw is reported to `/extension/init/error`,
   * and Lambda fails the function's init.
   */
  init?(registration: Registration): State | Promise<State>;
  /** Each invocation, while the function runs it. The invocation is not over until this settles. A throw ends the extension (`/extension/exit/error`). */
  onInvoke?(event: InvokeEvent, state: State, registration: Registration): void | Promise<void>;
  /** Once, when the sandbox stops: flush what is buffered. Must settle before `event.deadlineMs`; the extension then exits 0. */
  onShutdown?(event: ShutdownEvent, state: State, registration: Registration): void | Promise<void>;
}

/** Milliseconds kept back from a SHUTDOWN deadline for the process to exit before Lambda kills it. */
const EXIT_MARGIN_MS = 50;

/**
 * Runs this program as a Lambda extension. Call it once, from the extension's main file. Build the main file
 * with `./build.sh --extension ENTRY` into a layer.
 */
export function extension<State = undefined>(options: ExtensionOptions<State>): void {
  if (typeof options !== "object" || options === null) throw new TypeError("extension(options) needs an object");
  for (const hook of ["init", "onInvoke", "onShutdown"] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== "function") throw new TypeError(`extension({ ${hook} }) must be a function`);
  }
  const v8 = process.getBuiltinModule("node:v8");
  if (v8.startupSnapshot?.isBuildingSnapshot()) {
    v8.startupSnapshot.setDeserializeMainFunction(() => void start(options));
    return;
  }
  // The rest of the main file's synchronous code runs first.
  setImmediate(() => void start(options));
}

async function start<State>(options: ExtensionOptions<State>): Promise<void> {
  const address = process.env.AWS_LAMBDA_RUNTIME_API;
  if (!address) exit("AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda extension. Put it in a layer's extensions/ folder, or run it locally with the emulator's --extensions DIR.");
  const name = options.name ?? executableName();
  const events = options.events ?? (options.onInvoke ? ["INVOKE", "SHUTDOWN"] : ["SHUTDOWN"]);
  const api = extensionsApi(address);
  let registration: Registration;
  try {
    registration = await api.register(name, events);
  } catch (thrown) {
    // Nothing to report to: without a registration there is no identifier to report with.
    return exit(thrown instanceof Error ? thrown.message : String(thrown));
  }
  await run(api, registration, options);
}

/** Init, then the event loop. Returns only by exiting. */
async function run<State>(api: ExtensionsApi, registration: Registration, options: ExtensionOptions<State>): Promise<never> {
  // Until the first GET /event/next a failure is an init error; after it, an exit error.
  const phase = { initialising: true };
  const fail = (thrown: unknown) => failAndExit(api, registration, phase.initialising, thrown);
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);

  let state: State;
  try {
    state = (await options.init?.(registration)) as State;
  } catch (thrown) {
    return fail(thrown);
  }
  phase.initialising = false;

  for (;;) {
    const event = await api.next(registration.id).catch((thrown: unknown) => exit((thrown as Error).message));
    if (event.eventType === "INVOKE") {
      try {
        await options.onInvoke?.(event, state, registration);
      } catch (thrown) {
        return fail(thrown);
      }
      continue;
    }
    try {
      const finished = await withinDeadline(Promise.resolve(options.onShutdown?.(event, state, registration)), event.deadlineMs - EXIT_MARGIN_MS);
      if (!finished) exit(`extension ${registration.name}: onShutdown did not finish before the SHUTDOWN deadline; exiting before Lambda kills it`);
    } catch (thrown) {
      return fail(thrown);
    }
    process.exit(0);
  }
}

/** Reports a failure to /extension/init/error or /extension/exit/error, then exits 1 whether or not the report got through. */
async function failAndExit(api: ExtensionsApi, registration: Registration, initialising: boolean, thrown: unknown): Promise<never> {
  process.removeAllListeners("uncaughtException").removeAllListeners("unhandledRejection");
  const error = extensionErrorResponse(thrown);
  const what = initialising ? "init failed" : "failed";
  console.error(`micro-lambda extension ${registration.name}: ${what}: ${error.errorType}: ${error.errorMessage}${error.trace.length > 0 ? "\n" + error.trace.slice(1).join("\n") : ""}`);
  try {
    await (initialising ? api.initError(registration.id, error) : api.exitError(registration.id, error));
  } catch (cause) {
    console.error(`micro-lambda extension ${registration.name}: the failure could not be reported: ${(cause as Error).message}`);
  }
  process.exit(1);
}

/** Lambda's error JSON for an extension's failure: the error type of an ExtensionError, else `Extension.<name>` (`Extension.TypeError`). */
export function extensionErrorResponse(thrown: unknown): ErrorResponse {
  const error = toErrorResponse(thrown);
  if (thrown instanceof ExtensionError) error.errorType = thrown.errorType;
  else if (!error.errorType.startsWith("Extension.")) error.errorType = `Extension.${error.errorType.replace(/[^A-Za-z0-9_.-]/g, "") || "Unknown"}`;
  return error;
}

/** The file name Lambda requires: the executable's in a single executable (the built layer), else the main script's without its extension. */
function executableName(): string {
  const sea = process.getBuiltinModule("node:sea");
  const path = sea?.isSea() ? process.execPath : (process.argv[1] ?? process.execPath);
  return process.getBuiltinModule("node:path").basename(path).replace(/\.[cm]?[jt]s$/, "");
}

/** Resolves true when `work` settles before `deadline` (epoch ms), false when the deadline comes first; rejects with `work`'s error. */
function withinDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    work.then(
      () => (clearTimeout(timer), resolve(true)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}

/** The way out for a failure of the extension machinery itself (no API, refused registration): one clear line, exit 1. */
function exit(message: string): never {
  console.error(`micro-lambda extension: ${message}`);
  process.exit(1);
}

// Re-exported for extensions that drive the API themselves (a Runtime API proxy registers this way too).
export { extensionsApi };
export type { ExtensionsApi };
export { RuntimeApiError };
