// What can go wrong, named: the runtime's own error classes, and the one normaliser that turns anything thrown into Lambda's error JSON.
import type { ErrorResponse } from "./protocol.ts";

/**
 * The Runtime or Extensions API answered in a way that means the sandbox is broken (a 5xx, an unexpected
 * status on `/next`), or could not be reached at all. Thrown, never reported: the entry point prints it and exits.
 */
export class RuntimeApiError extends Error {
  override readonly name = "RuntimeApiError";
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A failure of one invocation that the runtime itself detected (malformed event, unserialisable result):
 * reported to `/error` with `errorType` as given, like the managed runtime's `Runtime.*` errors.
 */
export class InvocationError extends Error {
  override readonly name = "InvocationError";
  constructor(
    readonly errorType: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Turns whatever was thrown into `{errorType, errorMessage, stackTrace}`, the way the managed Node.js runtime
 * does: an Error's `name`, `message` and `stack` lines; for anything else, its `typeof` and its text.
 * Never throws, whatever it is given: getters that throw, `null`, objects without a prototype, Proxies.
 */
export function toErrorResponse(thrown: unknown): ErrorResponse {
  try {
    return normalise(thrown);
  } catch {
    // Only a Proxy whose traps throw gets here (even `instanceof` asks it for its prototype).
    return { errorType: typeof thrown, errorMessage: "a thrown value that cannot be inspected", stackTrace: [] };
  }
}

function normalise(thrown: unknown): ErrorResponse {
  if (thrown instanceof InvocationError) {
    // Its stack would only show the runtime's own frames.
    return { errorType: thrown.errorType, errorMessage: thrown.message, stackTrace: [] };
  }
  if (isErrorLike(thrown)) {
    return {
      errorType: oneLine(attempt(() => thrown.name)) || "Error",
      errorMessage: attempt(() => thrown.message) ?? "",
      stackTrace: stackLines(thrown),
    };
  }
  return { errorType: typeof thrown, errorMessage: describe(thrown), stackTrace: [] };
}

function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  // Errors from another realm (vm contexts) and error-shaped objects: anything with a string message.
  return typeof value === "object" && value !== null && typeof attempt(() => (value as Error).message) === "string";
}

/** Reads a property that may be a throwing getter; only strings count. */
function attempt(read: () => unknown): string | undefined {
  try {
    const value = read();
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

function oneLine(text: string | undefined): string {
  return (text ?? "").replace(/[\r\n]+/g, " ").trim();
}

function stackLines(error: Error): string[] {
  const stack = attempt(() => error.stack);
  return stack ? stack.split("\n") : [];
}

/** A readable text for a thrown non-Error: strings as they are, everything else inspected. */
function describe(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    const { inspect } = process.getBuiltinModule("node:util");
    return inspect(value, { depth: 2, breakLength: Infinity });
  } catch {
    return `[${typeof value} that cannot be printed]`;
  }
}
