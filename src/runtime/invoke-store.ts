// Where code that is not handed the context (the AWS SDK, `traceId()`) finds the current invocation when several run at once: an AsyncLocalStorage, published as the managed runtime publishes it.
import type { AsyncLocalStorage } from "node:async_hooks";

/** The keys the runtime fills in, shared by name (`Symbol.for`) with `@aws/lambda-invoke-store`. */
export const invokeStoreKeys = {
  requestId: Symbol.for("_AWS_LAMBDA_REQUEST_ID"),
  traceId: Symbol.for("_AWS_LAMBDA_X_RAY_TRACE_ID"),
  tenantId: Symbol.for("_AWS_LAMBDA_TENANT_ID"),
} as const;

/**
 * The managed runtime's per-invocation store, as `@aws/lambda-invoke-store` defines it and
 * `globalThis.awslambda.InvokeStore` publishes it. The AWS SDK v3 reads the X-Ray trace id for its
 * `X-Amzn-Trace-Id` header from here before `_X_AMZN_TRACE_ID`: with several invocations in one process
 * an environment variable can only hold one of them, so this is the only place the right one can be.
 */
export interface InvokeStore {
  run<T>(context: Record<symbol, unknown>, fn: () => T): T;
  getContext(): Record<symbol, unknown> | undefined;
  hasContext(): boolean;
  get(key: symbol): unknown;
  /** For the function's own per-invocation values; the runtime's keys cannot be changed. */
  set(key: symbol, value: unknown): void;
  getRequestId(): string;
  getXRayTraceId(): string | undefined;
  getTenantId(): string | undefined;
}

type Global = { awslambda?: { InvokeStore?: InvokeStore } };

/**
 * The store invocations run in, as the managed runtime publishes it. If a library already created one during init
 * (the AWS SDK creates one on its first request), that one is used, so both read the same values; otherwise one is
 * made and published at `globalThis.awslambda.InvokeStore`. With several invocations at once it is an
 * AsyncLocalStorage, so each line of code sees its own invocation; with one at a time, simply the latest invocation
 * (code running after an invocation, in a timer, still sees it, as in the managed runtime).
 */
export function publishInvokeStore(concurrent: boolean): InvokeStore {
  const published = (globalThis as Global).awslambda?.InvokeStore;
  if (published && typeof published.run === "function" && typeof published.getXRayTraceId === "function") return published;
  const { AsyncLocalStorage } = process.getBuiltinModule("node:async_hooks");
  const store = invokeStore(concurrent ? new AsyncLocalStorage() : latest());
  const global = globalThis as Global;
  (global.awslambda ??= {}).InvokeStore = store;
  return store;
}

/** The part of AsyncLocalStorage the store uses, for one invocation at a time: no async tracking to pay for. */
type Storage = Pick<AsyncLocalStorage<Record<symbol, unknown>>, "run" | "getStore">;

function latest(): Storage {
  let current: Record<symbol, unknown> | undefined;
  return {
    run: ((context: Record<symbol, unknown>, fn: () => unknown) => ((current = context), fn())) as Storage["run"],
    getStore: () => current,
  };
}

function invokeStore(als: Storage): InvokeStore {
  const protectedKeys: symbol[] = Object.values(invokeStoreKeys);
  return {
    run: (context, fn) => als.run(context, fn),
    getContext: () => als.getStore(),
    hasContext: () => als.getStore() !== undefined,
    get: (key) => als.getStore()?.[key],
    set(key, value) {
      const context = als.getStore();
      if (protectedKeys.includes(key)) throw new Error(`${String(key)} is the runtime's and cannot be changed`);
      if (!context) throw new Error("no invocation is running here");
      context[key] = value;
    },
    getRequestId: () => (als.getStore()?.[invokeStoreKeys.requestId] as string | undefined) ?? "-",
    getXRayTraceId: () => als.getStore()?.[invokeStoreKeys.traceId] as string | undefined,
    getTenantId: () => als.getStore()?.[invokeStoreKeys.tenantId] as string | undefined,
  };
}

/** The current invocation's X-Ray trace id: from the store when one is running in it, else `_X_AMZN_TRACE_ID`. */
export function currentTraceId(): string | undefined {
  const store = (globalThis as Global).awslambda?.InvokeStore;
  if (store?.hasContext()) return store.getXRayTraceId();
  return process.env._X_AMZN_TRACE_ID || undefined;
}
