// A bounded soak: the emulator (the CLI's `serve`, in a process of its own) under a fixed mix of good and bad clients; at the end it still answers, leaves no process behind, and its memory has not grown.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { test } from "node:test";
import { miniRuntime, root } from "./helpers.ts";

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 200);
const WARM_UP = 50;

function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Writes `bytes` on a fresh connection; with `hangUp`, closes it at once (a client gone mid-upload), else reads the answer. */
function raw(address: string, bytes: string, hangUp: boolean): Promise<string> {
  const { hostname, port } = new URL(address);
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(Number(port), hostname, () => socket.write(bytes, () => hangUp && socket.destroy()));
    socket.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    socket.on("close", () => resolve(text));
    socket.on("error", () => {});
  });
}

function rssKB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

/** Processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test("soak: good and bad clients for a fixed count; the emulator still answers, no orphan process, memory flat", async (t) => {
  const marker = `soak-${randomUUID()}`;
  const server = spawn(process.execPath, ["--import", "tsx", "src/cli/bin.ts", "serve", "--port", "0", "--timeout", "0.3", "--", ...miniRuntime, marker], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => server.kill("SIGKILL"));
  let log = "";
  let partial = "";
  let hangUpLines = 0;
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      log = (log + chunk).slice(-100_000);
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      hangUpLines += lines.filter((line) => /^micro-lambda emulator: POST \S+: the client hung up/.test(line)).length;
      const match = /on (http:\/\/127\.0\.0\.1:\d+);/.exec(log);
      if (match) resolve(match[1]!);
    });
    server.on("exit", () => reject(new Error(`exited: ${log}`)));
  });
  const invocations = `${url}/2015-03-31/functions/function/invocations`;
  const host = new URL(url).host;
  let hungUp = 0;
  let rssAfterWarmUp = 0;
  for (let round = 0; round < ROUNDS; round++) {
    if (round === WARM_UP) rssAfterWarmUp = rssKB(server.pid!);
    const clients: Promise<void>[] = [
      post(invocations, JSON.stringify({ round })).then((out) => {
        assert.equal(out.status, 200);
        assert.ok(JSON.parse(out.body).requestId);
      }),
      raw(url, `POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 500\r\n\r\n{"half":`, true).then(() => void hungUp++),
      raw(url, `POST /2018-06-01/runtime/invocation/%ZZ/response HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`, false).then((answer) => assert.match(answer, /^HTTP\/1\.1 400 /)),
      raw(url, "GARBAGE\r\n\r\n", false).then((answer) => assert.match(answer, /^HTTP\/1\.1 400 /)),
      post(invocations, "not json").then((out) => assert.equal(out.status, 400)),
      post(invocations, "{}", { "x-amz-client-context": "%%%" }).then((out) => assert.equal(out.status, 400)),
    ];
    if (round % 50 === 25) {
      // Now and then an invocation that times out: the sandbox is killed and a fresh one started.
      clients.push(post(invocations, JSON.stringify({ hang: true })).then((out) => assert.equal(JSON.parse(out.body).errorType, "Sandbox.Timedout")));
      clients.push(post(invocations, Buffer.alloc(7 * 1024 * 1024, 0x20)).then((out) => assert.equal(out.status, 413)));
    }
    await Promise.all(clients);
  }
  const rssAtEnd = rssKB(server.pid!);
  const last = await post(invocations, JSON.stringify({ print: "still here" }));
  assert.equal(last.status, 200);
  assert.equal(JSON.parse(last.body).env.AWS_LAMBDA_FUNCTION_NAME, "function");
  // Every hang-up was logged, one line each (the last ones may still be on their way).
  for (let i = 0; i < 200 && hangUpLines < hungUp; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.equal(hangUpLines, hungUp);
  server.kill("SIGINT");
  const code = await new Promise((resolve) => server.once("exit", resolve));
  assert.equal(code, 0, "SIGINT stops it cleanly");
  assert.deepEqual(processesWith(marker), [], "no function process outlives the emulator");
  // Generous: a leak of a few kB per request would show over 150 rounds of 6+ requests; noise does not reach this.
  assert.ok(rssAtEnd < rssAfterWarmUp * 1.5 + 30 * 1024, `RSS after warm-up ${rssAfterWarmUp} kB, at the end ${rssAtEnd} kB`);
  t.diagnostic(`RSS after warm-up ${rssAfterWarmUp} kB, at the end ${rssAtEnd} kB (${(rssAtEnd / rssAfterWarmUp).toFixed(2)}x); ${hungUp} hang-ups`);
});
