// {{name}}: a Lambda function that streams its response, for a function URL with InvokeMode RESPONSE_STREAM
// (or InvokeWithResponseStream): the status and headers go out first, then one NDJSON line per item as soon as
// it is ready, up to 200 MB in all.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HttpResponseStream, lambda, streamifyResponse } from "micro-lambda";

interface FunctionUrlEvent {
  queryStringParameters?: { count?: string };
}

lambda(
  streamifyResponse(async (event: FunctionUrlEvent, responseStream) => {
    const count = Math.min(Math.max(Number(event.queryStringParameters?.count) || 3, 1), 100);
    const body = HttpResponseStream.from(responseStream, { statusCode: 200, headers: { "content-type": "application/x-ndjson" } });
    async function* lines() {
      for (let item = 1; item <= count; item++) {
        await new Promise((resolve) => setTimeout(resolve, 10)); // work that finishes item by item
        yield `${JSON.stringify({ item, of: count })}\n`;
      }
    }
    // pipeline() waits whenever the caller reads slower than the items come, ends the stream, and rejects (the
    // invocation then fails, with the error in the response's trailers) if either side breaks.
    await pipeline(Readable.from(lines()), body);
  }),
);
