// The emulator as its users see it: the Invoke API over HTTP, timeouts, queueing, its Runtime API's answers, and the CLI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { test } from "node:test";
import { Writable } from "node:stream";
import { miniRuntime, runToExit, startEmulator, tsx, tsxCommand } from "./helpers.ts";

const behaviour = tsxCommand("test/fixtures/behaviour/main.ts");
/** A "function" that starts and does nothing, so the test itself can play the runtime against the emulator. */
const idle = [process.execPath, "-e", "setInterval(() => {}, 1 << 30)"];

/** One HTTP request to the emulator, whole answer back. */
function http(url: string, method: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("the Invoke API (as aws-lambda-rie serves it) answers the function's response", async (t) => {
  const emulator = await startEmulator(t, { command: behaviour });
  assert.match(emulator.address, /^127\.0\.0\.1:\d+$/, "binds loopback by default");
  const clientContext = Buffer.from(JSON.stringify({ custom: { from: "caller" } })).toString("base64");
  const out = await http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST", '{"action":"context"}', { "x-amz-client-context": clientContext, "x-amz-tenant-id": "t-1" });
  assert.equal(out.status, 200);
  assert.equal(out.headers["x-amz-function-error"], undefined);
  const context = JSON.parse(out.body);
  assert.deepEqual(context.clientContext, { custom: { from: "caller" } });
  assert.equal(context.tenantId, "t-1");
  assert.equal(context.awsRequestId, out.headers["x-amzn-requestid"]);
});

test("the Invoke API answers a function error with its error JSON and X-Amz-Function-Error: Unhandled", async (t) => {
  const emulator = await startEmulator(t, { command: behaviour });
  const out = await http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST", '{"action":"throw"}');
  assert.equal(out.status, 200);
  assert.equal(out.headers["x-amz-function-error"], "Unhandled");
  assert.equal(JSON.parse(out.body).errorType, "TypeError");
  const empty = await http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST");
  assert.deepEqual(JSON.parse(empty.body), { unknownAction: null }, "an empty payload is the event {}");
});

test("a timeout stops the sandbox and reports Sandbox.Timedout; the next invoke starts a fresh one", async (t) => {
  const emulator = await startEmulator(t, { command: behaviour, timeoutMs: 1000 });
  const before = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
  const out = await emulator.invoke({ action: "sleep", ms: 60_000 });
  assert.equal(out.error?.errorType, "Sandbox.Timedout");
  assert.match(out.error!.errorMessage, /Task timed out after 1\.00 seconds/);
  const after = (await emulator.invoke({ action: "count" })).result as { sandboxId: string; invocations: number };
  assert.notEqual(after.sandboxId, before.sandboxId);
  assert.equal(after.invocations, 1);
});

test("concurrent invokes are queued, never overlapping, and all answered", async (t) => {
  const emulator = await startEmulator(t, { command: behaviour });
  const outs = await Promise.all(Array.from({ length: 6 }, () => emulator.invoke({ action: "count" })));
  const counts = outs.map((out) => (out.result as { invocations: number }).invocations).sort((a, b) => a - b);
  assert.deepEqual(counts, [1, 2, 3, 4, 5, 6]);
  assert.equal(new Set(outs.map((out) => (out.result as { sandboxId: string }).sandboxId)).size, 1, "one sandbox served them all");
});

test("init that never reaches /next times out; a command that cannot start is reported", async (t) => {
  const stuck = await startEmulator(t, { command: idle, initTimeoutMs: 500 });
  const out = await stuck.invoke({});
  assert.equal(out.error?.errorType, "Sandbox.Timedout");
  assert.match(out.error!.errorMessage, /Init timed out after 0\.50 seconds/);
  const missing = await startEmulator(t, { command: ["/nonexistent/bootstrap"] });
  const failed = await missing.invoke({});
  assert.equal(failed.error?.errorType, "Runtime.InvalidEntrypoint");
  assert.match(failed.error!.errorMessage, /cannot start \/nonexistent\/bootstrap: spawn \/nonexistent\/bootstrap ENOENT/);
});

test("START, END and REPORT lines frame each invocation; Init Duration only on the cold one", async (t) => {
  let text = "";
  const output = new Writable({ write: (chunk, _encoding, done) => ((text += String(chunk)), done()) });
  const emulator = await startEmulator(t, { command: behaviour, output, memoryMB: 512 });
  const cold = await emulator.invoke({ action: "log" });
  const warm = await emulator.invoke({ action: "echo", value: 1 });
  assert.ok(cold.initDurationMs! > 0);
  assert.equal(warm.initDurationMs, undefined);
  assert.match(text, new RegExp(`START RequestId: ${cold.requestId} Version: \\$LATEST\\n(.*\\n)*.*to stdout\\n(.*\\n)*END RequestId: ${cold.requestId}\\nREPORT RequestId: ${cold.requestId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 512 MB\\tMax Memory Used: \\d+ MB\\tInit Duration: [\\d.]+ ms\\n`));
  assert.match(text, new RegExp(`REPORT RequestId: ${warm.requestId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 512 MB\\tMax Memory Used: \\d+ MB\\n`));
});

test("the emulator's Runtime API: 400 for an unknown request id, 410 for a timed-out one, 403 for a late init error", async (t) => {
  const emulator = await startEmulator(t, { command: idle, timeoutMs: 300, initTimeoutMs: 30_000 });
  const api = `${emulator.url}/2018-06-01/runtime`;
  const first = emulator.invoke({ n: 1 });
  const next = await http(`${api}/invocation/next`, "GET");
  const requestId = next.headers["lambda-runtime-aws-request-id"] as string;
  assert.equal(next.body, '{"n":1}');
  assert.ok(Number(next.headers["lambda-runtime-deadline-ms"]) > Date.now());
  assert.match(next.headers["lambda-runtime-trace-id"] as string, /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$/);
  assert.equal((await http(`${api}/init/error`, "POST", "{}")).status, 403, "init is over once /next was called");
  assert.equal((await http(`${api}/invocation/not-an-id/response`, "POST", "1")).status, 400);
  assert.equal((await first).error?.errorType, "Sandbox.Timedout");
  assert.equal((await http(`${api}/invocation/${requestId}/response`, "POST", "1")).status, 410);
});

test("the emulator's Runtime API: a response over Lambda's 6,291,556 bytes is refused with 413 and fails the invocation, with the size in the message", async (t) => {
  const emulator = await startEmulator(t, { command: idle, initTimeoutMs: 30_000 });
  const api = `${emulator.url}/2018-06-01/runtime`;
  const fits = emulator.invoke({ n: 1 });
  const next1 = await http(`${api}/invocation/next`, "GET");
  assert.equal((await http(`${api}/invocation/${next1.headers["lambda-runtime-aws-request-id"]}/response`, "POST", Buffer.alloc(6_291_556, 0x31))).status, 202);
  assert.equal((await fits).payload.length, 6_291_556, "exactly the limit is accepted");
  const second = emulator.invoke({ n: 2 });
  const next2 = await http(`${api}/invocation/next`, "GET");
  const big = await http(`${api}/invocation/${next2.headers["lambda-runtime-aws-request-id"]}/response`, "POST", Buffer.alloc(6_291_557, 0x31));
  assert.equal(big.status, 413);
  assert.deepEqual(JSON.parse(big.body), { errorType: "RequestEntityTooLarge", errorMessage: "Exceeded maximum allowed payload size (6291556 bytes)." });
  assert.deepEqual((await second).error, { errorType: "Function.ResponseSizeTooLarge", errorMessage: "Response payload size (6291557 bytes) exceeded maximum allowed payload size (6291556 bytes)." });
  assert.equal((await http(`${emulator.url}/nowhere`, "GET")).status, 404);
});

test("close() answers queued invocations instead of leaving them hanging", async (t) => {
  const emulator = await startEmulator(t, { command: idle, initTimeoutMs: 30_000 });
  const pending = emulator.invoke({});
  await new Promise((resolve) => setTimeout(resolve, 100));
  await emulator.close();
  assert.equal((await pending).error?.errorType, "Emulator.Closed");
  assert.equal((await emulator.invoke({})).error?.errorType, "Emulator.Closed");
});

test("CLI --invoke: prints the response and exits 0, or prints the error and exits 1", async () => {
  const ok = await runToExit([tsx, "src/cli/bin.ts", "invoke", "--event", '{"name":"cli"}', "--", ...tsxCommand("examples/hello/main.ts")], {});
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).message, "Hello, cli!");
  assert.match(ok.stderr, /REPORT RequestId: /);
  const failed = await runToExit([tsx, "src/cli/bin.ts", "invoke", "--event", '{"items":"nope"}', ...tsxCommand("examples/errors/main.ts")], {});
  assert.equal(failed.code, 1);
  assert.equal(JSON.parse(failed.stdout).errorType, "ValidationError");
});

test("CLI --log-format, --log-level and --telemetry-log-fd reach the function's environment", async () => {
  const out = await runToExit([tsx, "src/cli/bin.ts", "invoke", "--log-format", "JSON", "--log-level", "warn", "--telemetry-log-fd", "--", ...miniRuntime], {});
  assert.equal(out.code, 0, out.stderr);
  const { env } = JSON.parse(out.stdout) as { env: Record<string, string> };
  assert.equal(env.AWS_LAMBDA_LOG_FORMAT, "JSON");
  assert.equal(env.AWS_LAMBDA_LOG_LEVEL, "WARN");
  assert.equal(env._LAMBDA_TELEMETRY_LOG_FD, "3");
});

test("CLI usage errors exit 2 with the reason and the usage", async () => {
  for (const [args, reason, usage] of [
    [["invoke"], /no function given/, /usage: micro-lambda invoke/],
    [["invoke", "--event", "{bad", "examples/hello/main.ts"], /--event needs JSON/, /usage: micro-lambda invoke/],
    [["serve", "--port"], /--port needs a value/, /usage: micro-lambda serve/],
    [["invoke", "--timeout", "soon", "x"], /--timeout needs a non-negative number/, /usage: micro-lambda invoke/],
    [["invoke", "--frobnicate", "x"], /unknown option --frobnicate/, /usage: micro-lambda invoke/],
    [["invoke", "--log-format", "XML", "x"], /--log-format needs one of Text, JSON, got XML/, /usage: micro-lambda invoke/],
    [["serve", "--log-level", "loud", "x"], /--log-level needs one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL, got LOUD/, /usage: micro-lambda serve/],
    [["invoke", "dist/no-such/x86_64/bootstrap"], /dist\/no-such\/x86_64\/bootstrap: no such file/, /usage: micro-lambda invoke/],
    [["frobnicate"], /unknown command "frobnicate"/, /usage: micro-lambda COMMAND/],
  ] as const) {
    const out = await runToExit([tsx, "src/cli/bin.ts", ...args], {});
    assert.equal(out.code, 2, args.join(" "));
    assert.match(out.stderr, reason);
    assert.match(out.stderr, usage);
  }
});

test("CLI server mode: serves the Invoke API until stopped", async (t) => {
  const child = spawn(tsx, ["src/cli/bin.ts", "serve", "--port", "0", "--env", "GREETING=unused", ...tsxCommand("examples/hello/main.ts")], { stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  const url = await new Promise<string>((resolve, reject) => {
    let text = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const match = /on (http:\/\/127\.0\.0\.1:\d+);/.exec(text);
      if (match) resolve(match[1]!);
    });
    child.on("exit", () => reject(new Error(`exited: ${text}`)));
  });
  const out = await http(`${url}/2015-03-31/functions/function/invocations`, "POST", '{"name":"curl"}');
  assert.equal(JSON.parse(out.body).message, "Hello, curl!");
  child.kill("SIGTERM");
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 0);
});
