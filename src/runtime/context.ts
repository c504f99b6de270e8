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
  const deadline = Number(event.headers[headers.deadlineMs]);
  const tenantId = event.headers[headers.tenantId];
  let settle!: (error: unknown, result?: unknown) => void;
  const settled = new Promise((resolve, reject) => {
    settle = (error, result) => (error != null ? reject(error) : resolve(result));
  });
  const context: Context = {
    ...info,
    awsRequestId: event.requestId,
    invokedFunctionArn: single(event.headers[headers.functionArn]) ?? "",
    identity: headerJson(event, headers.cognitoIdentity, "Runtime.MalformedCognitoIdentity") as CognitoIdentity | undefined,
    clientContext: headerJson(event, headers.clientContext, "Runtime.MalformedClientContext") as ClientContext | undefined,
    tenantId: typeof tenantId === "string" && tenantId !== "" ? tenantId : undefined,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    callbackWaitsForEmptyEventLoop: false,
    done: (error?: unknown, result?: unknown) => settle(error, result),
    fail: (error: unknown) => settle(error ?? new Error("context.fail() called without an error")),
    succeed: (...args: unknown[]) => settle(null, args.length > 1 ? args[1] : args[0]),
  };
  return { context, settled };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function headerJson(event: NextEvent, name: string, errorType: string): unknown {
  const value = single(event.headers[name]);
  if (value === undefined || value === "") return undefined;
  try {
    return JSON.parse(value);
  } catch (cause) {
    throw new InvocationError(errorType, `the ${name} header is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}
