// The entry point: `lambda(handler)` reads the environment, guards one-time init, starts the loop, and is the only place the process exits.
import { functionInfo } from "./context.ts";
import { InvocationError, toErrorResponse, xrayErrorCause } from "../wire/errors.ts";
import { currentTraceId, publishInvokeStore } from "./invoke-store.ts";
import { FunctionLog, logSettings, patchConsole } from "./logging.ts";
import { answer, loop, type Handler, type LoopState } from "./loop.ts";
import { runtimeApi, type RuntimeApi } from "./runtime-api.ts";
import { registerNoOpExtension } from "./shutdown.ts";
import { traceIdVariable } from "./trace-variable.ts";
import type { StreamingHandler } from "./streaming.ts";

export type { Handler } from "./loop.ts";
export type { Context, ClientContext, CognitoIdentity } from "./context.ts";
export type { ErrorResponse } from "../wire/protocol.ts";
export { toErrorResponse, RuntimeApiError, InvocationError, JSONStringifyError } from "../wire/errors.ts";
export { streamifyResponse, HttpResponseStream, type ResponseStream, type StreamingHandler, type HttpResponsePrelude } from "./streaming.ts";
export type { InvokeStore } from "./invoke-store.ts";

export interface LambdaOptions {
  /** How many `/next` loops run at once. Defaults to `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances), else 1. */
  concurrency?: number;
  /**
   * Cleanup to run when Lambda shuts the sandbox down (flush buffers, close connections); the process exits when
   * it settles. Lambda sends the runtime SIGTERM only when an extension is registered, so giving this registers a
   * no-op internal extension during init, as Go's `lambda.WithEnableSIGTERM` and Rust's
   * `spawn_graceful_shutdown_handler` do. The budget is then 500 ms (less when external extensions share the
   * 2 s they get), after which Lambda sends SIGKILL.
   */
  onShutdown?: () => unknown;
}

// Everything from here until the first /next is the function's one-time init. Importing this module
// installs the guard first, so even a throw at the top of the main file, before lambda() is reached,
// is reported to /runtime/init/error. It also makes console.* write the managed runtime's log lines
// (see logging.ts), so that lines written during init have that shape too. This one log is the process's,
// as `console` is: start() points it at the invocations once they begin.
const log = new FunctionLog(logSettings(process.env));
patchConsole(log);
process.on("uncaughtException", failInit);
process.on("unhandledRejection", failInit);
process.on("beforeExit", neverStarted);

/**
 * Runs `handler` for every invocation of this Lambda function. Call it once, from the function's main file,
 * after any one-time init. When the bootstrap is built with `--snapshot`, init runs at build time and the
 * loop starts when the snapshot is restored.
 */
export function lambda<TEvent = any, TResult = any>(handler: Handler<TEvent, TResult>, options?: LambdaOptions): void;
export function lambda<TEvent = any>(handler: StreamingHandler<TEvent>, options?: LambdaOptions): void;
export function lambda(handler: Handler | StreamingHandler, options: LambdaOptions = {}): void {
  if (typeof handler !== "function") throw new TypeError(`lambda(handler) needs a function, got ${typeof handler}`);
  if (options.concurrency !== undefined && !(Number.isInteger(options.concurrency) && options.concurrency >= 1)) {
    throw new TypeError(`lambda(handler, { concurrency }) needs a whole number of at least 1, got ${options.concurrency}`);
  }
  if (options.onShutdown !== undefined && typeof options.onShutdown !== "function") {
    throw new TypeError(`lambda(handler, { onShutdown }) needs a function, got ${typeof options.onShutdown}`);
  }
  process.off("beforeExit", neverStarted);
  const v8 = process.getBuiltinModule("node:v8");
  if (v8.startupSnapshot?.isBuildingSnapshot()) {
    v8.startupSnapshot.setDeserializeMainFunction(() => start(handler, options));
    return;
  }
  // The rest of the main file's synchronous code is still init: start polling on the next turn.
  setImmediate(() => start(handler, options));
}

/**
 * The current invocation's X-Ray trace id (`Root=…;Parent=…;Sampled=…`), or undefined when it has none.
 * With one invocation at a time this is `_X_AMZN_TRACE_ID`; with several (Lambda Managed Instances) it is
 * kept per invocation, and this is the way to read it: the environment variable is then left alone.
 */
export function traceId(): string | undefined {
  return currentTraceId();
}

async function start(handler: Handler | StreamingHandler, options: LambdaOptions): Promise<void> {
  // Read the log settings again: with --snapshot, init ran at build time, in another environment.
  log.settings = logSettings(process.env, log.settings.fd);
  patchConsole(log);
  const api = runtimeApi(runtimeAddress());
  const concurrency = options.concurrency ?? maxConcurrency(process.env.AWS_LAMBDA_MAX_CONCURRENCY);
  const state: LoopState = { info: functionInfo(process.env), inFlight: new Map(), log, invokeStore: publishInvokeStore(concurrency > 1) };
  if (concurrency === 1) state.setTraceVariable = traceIdVariable();
  log.store = state.invokeStore;
  if (options.onShutdown) await enableShutdown(options.onShutdown);
  // Init is over: from now on an uncaught error fails the invocations in flight, then the process exits.
  process.off("uncaughtException", failInit);
  process.off("unhandledRejection", failInit);
  const crashed = (thrown: unknown, origin?: string) => crash(api, state, thrown, origin === "unhandledRejection");
  process.on("uncaughtException", crashed);
  process.on("unhandledRejection", (reason) => crashed(reason, "unhandledRejection"));
  for (let i = 0; i < concurrency; i++) loop(api, handler, state).catch(exit);
}

/**
 * On SIGTERM, runs `cleanup`, then exits: 0, or 1 when it threw. Registers the no-op extension that makes Lambda
 * send SIGTERM at all; if that is refused, the function still runs, without the cleanup, and says so on stderr.
 */
async function enableShutdown(cleanup: () => unknown): Promise<void> {
  let signalled = false;
  process.on("SIGTERM", () => {
    if (signalled) return; // a second SIGTERM must not cut the cleanup short: SIGKILL does that
    signalled = true;
    Promise.resolve()
      .then(cleanup)
      .then(
        () => process.exit(0),
        (thrown) => {
          // After the last invocation: a note for whoever reads the sandbox's end, on stderr, as runtime failures are.
          const error = toErrorResponse(thrown);
          process.stderr.write(`micro-lambda: onShutdown failed: ${error.trace.length > 0 ? error.trace.join("\n") : `${error.errorType}: ${error.errorMessage}`}\n`);
          process.exit(1);
        },
      );
  });
  try {
    // The Extensions API is Lambda's own, not a Runtime API proxy's.
    await registerNoOpExtension(process.env.AWS_LAMBDA_RUNTIME_API || runtimeAddress());
  } catch (error) {
    process.stderr.write(`micro-lambda: onShutdown will not run: Lambda sends SIGTERM only to a sandbox with an extension registered, and registering one failed: ${(error as Error).message}\n`);
  }
}

/** Lambda Managed Instances sets `AWS_LAMBDA_MAX_CONCURRENCY`; anything but a whole number of at least 1 means one loop. */
function maxConcurrency(value: string | undefined): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** Where the Runtime API is: `MICRO_LAMBDA_RUNTIME_API` (set it to put a Runtime API proxy in front), else Lambda's own. */
function configuredAddress(): string | undefined {
  return process.env.MICRO_LAMBDA_RUNTIME_API || process.env.AWS_LAMBDA_RUNTIME_API;
}

/** The Runtime API address; without one this is not running as a Lambda function, and the process exits. */
function runtimeAddress(): string {
  const address = configuredAddress();
  if (!address) {
    exit(new Error("AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda function. Run it on Lambda, or locally under the emulator: npx micro-lambda invoke <command>"));
  }
  return address;
}

/** A failure during init: log it as the managed runtime does (`Init Error`), report it to /runtime/init/error (when there is a Runtime API to tell) and exit. */
function failInit(thrown: unknown): void {
  const error = toErrorResponse(thrown);
  log.error("Init Error", thrown);
  const address = configuredAddress();
  if (!address) process.exit(1);
  report(() => runtimeApi(address).failInit(error));
}

function neverStarted(): void {
  failInit(new InvocationError("Runtime.NoHandler", "the main file finished without calling lambda(handler)"));
}

/**
 * An uncaught exception or unhandled rejection after init: answer the invocations in flight with it, then exit.
 * (The managed runtime, aws-lambda-ric 4.x, just dies and Lambda reports `Runtime.ExitError`: here the caller
 * learns what was thrown, as under the 3.x client, which named a rejection `Runtime.UnhandledPromiseRejection`.)
 */
function crash(api: RuntimeApi, state: LoopState, thrown: unknown, rejection: boolean): void {
  const error = toErrorResponse(thrown);
  if (rejection) error.errorType = "Runtime.UnhandledPromiseRejection";
  log.error(rejection ? "Unhandled Promise Rejection" : "Uncaught Exception", thrown);
  const events = [...state.inFlight];
  state.inFlight.clear();
  const xrayCause = xrayErrorCause(thrown);
  report(() => Promise.all(events.map(([event, stream]) => answer(api, event, { ok: false, error, xrayCause }, stream))));
}

/** Sends a last report, then exits non-zero whether or not it got through. */
function report(send: () => Promise<unknown>): void {
  process.removeAllListeners("uncaughtException").removeAllListeners("unhandledRejection");
  process.on("uncaughtException", exit).on("unhandledRejection", exit);
  send().then(() => process.exit(1), exit);
}

/** The only way out for a runtime failure: one clear line on stderr (not a function log line), exit code 1. */
function exit(thrown: unknown): never {
  const message = thrown instanceof Error ? thrown.message : String(thrown);
  process.stderr.write(`micro-lambda: ${message}\n`);
  process.exit(1);
}
