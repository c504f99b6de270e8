// The context object a handler receives: the managed Node.js runtime's fields, built from one event's headers and the function's environment.
import { InvocationError } from "../wire/errors.ts";
import { headers } from "../wire/protocol.ts";
import type { NextEvent } from "./runtime-api.ts";

export interface CognitoIdentity {
  cognitoIdentityId: string;
  cognitoIdentityPoolId: string;
}

export interface ClientContext {
  client: { installationId: string; appTitle: string; appVersionName: string; appVersionCode: string; appPackageName: string };
  Custom?: any;
  env: { platformVersion: string; platform: string; make: string; model: string; locale: string };
}

/** Assignable to `Context` from `@types/aws-lambda`; `tenantId` is set when the function uses tenant isolation. */
export interface Context {
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  identity?: CognitoIdentity | undefined;
  clientContext?: ClientContext | undefined;
  tenantId?: string | undefined;
  /** The invocation's X-Ray trace id (`Lambda-Runtime-Trace-Id`), "" when it has none, as in the managed runtime. */
  xRayTraceId?: string;
  /** Milliseconds until Lambda stops this invocation (from `Lambda-Runtime-Deadline-Ms`). */
  getRemainingTimeInMillis(): number;
  /** Kept for compatibility; micro-lambda answers as soon as the handler settles and never waits for the event loop to empty. */
  callbackWaitsForEmptyEventLoop: boolean;
  /** Legacy completion calls: the first of these or of the handler's own result answers the invocation. */
  done(error?: Error, result?: any): void;
  fail(error: Error | string): void;
  succeed(messageOrObject: any): void;
  succeed(message: string, object: any): void;
}

/** What the function's environment says about it, read once when the loop starts (after a snapshot is restored, not at build time). */
export interface FunctionInfo {
  functionName: string;
  functionVersion: string;
  memoryLimitInMB: string;
  logGroupName: string;
  logStreamName: string;
}

export function functionInfo(env: NodeJS.ProcessEnv): FunctionInfo {
  return {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? "",
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? "$LATEST",
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? "",
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? "",
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? "",
  };
}

/**
 * Builds the context for one event. `settled` resolves or rejects when the handler calls `succeed`, `fail`
 * or `done`. Throws an `InvocationError` when the client-context or identity header is not JSON.
 */
export function createContext(event: NextEvent, info: FunctionInfo): { context: Context; settled: Promise<unknown> } {
  const deadline = deadlineOf(event);
  const tenantId = text(event, headers.tenantId);
  let settle!: (error: unknown, result?: unknown) => void;
  const settled = new Promise((resolve, reject) => {
    settle = (error, result) => (error != null ? reject(error) : resolve(result));
  });
  const context: Context = {
    ...info,
    awsRequestId: event.requestId,
    invokedFunctionArn: text(event, headers.functionArn) ?? "",
    identity: headerJson(event, headers.cognitoIdentity, "Runtime.MalformedCognitoIdentity") as CognitoIdentity | undefined,
    clientContext: headerJson(event, headers.clientContext, "Runtime.MalformedClientContext") as ClientContext | undefined,
    tenantId: tenantId || undefined,
    xRayTraceId: text(event, headers.traceId) ?? "",
    getRemainingTimeInMillis: () => deadline - Date.now(),
    callbackWaitsForEmptyEventLoop: false,
    done: (error?: unknown, result?: unknown) => settle(error, result),
    fail: (error: unknown) => settle(error ?? new Error("context.fail() called without an error")),
    succeed: (...args: unknown[]) => settle(null, args.length > 1 ? args[1] : args[0]),
  };
  return { context, settled };
}

/** Lambda's longest timeout: what a missing deadline is taken to be, rather than a NaN that breaks every check against it. */
const longestTimeoutMs = 900_000;

/** `Lambda-Runtime-Deadline-Ms`, epoch milliseconds. Lambda always sends it; a peer that does not gets 15 minutes from now, and a line saying so. */
function deadlineOf(event: NextEvent): number {
  const value = text(event, headers.deadlineMs);
  const deadline = value && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (Number.isSafeInteger(deadline)) return deadline;
  console.warn(`micro-lambda: the event's ${headers.deadlineMs} header is ${value === undefined ? "missing" : `not a time (${JSON.stringify(value.slice(0, 40))})`}: getRemainingTimeInMillis() counts down from ${longestTimeoutMs / 60_000} minutes, Lambda's longest timeout`);
  return Date.now() + longestTimeoutMs;
}

/**
 * A header's text. Lambda sends UTF-8 (a client context naming "Zürich"); an HTTP parser hands header bytes over as
 * latin1, one character per byte, so they are decoded again here, as the managed runtime's native client does.
 */
function text(event: NextEvent, name: string): string | undefined {
  const raw = event.headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, "latin1").toString("utf8") : value;
}

function headerJson(event: NextEvent, name: string, errorType: string): unknown {
  const value = text(event, name);
  if (value === undefined || value === "") return undefined;
  try {
    return JSON.parse(value);
  } catch (cause) {
    throw new InvocationError(errorType, `the ${name} header is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}
