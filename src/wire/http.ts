// The one small HTTP client everything in micro-lambda speaks through: HTTP/1.1 on keep-alive sockets, no timeouts, whole bodies.
//
// It is written on node:net rather than node:http: a runtime makes two requests per invocation, and node:http's
// client spends about 75 µs and 26 KB of garbage on each, four times what the rest of an invocation costs
// (measured in test/bench). The Runtime API is a plain HTTP/1.1 server on loopback, so the client only has to
// write a request head and read back an answer framed by Content-Length or chunked encoding.
import type { Agent, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpClient {
  /** Sends one request and resolves with the whole reply; rejects only when the server cannot be reached or the connection breaks. */
  request(method: string, path: string, headers?: OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply>;
  /** A node:http keep-alive agent for the same server, for callers that stream a request body (made on first use). */
  readonly agent: Agent;
  readonly host: string;
  readonly port: number;
  /** Closes the idle connections (and the agent's), so the process can exit. */
  close(): void;
}

/** A client for `host:port` (the form of `AWS_LAMBDA_RUNTIME_API`), with its own pool of keep-alive connections. */
export function httpClient(address: string): HttpClient {
  const { host, port } = parseAddress(address);
  // Connections between requests. One request at a time per connection; concurrent requests open more.
  const idle: Connection[] = [];
  let agent: Agent | undefined;
  return {
    host,
    port,
    get agent() {
      // node:http is loaded on first use, not at import: a V8 startup snapshot cannot be built once it is loaded.
      return (agent ??= new (process.getBuiltinModule("node:http").Agent)({ keepAlive: true }));
    },
    request(method, path, headers = {}, body) {
      const connection = idle.pop() ?? new Connection(host, port, idle);
      return connection.send(requestHead(method, path, address, headers, body), body);
    },
    close() {
      for (const connection of idle.splice(0)) connection.socket.destroy();
      agent?.destroy();
    },
  };
}

/** One keep-alive TCP connection. No timeout: Lambda may freeze the sandbox for minutes while a GET /next is outstanding. */
class Connection {
  readonly socket: Socket;
  #reader = new ReplyReader();
  #pending?: { resolve(reply: Reply): void; reject(error: Error): void };
  /** What broke the socket, for the answer it leaves unfinished. */
  #error?: Error;

  constructor(host: string, port: number, idle: Connection[]) {
    this.socket = process.getBuiltinModule("node:net").connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => {
      let reply: Reply | undefined;
      try {
        if (!this.#pending) throw new Error("the server sent bytes nobody asked for");
        reply = this.#reader.push(chunk);
      } catch (error) {
        return void this.socket.destroy(error as Error);
      }
      if (!reply) return;
      const pending = this.#pending!;
      this.#pending = undefined;
      this.#reader = new ReplyReader();
      if (reply.headers.connection === "close") this.socket.end();
      else idle.push(this);
      pending.resolve(reply);
    });
    this.socket.on("end", () => {
      // A server may frame an answer by closing the connection (no Content-Length, not chunked).
      const reply = this.#pending && this.#reader.end();
      if (reply) {
        this.#pending!.resolve(reply);
        this.#pending = undefined;
      }
    });
    this.socket.on("close", () => {
      const at = idle.indexOf(this);
      if (at >= 0) idle.splice(at, 1);
      this.#pending?.reject(this.#error ?? new Error("the connection closed before the answer was complete"));
      this.#pending = undefined;
    });
    this.socket.on("error", (error) => (this.#error = error));
  }

  send(head: string, body: string | Buffer | undefined): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.socket.cork();
      this.socket.write(head, "latin1");
      if (body !== undefined) this.socket.write(body);
      this.socket.uncork();
    });
  }
}

/** The request line and headers. Header values come from Lambda's own headers and error names: CR or LF would split the request. */
function requestHead(method: string, path: string, address: string, headers: OutgoingHttpHeaders, body: string | Buffer | undefined): string {
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${address}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(", ") : String(value);
    if (/[\r\n]/.test(name + text)) throw new TypeError(`header ${JSON.stringify(name)} has a line break in its value`);
    head += `${name}: ${text}\r\n`;
  }
  if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${head}\r\n`;
}

/**
 * Reads one HTTP/1.1 answer from a connection's bytes as they arrive: the status line and headers, then a body
 * framed by Content-Length, by chunked encoding (trailers read and dropped), or by the server closing the
 * connection. Bytes are joined only when a step has all it needs, so a large body costs one copy, not one per packet.
 */
class ReplyReader {
  #chunks: Buffer[] = [];
  #size = 0;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #body: Buffer[] = [];
  /** Bytes still to come: of a Content-Length body, or of the current chunk. */
  #remaining = 0;
  #step: () => Reply | "more" | "next" = this.#statusLine;

  /** Takes the next bytes; returns the answer once it is complete. Throws on bytes that are not HTTP. */
  push(chunk: Buffer): Reply | undefined {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    for (;;) {
      const result = this.#step();
      if (result === "more") return undefined;
      if (result !== "next") return result;
    }
  }

  /** The connection ended: the answer, if it was one framed by the end of the connection. */
  end(): Reply | undefined {
    if (this.#step !== this.#untilClose) return undefined;
    const body = this.#take(this.#size)!;
    return this.#reply(body);
  }

  #statusLine(): "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(line);
    if (!match) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(line.slice(0, 100))}`);
    this.#status = Number(match[1]);
    this.#headers = {};
    this.#step = this.#headerLine;
    return "next";
  }

  #headerLine(): "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    if (line !== "") {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`not an HTTP header line: ${JSON.stringify(line.slice(0, 100))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const seen = this.#headers[name];
      this.#headers[name] = seen === undefined ? value : `${seen}, ${value}`;
      return "next";
    }
    // The end of the head: what frames the body?
    const length = this.#headers["content-length"];
    if (this.#status < 200) this.#step = this.#statusLine; // 100 Continue and friends: the real answer follows
    else if (/\bchunked\b/i.test(String(this.#headers["transfer-encoding"] ?? ""))) this.#step = this.#chunkSize;
    else if (length !== undefined) {
      this.#remaining = Number(length);
      if (!Number.isSafeInteger(this.#remaining) || this.#remaining < 0) throw new Error(`bad Content-Length: ${length}`);
      this.#step = this.#lengthBody;
    } else if (this.#status === 204 || this.#status === 304) this.#step = () => this.#reply(Buffer.alloc(0));
    else this.#step = this.#untilClose;
    return "next";
  }

  #lengthBody(): Reply | "more" {
    const body = this.#take(this.#remaining);
    return body === undefined ? "more" : this.#reply(body);
  }

  #chunkSize(): Reply | "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    const size = parseInt(line, 16); // a chunk size may carry ";extensions", which parseInt stops at
    if (!Number.isSafeInteger(size) || size < 0 || !/^[0-9a-f]/i.test(line)) throw new Error(`bad chunk size: ${JSON.stringify(line.slice(0, 100))}`);
    this.#remaining = size;
    this.#step = size === 0 ? this.#trailerLine : this.#chunkData;
    return "next";
  }

  #chunkData(): "more" | "next" {
    const data = this.#take(this.#remaining + 2); // the chunk and its CRLF
    if (data === undefined) return "more";
    this.#body.push(data.subarray(0, this.#remaining));
    this.#step = this.#chunkSize;
    return "next";
  }

  #trailerLine(): Reply | "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    return line === "" ? this.#reply(Buffer.concat(this.#body)) : "next";
  }

  #untilClose(): "more" {
    return "more";
  }

  #reply(body: Buffer): Reply {
    if (this.#size > 0) throw new Error("the server sent more than one answer");
    return { status: this.#status, headers: this.#headers, body };
  }

  /** All unread bytes as one buffer (joined once, then kept joined). */
  #bytes(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#size)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #consume(count: number): void {
    const bytes = this.#bytes();
    this.#chunks = count < bytes.length ? [bytes.subarray(count)] : [];
    this.#size -= count;
  }

  /** Exactly `count` bytes, or undefined until that many have arrived. */
  #take(count: number): Buffer | undefined {
    if (this.#size < count) return undefined;
    const bytes = this.#bytes().subarray(0, count);
    this.#consume(count);
    return bytes;
  }

  /** The next line without its CRLF, or undefined until it is complete. */
  #line(): string | undefined {
    const bytes = this.#bytes();
    const end = bytes.indexOf("\r\n");
    if (end < 0) {
      if (bytes.length > 64 * 1024) throw new Error("an HTTP head line longer than 64 KiB");
      return undefined;
    }
    const line = bytes.toString("latin1", 0, end);
    this.#consume(end + 2);
    return line;
  }
}

/** Splits `host:port`; IPv6 hosts come bracketed (`[::1]:9001`). */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`not a host:port address: ${JSON.stringify(address)}`);
  }
  return { host, port };
}
