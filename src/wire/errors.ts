// What can go wrong, named: the runtime's own error classes, and the one normaliser that turns anything thrown into Lambda's error JSON.
import { limits, type ErrorResponse } from "./protocol.ts";

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
 * The handler's result cannot be turned into JSON (a cycle, a BigInt, a throwing `toJSON`). Named and worded as the
 * managed Node.js runtime names it, `Runtime.JSONStringifyError`; the reason is in `cause` (logged with it).
 */
export class JSONStringifyError extends Error {
  constructor(options?: ErrorOptions) {
    super("Unable to stringify response body", options);
    // An own property, as in the managed runtime, so the `Invoke Error` line shows it the same way.
    this.name = "Runtime.JSONStringifyError";
  }
}

/**
 * Turns whatever was thrown into `{errorType, errorMessage, trace}`, as the managed Node.js runtime does: an Error's
 * `name`, `message` and `stack` lines; for anything else, its `typeof` and its text. Never throws, whatever it is
 * given (getters that throw, `null`, objects without a prototype, Proxies), and never returns more than `maxBytes`
 * of JSON: a longer message or trace is cut, so a 100 MB message cannot become a 100 MB error body.
 */
export function toErrorResponse(thrown: unknown, maxBytes: number = limits.errorBodyBytes): ErrorResponse {
  let error: ErrorResponse;
  try {
    error = normalise(thrown);
  } catch {
    // Only a Proxy whose traps throw gets here (even `instanceof` asks it for its prototype).
    error = { errorType: typeof thrown, errorMessage: "a thrown value that cannot be inspected", trace: [] };
  }
  return bound(error, maxBytes);
}

function normalise(thrown: unknown): ErrorResponse {
  if (thrown instanceof InvocationError) {
    // Its stack would only show the runtime's own frames: the first line is enough, as the managed runtime's first line.
    return { errorType: thrown.errorType, errorMessage: thrown.message, trace: [`${thrown.errorType}: ${thrown.message}`] };
  }
  if (isErrorLike(thrown)) {
    return {
      errorType: escapeDelete(attempt(() => thrown.name) || "Error"),
      errorMessage: escapeDelete(attempt(() => thrown.message) ?? ""),
      trace: stackLines(thrown),
    };
  }
  return { errorType: typeof thrown, errorMessage: describe(thrown), trace: [] };
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

/** The managed runtime writes DEL (0x7f) as `%7F` in error names, messages and stacks; so does this. */
function escapeDelete(text: string): string {
  return text.includes("\x7f") ? text.replaceAll("\x7f", "%7F") : text;
}

function stackLines(error: Error): string[] {
  const stack = attempt(() => error.stack);
  return stack ? escapeDelete(stack).split("\n") : [];
}

/** A readable text for a thrown non-Error: strings, numbers, null... as `String()` has them, objects inspected. */
function describe(value: unknown): string {
  if (typeof value !== "object" || value === null) return String(value);
  try {
    const { inspect } = process.getBuiltinModule("node:util");
    return inspect(value, { depth: 2, breakLength: Infinity });
  } catch {
    return `[${typeof value} that cannot be printed]`;
  }
}

/** Cuts an error JSON to at most `maxBytes`: the trace loses lines from its end, then the message is shortened, with a note of what was cut. */
function bound(error: ErrorResponse, maxBytes: number): ErrorResponse {
  const size = () => Buffer.byteLength(JSON.stringify(error));
  if (error.errorMessage.length <= maxBytes && error.errorType.length <= maxBytes && error.trace.length <= 1000 && size() <= maxBytes) return error;
  // One UTF-8 character is at most 3 bytes for each UTF-16 unit, and JSON escapes take at most 6: start from a cut that is short enough in characters.
  const cut = (text: string, chars: number) => (text.length <= chars ? text : `${text.slice(0, chars)}… [${text.length - chars} more characters cut]`);
  error = { errorType: cut(error.errorType, 1000), errorMessage: cut(error.errorMessage, maxBytes), trace: error.trace.slice(0, 1000).map((line) => cut(line, 1000)) };
  while (size() > maxBytes && error.trace.length > 1) error.trace = error.trace.slice(0, Math.floor(error.trace.length / 2));
  for (let chars = Math.floor(maxBytes / 2); size() > maxBytes && chars > 0; chars = Math.floor(chars / 2)) {
    error.errorMessage = cut(error.errorMessage, chars);
    error.trace = error.trace.map((line) => cut(line, chars));
  }
  return size() <= maxBytes ? error : { errorType: "Error", errorMessage: "the error report was too large to send", trace: [] };
}

/**
 * The `Lambda-Runtime-Function-XRay-Error-Cause` header that goes with `/error`, as the managed Node.js runtime writes
 * it: the exception's type, message and stack frames for X-Ray. Empty for `null` and `undefined`; never longer than
 * `maxBytes` (frames are dropped, then the cause is left empty); only ASCII (other characters are JSON escapes).
 */
export function xrayErrorCause(thrown: unknown, maxBytes: number = limits.xrayErrorCauseBytes): string {
  try {
    if (thrown === null || thrown === undefined) return "";
    const value = thrown as Error;
    const stack = attempt(() => value.stack);
    const frames = stack ? escapeDelete(stack).split("\n").slice(1).map(frame) : [];
    const exception = { type: mapDefined(attempt(() => value.name), escapeDelete), message: mapDefined(attempt(() => value.message), escapeDelete), stack: frames };
    for (;;) {
      const cause = { working_directory: process.cwd(), exceptions: [exception], paths: [...new Set(exception.stack.map((f) => f.path))] };
      const text = JSON.stringify(cause).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
      if (text.length <= maxBytes) return text;
      if (exception.stack.length === 0) return "";
      exception.stack = exception.stack.slice(0, Math.floor(exception.stack.length / 2));
    }
  } catch {
    return "";
  }
}

function mapDefined<T>(value: T | undefined, map: (value: T) => T): T | undefined {
  return value === undefined ? undefined : map(value);
}

/** One V8 stack line, `    at label (path:line:column)` or `    at path:line:column`, as X-Ray wants it. */
function frame(line: string): { path: string; line: number; label: string } {
  const match = /^\s*at (?:(.*?) \()?(.*?):(\d+)(?::\d+)?\)?$/.exec(line);
  if (!match) return { path: line.trim(), line: NaN, label: "anonymous" };
  return { path: match[2]!, line: Number(match[3]), label: match[1] ?? "anonymous" };
}
