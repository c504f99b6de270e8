// Response streaming: `streamifyResponse` marks a handler that writes its response while it runs, and `ResponseStream` carries those bytes to Lambda as they are written.
import { Writable } from "node:stream";
import type { Context } from "./context.ts";
import { InvocationError, toErrorResponse } from "../wire/errors.ts";
import { httpIntegrationContentType, limits, type ErrorResponse } from "../wire/protocol.ts";
import type { StreamedResponse } from "./runtime-api.ts";

/** A handler that writes its response to `responseStream` instead of returning it; what it returns is ignored. */
export type StreamingHandler<TEvent = any> = ((event: TEvent, responseStream: ResponseStream, context: Context) => unknown) & { readonly [streaming]: true };

const streaming = Symbol("micro-lambda streaming handler");

/**
 * Marks `handler` as a streaming handler, as `awslambda.streamifyResponse` does in the managed runtime:
 * `lambda(streamifyResponse(async (event, responseStream, context) => { ... }))`. Its bytes reach the
 * caller as they are written (function URLs, `InvokeWithResponseStream`), up to 200 MB.
 */
export function streamifyResponse<TEvent = any>(handler: (event: TEvent, responseStream: ResponseStream, context: Context) => unknown): StreamingHandler<TEvent> {
  if (typeof handler !== "function") throw new TypeError(`streamifyResponse(handler) needs a function, got ${typeof handler}`);
  return Object.assign((event: TEvent, responseStream: ResponseStream, context: Context) => handler(event, responseStream, context), { [streaming]: true as const });
}

export function isStreaming(handler: unknown): handler is StreamingHandler {
  return typeof handler === "function" && (handler as Partial<StreamingHandler>)[streaming] === true;
}

/** What a function URL makes of a streamed response: the HTTP status, headers and cookies, sent before the body. */
export interface HttpResponsePrelude {
  statusCode?: number;
  headers?: Record<string, string>;
  cookies?: string[];
}

/** Function URLs: the response stream as an HTTP response, as `awslambda.HttpResponseStream` in the managed runtime. */
export class HttpResponseStream {
  /** Writes the prelude (JSON, then 8 NUL bytes: JSON never contains NUL) and returns the stream for the body. Call it before writing anything else. */
  static from(stream: ResponseStream, prelude: HttpResponsePrelude): ResponseStream {
    stream.setContentType(httpIntegrationContentType);
    stream.write(Buffer.concat([Buffer.from(JSON.stringify(prelude)), Buffer.alloc(8)]));
    return stream;
  }
}

/**
 * The Writable a streaming handler writes to. Its first write opens `POST /response` in streaming mode
 * (so `setContentType` works until then, and a handler that fails before writing anything gets a plain
 * `/error`); `end()` ends the body. `write()` returns false while the connection to Lambda is full, as any
 * Writable does: a handler that waits for 'drain' (or uses `pipeline`) never makes the runtime hold more than
 * a chunk or two, however slowly the caller reads.
 */
export class ResponseStream extends Writable {
  readonly #open: (contentType: string) => StreamedResponse;
  #contentType = "application/octet-stream";
  #response?: StreamedResponse;
  #bytes = 0;
  /** The end of the body has been sent: nothing can be reported any more. */
  #ended?: Promise<void>;
  #failure?: unknown;

  /** `open` starts the streamed `POST /response` (see `RuntimeApi.respondStreaming`). */
  constructor(open: (contentType: string) => StreamedResponse) {
    super();
    this.#open = open;
    // An 'error' event nobody listens to would crash the process. The runtime reports it instead, in the trailers.
    this.on("error", (error) => (this.#failure ??= error));
  }

  /** The response's Content-Type (default `application/octet-stream`); it goes out with the first write. */
  setContentType(contentType: string): void {
    if (this.#response) throw new Error("setContentType() must be called before the first write: the response's headers have been sent");
    this.#contentType = contentType;
  }

  /** True once the first byte has gone out: from then on a failure can only be reported in the trailers. */
  get started(): boolean {
    return this.#response !== undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.#bytes + chunk.length > limits.streamedResponseBytes) {
      const message = `the streamed response is larger than Lambda's limit of ${limits.streamedResponseBytes} bytes (200 MB): ${this.#bytes} bytes were sent, a write of ${chunk.length} more was refused`;
      return done(new InvocationError("Function.ResponseSizeTooLarge", message));
    }
    this.#bytes += chunk.length;
    (this.#response ??= this.#open(this.#contentType)).write(chunk, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    // The handler ended its response: the caller gets the end now, even if the handler goes on working.
    this.#ended = (this.#response ??= this.#open(this.#contentType)).end();
    this.#ended.catch(() => {}); // awaited, and so reported, by finish()
    done();
  }

  /**
   * Called when the handler has returned: ends the stream if the handler did not, waits until every byte has
   * been handed to the connection, and throws what broke the stream (the size limit, a `destroy(error)`), if anything did.
   */
  async complete(): Promise<void> {
    if (!this.writableEnded && !this.destroyed) this.end();
    if (!this.closed) await new Promise((resolve) => this.once("close", resolve));
    // `errored` is set as soon as the stream is destroyed with an error; its 'error' event comes a tick later.
    const failure = this.errored ?? this.#failure;
    if (failure != null) throw failure;
    if (!this.writableFinished) throw new Error("the response stream was destroyed before it ended");
  }

  /**
   * Ends the streamed `POST /response` (opening it if nothing was written) with `error`, if any, in its
   * trailers, and waits for Lambda's answer. After the body has ended, an error can no longer reach the caller: it is logged.
   */
  finish(error?: ErrorResponse): Promise<void> {
    if (this.#ended) {
      if (error) console.error(`micro-lambda: the handler failed after its response stream had ended, so the caller has the whole response: ${JSON.stringify(error)}`);
      return this.#ended;
    }
    this.destroy(); // nothing the handler writes after this can follow the trailers
    const failure = this.errored ?? this.#failure;
    this.#ended = (this.#response ??= this.#open(this.#contentType)).end(error ?? (failure == null ? undefined : toErrorResponse(failure)));
    return this.#ended;
  }
}
