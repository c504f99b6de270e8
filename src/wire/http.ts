// The one small HTTP client everything in micro-lambda speaks through: HTTP/1.1 on keep-alive sockets, no timeouts, whole bodies.
//
// It is written on node:net rather than node:http: a runtime makes two requests per invocation, and node:http's
// client spends about 75 µs and 26 KB of garbage on each, four times what the rest of an invocation costs
// (measured in test/bench). The Runtime API is a plain HTTP/1.1 server on loopback, so the client only has to
// write a request head and read back an answer framed by Content-Length or chunked encoding. It reads strictly,
// as RFC 9112 asks of a recipient: an answer whose framing is ambiguous is an error, never a guess (nor a hang).
import type { Agent, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpClient {
  /** Sends one request and resolves with the whole reply; rejects only when the server cannot be reached, the connection breaks, or the answer is not HTTP/1.1. */
  request(method: string, path: string, headers?: OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply>;
  /** A node:http keep-alive agent for the same server, for callers that stream a request body (made on first use). */
  readonly agent: Agent;
  readonly host: string;
  readonly port: number;
  /** Closes the idle connections (and the agent's), so the process can exit. */
  close(): void;
}

/** The server's bytes are not an HTTP/1.1 answer, or one framed ambiguously: the request fails with this (no retry). */
export class MalformedReplyError extends Error {
  override readonly name = "MalformedReplyError";
}

/** A client for `host:port` (the form of `AWS_LAMBDA_RUNTIME_API`), with its own pool of keep-alive connections. */
export function httpClient(address: string): HttpClient {
  const { host, port } = parseAddress(address);
  // Connections between requests. One request at a time per connection; concurrent requests open more.
  const pool: Pool = { host, port, idle: [] };
  let agent: Agent | undefined;
  return {
    host,
    port,
    get agent() {
      // node:http is loaded on first use, not at import: a V8 startup snapshot cannot be built once it is loaded.
      return (agent ??= new (process.getBuiltinModule("node:http").Agent)({ keepAlive: true }));
    },
    request(method, path, headers = {}, body) {
      const head = requestHead(method, path, address, headers, body);
      let connection = pool.idle.pop();
      while (connection && !connection.open) connection = pool.idle.pop();
      return new Promise((resolve, reject) => (connection ?? new Connection(pool)).send({ head, body, resolve, reject, retried: false }));
    },
    close() {
      for (const connection of pool.idle.splice(0)) connection.socket.destroy();
      agent?.destroy();
    },
  };
}

interface Pool {
  host: string;
  port: number;
  idle: Connection[];
}

/** A request on its way: what to send, and where its answer goes. */
interface Pending {
  head: string;
  body: string | Buffer | undefined;
  resolve(reply: Reply): void;
  reject(error: Error): void;
  /** Sent a second time already, on a fresh connection (see `Connection`'s close handler). */
  retried: boolean;
}

/** One keep-alive TCP connection. No timeout: Lambda may freeze the sandbox for minutes while a GET /next is outstanding. */
class Connection {
  readonly socket: Socket;
  #reader = new ReplyReader();
  #pending?: Pending;
  /** What broke the socket, for the answer it leaves unfinished. */
  #error?: Error;
  /** Answers this connection has carried: once it has carried one, the server may close it while it sits idle. */
  #answered = 0;
  /** Bytes of the pending request's answer received so far. */
  #received = 0;

  constructor(pool: Pool) {
    this.socket = process.getBuiltinModule("node:net").connect(pool.port, pool.host);
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => {
      let reply: Reply | undefined;
      try {
        if (!this.#pending) throw new MalformedReplyError("the server sent bytes nobody asked for");
        this.#received += chunk.length;
        reply = this.#reader.push(chunk);
      } catch (error) {
        return void this.socket.destroy(error as Error);
      }
      if (!reply) return;
      const pending = this.#pending!;
      const reusable = this.#reader.keepAlive;
      this.#pending = undefined;
      this.#reader = new ReplyReader();
      this.#answered++;
      this.#received = 0;
      // An HTTP/1.0 answer without keep-alive, or `Connection: close`: the server closes this connection now, and a
      // request written to it would be lost.
      if (reusable) pool.idle.push(this);
      else this.socket.end();
      pending.resolve(reply);
    });
    this.socket.on("end", () => {
      const idle = pool.idle.indexOf(this);
      if (idle >= 0) pool.idle.splice(idle, 1); // closed by the server while idle: never hand it out again
      // A server may frame an answer by closing the connection (no Content-Length, not chunked).
      const reply = this.#pending && this.#reader.end();
      if (reply) {
        this.#pending!.resolve(reply);
        this.#pending = undefined;
      }
    });
    this.socket.on("close", () => {
      const idle = pool.idle.indexOf(this);
      if (idle >= 0) pool.idle.splice(idle, 1);
      const pending = this.#pending;
      this.#pending = undefined;
      if (!pending) return;
      // A server may close an idle keep-alive connection at any moment, and the request written just then is lost
      // unread. RFC 9112 §9.3.1 lets a client retry a request whose answer has not begun when it knows the request
      // is safe to repeat: the Runtime API's are (a /next that never got its event is asked again; a /response or
      // /error is tied to its request id, and a repeat can only be refused, never answer another invocation). So once,
      // on a fresh connection, and only when this connection had served an answer before and nothing of this one came.
      if (this.#received === 0 && this.#answered > 0 && !pending.retried) {
        pending.retried = true;
        return new Connection(pool).send(pending);
      }
      pending.reject(this.#error ?? new Error("the connection closed before the answer was complete"));
    });
    this.socket.on("error", (error) => (this.#error = error));
  }

  /** Whether the connection can take a request: the server has not closed it. */
  get open(): boolean {
    return !this.socket.destroyed && !this.socket.readableEnded && this.socket.writable;
  }

  send(pending: Pending): void {
    this.#pending = pending;
    this.socket.cork();
    this.socket.write(pending.head, "latin1");
    if (pending.body !== undefined) this.socket.write(pending.body);
    this.socket.uncork();
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

/** A status line, header fields, chunk sizes: anything longer is not an answer from the Runtime API. */
const MAX_HEAD_BYTES = 64 * 1024;
/** RFC 9110 §5.6.2: a header name is a token. */
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5: a field value holds no control characters but HTAB (NUL, CR and LF least of all). */
const controlCharacter = /[\x00-\x08\x0a-\x1f\x7f]/;
/** RFC 9112 §7.1: chunk-size [ chunk-ext ]; an extension is ignored, a size is hex digits and nothing else. */
const chunkSizeLine = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/;

/**
 * Reads one HTTP/1.1 answer from a connection's bytes as they arrive: the status line and headers, then a body
 * framed by Content-Length, by chunked encoding (trailers read, checked and dropped), or by the server closing the
 * connection. Bytes are joined only when a step has all it needs, so a large body costs one copy, not one per packet.
 * Whatever RFC 9112 calls invalid (a bare LF or CR, a Content-Length that is not digits, two that differ, a chunk
 * not followed by CRLF...) throws a `MalformedReplyError`: with framing in doubt, no byte after it can be trusted.
 */
class ReplyReader {
  #chunks: Buffer[] = [];
  #size = 0;
  #http10 = false;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  /** The last field read, for an obsolete line folding (a line that starts with a space continues it). */
  #lastField = "";
  #headBytes = 0;
  #body: Buffer[] = [];
  /** Bytes still to come: of a Content-Length body, or of the current chunk. */
  #remaining = 0;
  #step: () => Reply | "more" | "next" = this.#statusLine;
  /** Once the head is read: whether the server keeps the connection open after this answer. */
  keepAlive = false;

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
    // RFC 9112 §4: HTTP-version SP status-code SP [ reason-phrase ]; the reason says nothing a client may act on.
    const match = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/.exec(line);
    if (!match) throw new MalformedReplyError(`not an HTTP/1.1 status line: ${JSON.stringify(line.slice(0, 100))}`);
    this.#http10 = match[1] === "0";
    this.#status = Number(match[2]);
    if (this.#status === 101) throw new MalformedReplyError("101 Switching Protocols, though no upgrade was asked for");
    this.#headers = {};
    this.#lastField = "";
    this.#step = this.#headerLine;
    return "next";
  }

  #headerLine(): "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    if (line !== "") {
      this.#field(line, this.#headers);
      return "next";
    }
    this.#headBytes = 0;
    if (this.#status < 200) {
      this.#step = this.#statusLine; // 100 Continue and friends: the real answer follows
      return "next";
    }
    this.#step = this.#framing();
    return "next";
  }

  /** The end of the head: what frames the body (RFC 9112 §6.3), and whether the connection stays open after it. */
  #framing(): () => Reply | "more" | "next" {
    const connection = this.#headers.connection === undefined ? undefined : listOf(this.#headers.connection);
    this.keepAlive = connection === undefined ? !this.#http10 : !connection.includes("close") && (!this.#http10 || connection.includes("keep-alive"));
    const length = this.#headers["content-length"];
    const codings = this.#headers["transfer-encoding"];
    // A 204 or 304 has no body, whatever its headers say.
    if (this.#status === 204 || this.#status === 304) return () => this.#reply(Buffer.alloc(0));
    if (codings !== undefined) {
      if (this.#http10) throw new MalformedReplyError("an HTTP/1.0 answer with Transfer-Encoding (RFC 9112 §6.1: its framing is faulty)");
      if (length !== undefined) throw new MalformedReplyError("an answer with both Transfer-Encoding and Content-Length (RFC 9112 §6.3: a smuggling attempt, or a broken server)");
      const list = listOf(codings);
      if (list.length !== 1 || list[0] !== "chunked") throw new MalformedReplyError(`Transfer-Encoding ${JSON.stringify(codings)}: this client reads only "chunked"`);
      return this.#chunkSize;
    }
    if (typeof length === "string" && /^\d{1,15}$/.test(length)) {
      this.#remaining = Number(length);
      return this.#lengthBody;
    }
    if (length !== undefined) {
      // RFC 9112 §6.3: 1*DIGIT; repeated (as a list or in several fields) only with one and the same value.
      const values = String(length).split(",").map(trimmed);
      if (!values.every((value) => /^\d{1,15}$/.test(value)) || values.some((value) => Number(value) !== Number(values[0]))) {
        throw new MalformedReplyError(`bad Content-Length: ${JSON.stringify(length)}`);
      }
      this.#remaining = Number(values[0]);
      return this.#lengthBody;
    }
    this.keepAlive = false;
    return this.#untilClose;
  }

  #lengthBody(): Reply | "more" {
    const body = this.#take(this.#remaining);
    return body === undefined ? "more" : this.#reply(body);
  }

  #chunkSize(): Reply | "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    const match = chunkSizeLine.exec(line);
    const size = match ? parseInt(match[1]!, 16) : NaN;
    if (!Number.isSafeInteger(size)) throw new MalformedReplyError(`bad chunk size: ${JSON.stringify(line.slice(0, 100))}`);
    this.#remaining = size;
    this.#step = size === 0 ? this.#trailerLine : this.#chunkData;
    return "next";
  }

  #chunkData(): "more" | "next" {
    const data = this.#take(this.#remaining + 2); // the chunk and its CRLF
    if (data === undefined) return "more";
    if (data[this.#remaining] !== 0x0d || data[this.#remaining + 1] !== 0x0a) {
      throw new MalformedReplyError(`a chunk of ${this.#remaining} bytes is not followed by CRLF`);
    }
    this.#body.push(data.subarray(0, this.#remaining));
    this.#step = this.#chunkSize;
    return "next";
  }

  #trailerLine(): Reply | "more" | "next" {
    const line = this.#line();
    if (line === undefined) return "more";
    if (line !== "") {
      this.#field(line, {}); // checked, and dropped
      return "next";
    }
    return this.#reply(this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body));
  }

  #untilClose(): "more" {
    return "more";
  }

  #reply(body: Buffer): Reply {
    if (this.#size > 0) throw new MalformedReplyError("the server sent more than one answer");
    return { status: this.#status, headers: this.#headers, body };
  }

  /** One `name: value` line into `into` (repeats joined with ", "), or the continuation of the last one. */
  #field(line: string, into: IncomingHttpHeaders): void {
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      // RFC 9112 §5.2: an obsolete line folding; a user agent replaces it with a space.
      if (this.#lastField === "") throw new MalformedReplyError(`a header line that starts with whitespace: ${JSON.stringify(line.slice(0, 100))}`);
      const value = trimmed(line);
      if (controlCharacter.test(value)) throw new MalformedReplyError(`a control character in the value of ${this.#lastField}`);
      into[this.#lastField] = `${into[this.#lastField]} ${value}`;
      return;
    }
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon <= 0 || !token.test(name)) throw new MalformedReplyError(`not an HTTP header line: ${JSON.stringify(line.slice(0, 100))}`);
    const value = trimmed(line.slice(colon + 1));
    if (controlCharacter.test(value)) throw new MalformedReplyError(`a control character in the value of ${name}`);
    const key = name.toLowerCase();
    const seen = into[key];
    into[key] = seen === undefined ? value : `${seen}, ${value}`;
    this.#lastField = key;
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

  /** The next line without its CRLF, or undefined until it is complete. A bare LF or CR is an error (RFC 9112 §2.2). */
  #line(): string | undefined {
    const bytes = this.#bytes();
    const end = bytes.indexOf(0x0a);
    if (end < 0) {
      if (this.#headBytes + bytes.length > MAX_HEAD_BYTES) throw new MalformedReplyError(`an HTTP head longer than ${MAX_HEAD_BYTES / 1024} KiB`);
      return undefined;
    }
    if (bytes[end - 1] !== 0x0d) throw new MalformedReplyError("a line that ends in LF without CR: HTTP/1.1 lines end in CRLF");
    const line = bytes.toString("latin1", 0, end - 1);
    if (line.includes("\r")) throw new MalformedReplyError(`a bare CR in ${JSON.stringify(line.slice(0, 100))}`);
    this.#headBytes += end + 1;
    if (this.#headBytes > MAX_HEAD_BYTES) throw new MalformedReplyError(`an HTTP head longer than ${MAX_HEAD_BYTES / 1024} KiB`);
    this.#consume(end + 1);
    return line;
  }
}

/** A comma-separated header value as lower-cased elements, empty ones dropped (RFC 9110 §5.6.1). */
function listOf(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return String(value)
    .split(",")
    .map((element) => trimmed(element).toLowerCase())
    .filter((element) => element !== "");
}

/** Without leading and trailing SP and HTAB, the only whitespace HTTP has (String.trim would also eat 0xA0, an obs-text byte). */
function trimmed(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
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
