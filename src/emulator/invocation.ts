// What the emulator is given and what it gives back: its options, an invocation's options, and how an invocation ended.
import type { Writable } from "node:stream";

export interface EmulatorOptions {
  /** The function's command: a bootstrap (`["dist/hello/x86_64/bootstrap"]`) or `["npx", "tsx", "main.ts"]`. */
  command: string[];
  cwd?: string;
  /** Added to the environment Lambda gives the function (and to this process's own environment). */
  env?: Record<string, string | undefined>;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The function's timeout; default `AWS_LAMBDA_FUNCTION_TIMEOUT` seconds (as aws-lambda-rie reads it), else Lambda's 3 s. */
  timeoutMs?: number;
  /** How long init (spawn → first /next) may take; Lambda's limit is 10 s. */
  initTimeoutMs?: number;
  /** Default `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, else 128. */
  memoryMB?: number;
  /** Default `AWS_LAMBDA_FUNCTION_NAME`, else "function". The ARN and the log group follow it. */
  functionName?: string;
  /** Default `AWS_REGION`, else us-east-1. */
  region?: string;
  /** How many invocations the function takes at once (Lambda Managed Instances); sets `AWS_LAMBDA_MAX_CONCURRENCY` when above 1. */
  concurrency?: number;
  /** Where the function's output and the START/END/REPORT lines go, as in CloudWatch Logs; also the emulator's own warnings. None by default. */
  output?: Writable;
  /**
   * A folder of Lambda extensions, as a layer puts them in /opt/extensions: every executable in it is started
   * before the function and must register; the first invoke waits for all of them.
   */
  extensionsDir?: string;
  /** The function's log format, as Lambda's advanced logging controls give it to a custom runtime: `AWS_LAMBDA_LOG_FORMAT`. */
  logFormat?: "Text" | "JSON";
  /** `AWS_LAMBDA_LOG_LEVEL`: the runtime drops what is below it. */
  logLevel?: "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL";
  /**
   * Give the function a telemetry log fd, as Lambda does: an extra pipe whose number is in `_LAMBDA_TELEMETRY_LOG_FD`.
   * Each frame the runtime writes to it is one log record, however many lines it has.
   */
  telemetryLogFd?: boolean;
}

export interface InvokeOptions {
  /** Sent as `Lambda-Runtime-Client-Context` (UTF-8): an object is JSON-encoded, a string is sent as it is. */
  clientContext?: unknown;
  /** Sent as `Lambda-Runtime-Cognito-Identity` (UTF-8): an object is JSON-encoded, a string is sent as it is. */
  identity?: unknown;
  /** The X-Ray trace header; a fresh one by default, none with `null`. */
  traceId?: string | null;
  tenantId?: string;
  /** A streamed response has started: its content type, and for function URLs the prelude (status, headers, cookies). */
  onHead?: (head: StreamHead) => void;
  /**
   * Each chunk of a streamed response, in order, as it arrives (after the prelude). Return a promise to hold the
   * function's stream until it settles, as a slow reader does. When given, chunks are not collected in `payload`.
   */
  onChunk?: (chunk: Buffer) => void | Promise<void>;
}

/** The start of a streamed response, as a function URL reads it. */
export interface StreamHead {
  contentType: string;
  /** Set when the content type is `application/vnd.awslambda.http-integration-response`: the JSON before the 8 NUL bytes. */
  prelude?: { statusCode?: number; headers?: Record<string, string>; cookies?: string[] };
}

export interface ErrorJson {
  errorType: string;
  errorMessage: string;
  stackTrace?: string[];
}

/** How one invocation ended, as the caller of Lambda's Invoke API sees it, plus what only an emulator can show. */
export interface InvokeResult {
  requestId: string;
  ok: boolean;
  /** The response bytes (the error JSON when `ok` is false). Streamed: the bytes streamed after any prelude, also when it failed mid-stream. */
  payload: Buffer;
  /** The runtime answered with a streamed response (`Lambda-Runtime-Function-Response-Mode: streaming`). */
  streamed?: boolean;
  /** A streamed response's content type and prelude. */
  head?: StreamHead;
  /** The response parsed as JSON, when `ok` and it parses. */
  result?: unknown;
  error?: ErrorJson;
  /** The `Lambda-Runtime-Function-Error-Type` header the runtime sent with its error, if any. */
  errorTypeHeader?: string;
  /** The headers of the runtime's `/response` or `/error` request. */
  answerHeaders?: Record<string, string | string[] | undefined>;
  /** What the function printed while this invocation ran (and during init, for the invocation that started it). */
  logs: string;
  durationMs: number;
  initDurationMs?: number;
  maxMemoryUsedMB?: number;
}

/** One invocation on its way through the emulator: queued, running, then finished. */
export interface Invocation {
  requestId: string;
  invocationId: string;
  payload: Buffer;
  /** The `/next` headers particular to this invocation (trace id, client context, identity, tenant). */
  headers: Record<string, string>;
  options: InvokeOptions;
  logs: string[];
  initDurationMs?: number;
  startedAt?: number;
  timer?: NodeJS.Timeout;
  /** It timed out: the error it ends with once its sandbox is gone, and how long it ran. */
  timedOutWith?: ErrorJson;
  durationMs?: number;
  /** Set once the result is decided: a late answer and a timeout must not both finish it. */
  finished?: boolean;
  resolve(result: InvokeResult): void;
}

/** The result of an invocation that never reached the function. */
export function refused(requestId: string, errorType: string, errorMessage: string): InvokeResult {
  const error = { errorType, errorMessage };
  return { requestId, ok: false, payload: Buffer.from(JSON.stringify(error)), error, logs: "", durationMs: 0 };
}
