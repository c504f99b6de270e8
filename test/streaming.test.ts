// Response streaming: the suite under tsx and in the built bootstraps (arm64 under qemu: the basics), and the emulator's own limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootstrap, command } from "./bootstraps.ts";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { root, runToExit, startEmulator, tsxCommand } from "./helpers.ts";
import { streamingFixture, streamingSuite } from "./streaming-suite.ts";

const built = ["--name", "fixture-streaming"];
streamingSuite("tsx", async () => tsxCommand(streamingFixture), { large: true });
streamingSuite("x86_64 bootstrap", async () => command(await bootstrap(streamingFixture, "x86_64", built), "x86_64"), { large: true });
streamingSuite("arm64 bootstrap under qemu", async () => command(await bootstrap(streamingFixture, "arm64", built), "arm64"), { large: false });

test("the emulator ends a streamed response over 200 MB with Function.ResponseSizeTooLarge, whatever the runtime does", async (t) => {
  // A runtime that does not count: it streams 200 MiB and one more byte.
  const script = `
    const http = require("node:http");
    const api = process.env.AWS_LAMBDA_RUNTIME_API;
    http.get("http://" + api + "/2018-06-01/runtime/invocation/next", (res) => {
      res.resume();
      const id = res.headers["lambda-runtime-aws-request-id"];
      const req = http.request("http://" + api + "/2018-06-01/runtime/invocation/" + id + "/response", {
        method: "POST", headers: { "lambda-runtime-function-response-mode": "streaming", "transfer-encoding": "chunked" },
      }, (reply) => { console.log("answered " + reply.statusCode); reply.resume(); });
      req.on("error", (error) => console.log("request ended: " + error.code));
      const chunk = Buffer.alloc(1024 * 1024, 1);
      let sent = 0;
      const more = () => {
        while (sent < 200) { sent++; if (!req.write(chunk)) return req.once("drain", more); }
        req.end("x");
      };
      more();
    });
    setInterval(() => {}, 1000);`;
  const emulator = await startEmulator(t, { command: [process.execPath, "-e", script] });
  let received = 0;
  const out = await emulator.invoke({}, { onChunk: (chunk) => void (received += chunk.length) });
  assert.equal(out.ok, false);
  assert.equal(out.error?.errorType, "Function.ResponseSizeTooLarge");
  assert.equal(out.error?.errorMessage, "Response payload size exceeded maximum allowed payload size (209715200 bytes).");
  assert.ok(received <= 200 * 1024 * 1024, `the caller got ${received} bytes`);
});

test("the Runtime API breaking a streamed response's connection is a runtime failure: one line on stderr, exit 1", async (t) => {
  const server = createServer((req, res) => {
    if (req.url === "/2018-06-01/runtime/invocation/next") {
      res.writeHead(200, { "lambda-runtime-aws-request-id": "req-1", "lambda-runtime-deadline-ms": String(Date.now() + 60_000) });
      return void res.end(JSON.stringify({ action: "cap", mib: 200 }));
    }
    req.once("data", () => req.socket.destroy()); // the streamed /response: cut after its first bytes
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const exit = await runToExit([process.execPath, "--import", "tsx", join(root, streamingFixture)], { AWS_LAMBDA_RUNTIME_API: address });
  assert.equal(exit.code, 1, exit.stderr);
  assert.match(exit.stderr, new RegExp(`^micro-lambda: the Runtime API at ${address} broke the streamed POST /2018-06-01/runtime/invocation/req-1/response: \\w`, "m"));
});

for (const [label, commandFor] of [
  ["tsx", async () => tsxCommand("examples/streaming/main.ts")],
  ["x86_64 bootstrap", async () => command(await bootstrap("streaming", "x86_64"), "x86_64")],
] as const) {
  test(`examples/streaming (${label}): a function URL streaming NDJSON, one line per item as it is ready`, async (t) => {
    const emulator = await startEmulator(t, { command: await commandFor(), initTimeoutMs: 60_000 });
    const event = { queryStringParameters: { count: "4" } };
    const reply = await new Promise<{ status: number; type: string | undefined; chunks: string[] }>((resolve, reject) => {
      const req = request(`${emulator.url}/2015-03-31/functions/function/invocations`, { method: "POST" }, (res) => {
        const chunks: string[] = [];
        res.setEncoding("utf8").on("data", (text: string) => chunks.push(text));
        res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"], chunks }));
      });
      req.on("error", reject);
      req.end(JSON.stringify(event));
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.type, "application/x-ndjson");
    const lines = reply.chunks.join("").trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines, [1, 2, 3, 4].map((item) => ({ item, of: 4 })));
    assert.ok(reply.chunks.length > 1, "the lines arrived as they were written, not as one body");
    const out = await emulator.invoke({ queryStringParameters: { count: "lots" } });
    assert.equal(out.payload.toString().trim().split("\n").length, 3, "an unreadable count means 3");
  });
}
