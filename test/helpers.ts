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
