// The names Lambda's APIs are spoken in: every path, header and wire type micro-lambda uses, in one place.

/** Runtime API: the function's side of an invocation. Base `http://${AWS_LAMBDA_RUNTIME_API}`. */
export const runtimePaths = {
  next: "/2018-06-01/runtime/invocation/next",
  response: (requestId: string) => `/2018-06-01/runtime/invocation/${encodeURIComponent(requestId)}/response`,
  error: (requestId: string) => `/2018-06-01/runtime/invocation/${encodeURIComponent(requestId)}/error`,
  initError: "/2018-06-01/runtime/init/error",
} as const;

/** Reads a `response` or `error` path back: `[, encoded request id, "response" | "error"]`. The proxy routes by it. */
export const invocationPathPattern = /^\/2018-06-01\/runtime\/invocation\/([^/?]+)\/(response|error)$/;

/** Extensions API: register, then wait for INVOKE and SHUTDOWN events. */
export const extensionPaths = {
  register: "/2020-01-01/extension/register",
  next: "/2020-01-01/extension/event/next",
  initError: "/2020-01-01/extension/init/error",
  exitError: "/2020-01-01/extension/exit/error",
} as const;

/** Telemetry API (and the older Logs API it replaces): where an extension subscribes to log streams. */
export const telemetryPaths = {
  telemetry: "/2022-07-01/telemetry",
  logs: "/2020-08-15/logs",
} as const;

/** Headers, lower-cased as node:http delivers them. */
export const headers = {
  requestId: "lambda-runtime-aws-request-id",
  deadlineMs: "lambda-runtime-deadline-ms",
  functionArn: "lambda-runtime-invoked-function-arn",
  traceId: "lambda-runtime-trace-id",
  clientContext: "lambda-runtime-client-context",
  cognitoIdentity: "lambda-runtime-cognito-identity",
  tenantId: "lambda-runtime-aws-tenant-id",
  invocationId: "lambda-runtime-invocation-id",
  functionErrorType: "lambda-runtime-function-error-type",
  functionErrorBody: "lambda-runtime-function-error-body",
  xrayErrorCause: "lambda-runtime-function-xray-error-cause",
  responseMode: "lambda-runtime-function-response-mode",
  extensionName: "lambda-extension-name",
  extensionIdentifier: "lambda-extension-identifier",
  extensionErrorType: "lambda-extension-function-error-type",
  extensionAcceptFeature: "lambda-extension-accept-feature",
} as const;

export type HeaderName = (typeof headers)[keyof typeof headers];

/**
 * The body of `/error`, `/init/error` and the extension error endpoints, as the managed Node.js runtime sends it:
 * `trace` (the Runtime API docs' example says `stackTrace`, but `trace` is what Node functions' callers have always seen).
 */
export interface ErrorResponse {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export const errorContentType = "application/vnd.aws.lambda.error+json";

/** Function URLs: a streamed response that starts with this content type begins with a JSON prelude and 8 NUL bytes. */
export const httpIntegrationContentType = "application/vnd.awslambda.http-integration-response";

/** Limits Lambda enforces on responses, and the bounds micro-lambda keeps its own error reports within. */
export const limits = {
  /** A buffered `/response`: 6 MB and 100 bytes, the figure Lambda's Runtime API names in its 413. */
  bufferedResponseBytes: 6_291_556,
  streamedResponseBytes: 200 * 1024 * 1024,
  /**
   * An error JSON is cut to this (message and trace shortened, still valid JSON): well under the 6 MB response
   * limit, and small enough that its `Invoke Error` log line stays one CloudWatch event (256 KiB at most).
   */
  errorBodyBytes: 128 * 1024,
  /** The X-Ray error cause header is left out when longer: HTTP servers limit a request's head to 64 KiB or less. */
  xrayErrorCauseBytes: 16 * 1024,
} as const;
