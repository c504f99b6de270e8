// The streaming bench's function: BENCH_MODE=stream streams event.bytes in 64 KiB chunks (waiting for 'drain'), otherwise returns the same number of bytes as one buffered JSON string; event.waitMs first awaits that long, as I/O would.
import { lambda, streamifyResponse } from "micro-lambda";

interface Event {
  bytes: number;
  waitMs?: number;
}

const CHUNK = Buffer.alloc(64 * 1024, "x");
/** The buffered answers, by size: a JSON string of exactly `bytes` bytes (quotes included). */
const strings = new Map<number, string>();
const wait = (ms = 0) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined);

if (process.env.BENCH_MODE === "stream") {
  lambda(
    streamifyResponse(async (event: Event, stream) => {
      await wait(event.waitMs);
      for (let left = event.bytes; left > 0; left -= CHUNK.length) {
        if (!stream.write(left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left))) await new Promise((resolve) => stream.once("drain", resolve));
      }
      stream.end();
    }),
  );
} else {
  lambda(async (event: Event) => {
    await wait(event.waitMs);
    if (event.bytes < 2) return {};
    let text = strings.get(event.bytes);
    if (text === undefined) strings.set(event.bytes, (text = "x".repeat(event.bytes - 2)));
    return text;
  });
}
