// Lambda's Invoke API for callers (`POST /2015-03-31/functions/{name}/invocations`), as aws-lambda-rie serves it, with Lambda's refusals of what Lambda would not take.
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, readBody, type Route } from "./http.ts";
import type { InvokeOptions, InvokeResult } from "./index.ts";

/** Lambda's limit on a synchronous request payload: 6 MiB ("Request must be smaller than 6291456 bytes"). */
export const MAX_REQUEST_BYTES = 6_291_456;

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function invokeApi(invoke: (event: Buffer, options: InvokeOptions) => Promise<InvokeResult>): Route {
  return (req, res) => {
    if (req.method === "POST" && /^\/2015-03-31\/functions\/[^/]+\/invocations(\?.*)?$/.test(req.url ?? "")) return invocation(invoke, req, res);
    return undefined;
  };
}

/**
 * The function's response, or its error with `X-Amz-Function-Error: Unhandled`. A streamed response (which
 * aws-lambda-rie does not support) is passed on as a function URL passes it on: the prelude's status, headers and
 * cookies, then the body chunk by chunk as it arrives; a failure after that is reported in the trailers
 * (`X-Amz-Function-Error`, and Lambda's two error trailers as the runtime sent them).
 */
async function invocation(invoke: (event: Buffer, options: InvokeOptions) => Promise<InvokeResult>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { bytes, size } = await readBody(req, MAX_REQUEST_BYTES);
  if (size > MAX_REQUEST_BYTES) throw lambdaError(413, "RequestEntityTooLargeException", `Request must be smaller than ${MAX_REQUEST_BYTES} bytes for the InvokeFunction operation`);
  // An empty payload is the event {}, as the AWS CLI sends it without --payload.
  const event = size === 0 ? Buffer.from("{}") : bytes;
  try {
    JSON.parse(utf8.decode(event));
  } catch (error) {
    throw lambdaError(400, "InvalidRequestContentException", `Could not parse request body into json: Could not parse payload into json: ${(error as Error).message}`);
  }
  let streaming = false;
  const result = await invoke(event, {
    clientContext: clientContext(req.headers["x-amz-client-context"]),
    tenantId: utf8Header(req.headers["x-amz-tenant-id"]),
    onHead: ({ contentType, prelude }) => {
      streaming = true;
      // With a prelude, the content type is the prelude's own, as a function URL sends it.
      const headers: Record<string, string | string[]> = { "content-type": prelude ? "application/octet-stream" : contentType, ...lowerCased(prelude?.headers) };
      if (prelude?.cookies?.length) headers["set-cookie"] = prelude.cookies;
      delete headers["content-length"]; // the body is streamed, chunked, with trailers
      headers.trailer = "X-Amz-Function-Error, Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body";
      res.writeHead(prelude?.statusCode ?? 200, headers);
    },
    onChunk: (chunk) => {
      if (res.destroyed || res.write(chunk)) return;
      return new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    },
  });
  if (!streaming) {
    res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": result.requestId, ...(result.ok ? {} : { "x-amz-function-error": "Unhandled" }) });
    return void res.end(result.ok || !result.streamed ? result.payload : JSON.stringify(result.error));
  }
  if (!result.ok) {
    res.addTrailers({
      "x-amz-function-error": "Unhandled",
      "lambda-runtime-function-error-type": result.errorTypeHeader ?? result.error!.errorType,
      "lambda-runtime-function-error-body": Buffer.from(JSON.stringify(result.error)).toString("base64"),
    });
  }
  res.end();
}

/**
 * `X-Amz-Client-Context`: base64 of a JSON object (UTF-8), which the function gets as its client context. Anything
 * else is refused as Lambda refuses it.
 */
function clientContext(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(",") : header;
  const refuse = () => lambdaError(400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.");
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw refuse();
  let json: string;
  try {
    json = utf8.decode(Buffer.from(text, "base64"));
    const value: unknown = JSON.parse(json);
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
  } catch {
    throw refuse();
  }
  return json;
}

/** A header's text: Node reads header bytes one per character (latin1); callers send UTF-8. */
function utf8Header(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? Buffer.from(value, "latin1").toString("utf8") : undefined;
}

/** An error as Lambda's API answers it: `X-Amzn-ErrorType` names it, the body is `{Type, message}`. */
function lambdaError(status: number, type: string, message: string): HttpError {
  return new HttpError(status, type, message, { "x-amzn-errortype": type }, { Type: "User", message });
}

function lowerCased(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
}
