// What the tests share: paths, an emulator that closes itself, a scriptable fake Runtime API, and a way to run a function to its end.
import { spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { Emulator, type EmulatorOptions } from "../src/emulator/index.ts";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const tsx = join(root, "node_modules/.bin/tsx");

/** The command that runs a TypeScript main file under tsx (from the project root). */
export function tsxCommand(entry: string): string[] {
  return [tsx, join(root, entry)];
}

/** An emulator on 127.0.0.1:0 that is closed when the test ends. */
export async function startEmulator(t: TestContext, options: EmulatorOptions): Promise<Emulator> {
  const emulator = await Emulator.start({ timeoutMs: 10_000, ...options });
  t.after(() => emulator.close());
  return emulator;
}

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Answer = { status: number; headers?: Record<string, string>; body?: string } | "hang";

export interface FakeRuntimeApi {
  address: string;
  requests: Recorded[];
  /** TCP connections accepted so far. */
  connections: number;
}

/**
 * A Runtime API whose every answer the test decides: `route` gets each request (body read) and returns the
 * answer, or "hang" to never answer. Records every request. Closed when the test ends.
 */
export async function fakeRuntimeApi(t: TestContext, route: (request: Recorded, index: number) => Answer | Promise<Answer>): Promise<FakeRuntimeApi> {
  const fake: FakeRuntimeApi = { address: "", requests: [], connections: 0 };
  const hanging: ServerResponse[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
    fake.requests.push(request);
    const answer = await route(request, fake.requests.length - 1);
    if (answer === "hang") return void hanging.push(res);
    res.writeHead(answer.status, answer.headers).end(answer.body ?? "");
  });
  server.keepAliveTimeout = 0;
  server.on("connection", () => fake.connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return fake;
}

/** The answer to a GET /next: one event. */
export function event(requestId: string, body: unknown, headers: Record<string, string> = {}): Answer {
  return {
    status: 200,
    headers: { "lambda-runtime-aws-request-id": requestId, "lambda-runtime-deadline-ms": String(Date.now() + 60_000), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

export const accepted: Answer = { status: 202, body: '{"status":"OK"}' };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a function command with `env` added (undefined removes a variable) until it exits; kills it after `timeoutMs`. */
export function runToExit(command: string[], env: Record<string, string | undefined>, timeoutMs = 30_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = command;
    const child = spawn(file!, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * A runtime small enough to read, as a `node -e` command: it asks for events (AWS_LAMBDA_MAX_CONCURRENCY loops at
 * once) and does what each event says, so a test controls the function exactly. Event fields: `print` (a line,
 * prefixed with the time and request id as the runtime's text format does), `raw` (text written to stdout as it
 * is), `frames` (telemetry log fd records: `{text, json?}`), `fdRaw` (bytes written to that fd as they are), `hang` (never answer), `bytes` (answer with a JSON
 * string of that many bytes), `errorBytes` (post to /error a JSON error of that many bytes), `pauseMs`. At start it
 * does what `MINI_INIT` says, in the same terms, and with `subscribe` (a URI) registers an internal extension that
 * subscribes to the Telemetry API's `function` records. It answers with `{requestId, env, arn}` by default.
 */
export const miniRuntime = [
  process.execPath,
  "-e",
  `
const http = require("node:http");
const fs = require("node:fs");
const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true });
const call = (method, path, body, headers) => new Promise((resolve, reject) => {
  const req = http.request({ host, port, path, method, agent, headers }, (res) => {
    const chunks = [];
    res.on("data", (c) => chunks.push(c)).on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
  });
  req.on("error", reject);
  req.end(body);
});
const frame = (text, json) => {
  const message = Buffer.from(text);
  const head = Buffer.alloc(16);
  head.writeUInt32BE(json ? 0xa55a000e : 0xa55a0003, 0);
  head.writeUInt32BE(message.length, 4);
  head.writeBigUInt64BE(BigInt(Date.now()) * 1000n, 8);
  fs.writeSync(Number(process.env._LAMBDA_TELEMETRY_LOG_FD), Buffer.concat([head, message]));
};
const act = (id, what) => {
  if (what.print) process.stdout.write(new Date().toISOString() + "\\t" + id + "\\tINFO\\t" + what.print + "\\n");
  if (what.raw) process.stdout.write(what.raw);
  for (const f of what.frames || []) frame(f.text, f.json);
  if (what.fdRaw) fs.writeSync(Number(process.env._LAMBDA_TELEMETRY_LOG_FD), what.fdRaw);
};
const init = JSON.parse(process.env.MINI_INIT || "{}");
act("", init);
const loop = async () => {
  for (;;) {
    const next = await call("GET", "/2018-06-01/runtime/invocation/next");
    const id = next.headers["lambda-runtime-aws-request-id"];
    const event = JSON.parse(next.body);
    act(id, event);
    if (event.pauseMs) await new Promise((r) => setTimeout(r, event.pauseMs));
    if (event.hang) await new Promise(() => {});
    if (event.errorBytes) {
      await call("POST", "/2018-06-01/runtime/invocation/" + id + "/error", JSON.stringify({ errorType: "Big", errorMessage: "x".repeat(event.errorBytes) }));
      continue;
    }
    const body = event.bytes ? JSON.stringify("x".repeat(event.bytes - 2)) : JSON.stringify({ requestId: id, env: process.env, arn: next.headers["lambda-runtime-invoked-function-arn"] });
    await call("POST", "/2018-06-01/runtime/invocation/" + id + "/response", body);
  }
};
const subscribe = async (uri) => {
  const registered = await call("POST", "/2020-01-01/extension/register", JSON.stringify({ events: [] }), { "lambda-extension-name": "listener" });
  const id = registered.headers["lambda-extension-identifier"];
  const subscription = { schemaVersion: "2022-12-13", types: ["function"], buffering: { timeoutMs: 25 }, destination: { protocol: "HTTP", URI: uri } };
  await call("PUT", "/2022-07-01/telemetry", JSON.stringify(subscription), { "lambda-extension-identifier": id });
  call("GET", "/2020-01-01/extension/event/next", undefined, { "lambda-extension-identifier": id }).catch(() => {});
};
(init.subscribe ? subscribe(init.subscribe) : Promise.resolve()).then(() => {
  for (let i = 0; i < Number(process.env.AWS_LAMBDA_MAX_CONCURRENCY || 1); i++) loop();
});
setInterval(() => {}, 1 << 30);
`,
];
