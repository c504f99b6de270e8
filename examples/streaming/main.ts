// A function URL that streams: the status and headers go out first, then one NDJSON line per item as soon as it is ready.
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
        await new Promise((resolve) => setTimeout(resolve, 50)); // work that finishes item by item
        yield `${JSON.stringify({ item, of: count })}\n`;
      }
    }
    // pipeline() waits whenever the caller reads slower than the items come, ends the stream, and rejects
    // (so the invocation fails, with the error in the response's trailers) if either side breaks.
    await pipeline(Readable.from(lines()), body);
  }),
);
