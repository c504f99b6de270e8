// The one small HTTP client everything in micro-lambda speaks through: keep-alive, no timeouts, whole bodies.
import type { Agent, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpClient {
  /** Sends one request and resolves with the whole reply; rejects only when the server cannot be reached or the connection breaks. */
  request(method: string, path: string, headers?: OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply>;
  /** The keep-alive agent, for callers that stream a request body themselves. */
  readonly agent: Agent;
  readonly host: string;
  readonly port: number;
}

/** A client for `host:port` (the form of `AWS_LAMBDA_RUNTIME_API`), with its own keep-alive connection pool. */
export function httpClient(address: string): HttpClient {
  const { host, port } = parseAddress(address);
  // node:http is loaded on first use, not at import: a V8 startup snapshot cannot be built once it is loaded.
  const http = process.getBuiltinModule("node:http");
  // No timeout anywhere: Lambda may freeze the sandbox for minutes while a GET /next is outstanding.
  const agent = new http.Agent({ keepAlive: true });
  return {
    agent,
    host,
    port,
    request(method, path, headers = {}, body) {
      return new Promise((resolve, reject) => {
        const req = http.request({ host, port, method, path, headers, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
      });
    },
  };
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
