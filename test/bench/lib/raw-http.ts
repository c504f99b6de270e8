// A prototype of src/http.ts's `httpClient` written on node:net instead of node:http, for the warm-loop bench to
// measure what micro-lambda's transport costs. Same interface and behaviour for whole-body requests: keep-alive,
// no timeouts, HTTP/1.1 with Content-Length or chunked answers; `agent` stays node:http's, for streaming callers.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { parseAddress, type HttpClient, type Reply } from "../../../src/http.ts";

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/** One keep-alive connection: one request at a time; answers are parsed as bytes arrive. */
interface Connection {
  socket: Socket;
  pending?: Pending;
  buffer: Buffer;
}

export function httpClient(address: string): HttpClient {
  const { host, port } = parseAddress(address);
  const net = process.getBuiltinModule("node:net");
  const http = process.getBuiltinModule("node:http");
  const hostHeader = `Host: ${address}\r\n`;
  const idle: Connection[] = [];
  let agent: import("node:http").Agent | undefined;

  function open(): Connection {
    const connection: Connection = { socket: net.connect(port, host), buffer: Buffer.alloc(0) };
    connection.socket.setNoDelay(true);
    connection.socket.on("data", (chunk: Buffer) => {
      connection.buffer = connection.buffer.length === 0 ? chunk : Buffer.concat([connection.buffer, chunk]);
      const reply = parseReply(connection.buffer);
      if (!reply || !connection.pending) return;
      const pending = connection.pending;
      connection.pending = undefined;
      connection.buffer = connection.buffer.subarray(reply.end);
      if (reply.reply.headers.connection === "close") connection.socket.end();
      else idle.push(connection);
      pending.resolve(reply.reply);
    });
    const broken = (error?: Error) => {
      const at = idle.indexOf(connection);
      if (at >= 0) idle.splice(at, 1);
      const pending = connection.pending;
      connection.pending = undefined;
      pending?.reject(error ?? new Error("socket hang up"));
    };
    connection.socket.on("error", broken);
    connection.socket.on("close", () => broken());
    return connection;
  }

  return {
    get agent() {
      return (agent ??= new http.Agent({ keepAlive: true }));
    },
    host,
    port,
    request(method: string, path: string, headers: OutgoingHttpHeaders = {}, body?: string | Buffer): Promise<Reply> {
      return new Promise((resolve, reject) => {
        const connection = idle.pop() ?? open();
        connection.pending = { resolve, reject };
        let head = `${method} ${path} HTTP/1.1\r\n${hostHeader}`;
        for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
        if (body === undefined) return void connection.socket.write(`${head}\r\n`, "latin1");
        const bytes = typeof body === "string" ? Buffer.from(body) : body;
        connection.socket.write(Buffer.concat([Buffer.from(`${head}Content-Length: ${bytes.length}\r\n\r\n`, "latin1"), bytes]));
      });
    },
  };
}

/** One whole answer at the start of `buffer`, or undefined while it is incomplete. */
function parseReply(buffer: Buffer): { reply: Reply; end: number } | undefined {
  const headEnd = buffer.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const lines = buffer.toString("latin1", 0, headEnd).split("\r\n");
  const status = Number(lines[0].slice(9, 12));
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    const name = lines[i].slice(0, colon).toLowerCase();
    const value = lines[i].slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const start = headEnd + 4;
  if (status >= 100 && status < 200) {
    const rest = parseReply(buffer.subarray(start));
    return rest && { reply: rest.reply, end: start + rest.end };
  }
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const sizeEnd = buffer.indexOf("\r\n", at);
      if (sizeEnd < 0) return undefined;
      const size = parseInt(buffer.toString("latin1", at, sizeEnd), 16);
      if (size === 0) {
        const end = buffer.indexOf("\r\n\r\n", sizeEnd); // no trailers: "0\r\n\r\n"; else after the last trailer line
        return end < 0 ? undefined : { reply: { status, headers, body: Buffer.concat(parts) }, end: end + 4 };
      }
      if (buffer.length < sizeEnd + 2 + size + 2) return undefined;
      parts.push(buffer.subarray(sizeEnd + 2, sizeEnd + 2 + size));
      at = sizeEnd + 2 + size + 2;
    }
  }
  const length = Number(headers["content-length"] ?? 0);
  if (buffer.length < start + length) return undefined;
  return { reply: { status, headers, body: Buffer.from(buffer.subarray(start, start + length)) }, end: start + length };
}
