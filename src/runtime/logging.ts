// The function's logs, as the managed Node.js runtime writes them: `console.*` prefixed with the time, request id and
// level (or one JSON object per call), filtered by level, and framed on Lambda's telemetry fd when it gives one.
//
// Lambda passes a custom runtime its log configuration only as variables: AWS_LAMBDA_LOG_FORMAT (Text or JSON) and
// AWS_LAMBDA_LOG_LEVEL (TRACE … FATAL, for JSON). The rest is the runtime's job. Lambda reads stdout line by line, so a
// text line's own line breaks are written as CR, which keeps a multi-line message (a stack) one CloudWatch event.
import { toErrorResponse } from "../wire/errors.ts";
import { limits } from "../wire/protocol.ts";
import type { InvokeStore } from "./invoke-store.ts";

/** A level's name, its order, and the bits it sets in a telemetry frame's type. */
export interface Level {
  name: "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL";
  priority: number;
  mask: number;
}

export const levels: Record<Level["name"], Level> = {
  TRACE: { name: "TRACE", priority: 1, mask: 4 },
  DEBUG: { name: "DEBUG", priority: 2, mask: 8 },
  INFO: { name: "INFO", priority: 3, mask: 12 },
  WARN: { name: "WARN", priority: 4, mask: 16 },
  ERROR: { name: "ERROR", priority: 5, mask: 20 },
  FATAL: { name: "FATAL", priority: 6, mask: 24 },
};

/** What the environment asks for. */
export interface LogSettings {
  format: "TEXT" | "JSON";
  /** Calls below this level write nothing. */
  minLevel: Level;
  /** `_LAMBDA_TELEMETRY_LOG_FD`: where each call goes as one frame instead of stdout. */
  fd?: number;
}

/**
 * Reads the settings from `env`. The telemetry fd is taken out of the environment (as the managed runtime does), so a
 * child process does not write into it; `fd` keeps one taken earlier (a snapshot's init, then its restore).
 * With `AWS_LAMBDA_MAX_CONCURRENCY` set (Lambda Managed Instances), lines are JSON whatever the format says: the
 * managed runtime writes them so, and only JSON lets a reader tell the invocations' lines apart reliably.
 */
export function logSettings(env: NodeJS.ProcessEnv, fd?: number): LogSettings {
  const raw = env._LAMBDA_TELEMETRY_LOG_FD;
  delete env._LAMBDA_TELEMETRY_LOG_FD;
  const given = raw === undefined || raw === "" ? NaN : Number(raw);
  const level = env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase() as Level["name"] | undefined;
  return {
    format: env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === "JSON" || env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined ? "JSON" : "TEXT",
    minLevel: level && Object.hasOwn(levels, level) ? levels[level] : levels.TRACE,
    fd: Number.isInteger(given) && given > 0 ? given : fd,
  };
}

/** Frame types, big-endian in a frame's first 4 bytes, OR-ed with the level's mask. */
const frameType = { TEXT: 0xa55a0003, JSON: 0xa55a0002 } as const;

type Console = Record<"trace" | "debug" | "info" | "log" | "warn" | "error" | "fatal", (...args: unknown[]) => void>;

/** The function's log: what `console.*` calls go through once `patchConsole` has run, and the runtime's own error lines. */
export class FunctionLog {
  /** Where the current invocation's request id and tenant id are; before the first invocation there is none ("-"). */
  store: InvokeStore | undefined;
  #util = process.getBuiltinModule("node:util");
  #fs = process.getBuiltinModule("node:fs");

  constructor(public settings: LogSettings) {}

  /** Writes one call's line (or frame), if its level is enabled. Never throws for what it is given. */
  write(level: Level, args: unknown[]): void {
    if (level.priority < this.settings.minLevel.priority) return;
    const now = new Date();
    const requestId = this.store?.getRequestId() ?? "-";
    const { format, fd } = this.settings;
    let line: string;
    try {
      line = format === "JSON" ? this.#json(now, requestId, this.store?.getTenantId(), level, args) : `${now.toISOString()}\t${requestId}\t${level.name}\t${this.#format(args)}`;
    } catch (error) {
      // Only a value whose inspection throws (a custom inspect or a getter that throws) gets here; logging must not fail the caller.
      line = `${now.toISOString()}\t${requestId}\t${level.name}\t[a value that cannot be printed: ${(error as Error)?.message}]`;
    }
    if (fd !== undefined) return this.#frame(fd, now, level, format === "JSON" ? line : `${line}\n`);
    process.stdout.write(`${line.includes("\n") ? line.replace(/\n/g, "\r") : line}\n`);
  }

  /**
   * The line the managed runtime writes when an invocation or init fails (`Invoke Error`, `Init Error`...): in text,
   * the title and the error as JSON (`errorType`, `errorMessage`, its own fields, `stack` as lines); in JSON, the error
   * as the message. A value that is not an Error is first made one, as the managed runtime does.
   */
  error(title: string, thrown: unknown): void {
    const error = asError(thrown);
    // A huge message or stack would make a huge line: then the bounded error JSON (the one posted to /error) is logged.
    const shown = tooLong(error) ? toErrorResponse(thrown) : error;
    if (this.settings.format === "JSON") return this.write(levels.ERROR, [shown]);
    this.write(levels.ERROR, [title, `\t${shown === error ? errorJson(error) : JSON.stringify(shown)}`]);
  }

  /** `util.format(...args)`, as `console.log` would print them (`console.log()` prints "undefined", as in the managed runtime). */
  #format(args: unknown[]): string {
    return args.length === 1 && typeof args[0] === "string" ? args[0] : this.#util.format(args[0], ...args.slice(1));
  }

  /** One JSON object: a lone argument is the message as it is (an object stays an object); several are formatted into text, and the first Error among the rest adds its fields. */
  #json(now: Date, requestId: string, tenantId: string | undefined, level: Level, args: unknown[]): string {
    const record: Record<string, unknown> = { timestamp: now.toISOString(), level: level.name, requestId };
    if (tenantId) record.tenantId = tenantId;
    if (args.length <= 1) {
      record.message = args[0];
      try {
        return JSON.stringify(record, expandErrors);
      } catch {
        record.message = this.#format(args);
        return JSON.stringify(record);
      }
    }
    record.message = this.#format(args);
    const error = args.slice(1).find((arg) => arg instanceof Error) as Error | undefined;
    if (error) {
      record.errorType = error.constructor?.name ?? "UnknownError";
      record.errorMessage = error.message;
      record.stackTrace = typeof error.stack === "string" ? error.stack.split("\n") : [];
    }
    return JSON.stringify(record);
  }

  /** One frame: type, length, time in µs (big-endian), then the UTF-8 message; one write, so frames never interleave. */
  #frame(fd: number, now: Date, level: Level, message: string): void {
    const body = Buffer.from(message, "utf8");
    const frame = Buffer.allocUnsafe(16 + body.length);
    frame.writeUInt32BE((frameType[this.settings.format] | level.mask) >>> 0, 0);
    frame.writeUInt32BE(body.length, 4);
    frame.writeBigUInt64BE(BigInt(now.getTime()) * 1000n, 8);
    body.copy(frame, 16);
    for (let at = 0; at < frame.length; ) at += this.#fs.writeSync(fd, frame, at);
  }
}

/**
 * Makes `console.trace|debug|info|log|warn|error` (and the managed runtime's `console.fatal`) write through `log`;
 * a method below the configured level becomes a no-op, so disabled debug lines cost a call and nothing else.
 * `console.trace` logs its message at TRACE level, without a stack, as in the managed runtime.
 */
export function patchConsole(log: FunctionLog): void {
  const method = (level: Level) =>
    level.priority < log.settings.minLevel.priority
      ? () => {}
      : (message?: unknown, ...params: unknown[]) => log.write(level, [message, ...params]);
  const target = console as unknown as Console;
  target.trace = method(levels.TRACE);
  target.debug = method(levels.DEBUG);
  target.info = method(levels.INFO);
  target.warn = method(levels.WARN);
  target.error = method(levels.ERROR);
  target.fatal = method(levels.FATAL);
  target.log = target.info;
}

function tooLong(error: Error): boolean {
  try {
    return String(error.message).length + String(error.stack).length > limits.errorBodyBytes;
  } catch {
    return false;
  }
}

/** The managed runtime logs a thrown non-Error as `new Error(String(value))`. */
function asError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  try {
    return new Error(String(thrown));
  } catch {
    return new Error("a thrown value that cannot be printed");
  }
}

/** An Error as JSON for an error line: `errorType`, `errorMessage`, `code`, its own enumerable fields, `stack` as lines. */
function errorJson(error: Error): string {
  try {
    return JSON.stringify(error, (_key, value) => {
      if (!(value instanceof Error)) return value;
      const expanded: Record<string, unknown> = Object.assign<Record<string, unknown>, Error>({ errorType: value.name, errorMessage: value.message, code: (value as { code?: unknown }).code }, value);
      if (typeof value.stack === "string") expanded.stack = value.stack.split("\n");
      return expanded;
    });
  } catch {
    try {
      const shape = { errorType: error.name, errorMessage: error.message, trace: typeof error.stack === "string" ? error.stack.split("\n") : [] };
      return JSON.stringify(shape);
    } catch {
      return '{"errorType":"Error","errorMessage":"an error that cannot be read"}';
    }
  }
}

/** In a JSON line, an Error anywhere in the message becomes `{errorType, errorMessage, stackTrace, ...its own fields}`. */
function expandErrors(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  return Object.assign({ errorType: value.constructor?.name ?? "UnknownError", errorMessage: value.message, stackTrace: typeof value.stack === "string" ? value.stack.split("\n") : value.stack }, value);
}
