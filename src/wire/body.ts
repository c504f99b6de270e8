// Reading a message's body on a node:http server or client, within a limit: shared by the proxy and the Telemetry API listener.
import type { IncomingMessage } from "node:http";

/** What `readBody` resolves with when the body is over its limit: nothing past the limit was kept, and the rest is unread (resume() drops it). */
export const tooLarge = Symbol("too large");

/**
 * A whole body, or `tooLarge` as soon as it is known to be longer than `limit` (from its Content-Length, or as it
 * arrives). Rejects when the message breaks off before its end: the sender hung up.
 */
export function readBody(message: IncomingMessage): Promise<Buffer>;
export function readBody(message: IncomingMessage, limit: number): Promise<Buffer | typeof tooLarge>;
export function readBody(message: IncomingMessage, limit = Infinity): Promise<Buffer | typeof tooLarge> {
  return new Promise((resolve, reject) => {
    if (Number(message.headers["content-length"]) > limit) return resolve(tooLarge);
    const chunks: Buffer[] = [];
    let size = 0;
    const take = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      message.off("data", take);
      message.pause();
      chunks.length = 0;
      resolve(tooLarge);
    };
    message.on("data", take);
    message.once("end", () => resolve(Buffer.concat(chunks, size)));
    message.once("error", reject);
    message.once("close", () => message.complete || reject(new Error("the message broke off before its end")));
  });
}
