// What the emulator does with bad input (issue 13) and what it gives the function (issue 11): every request that goes wrong is answered or logged, and the emulator goes on.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { Emulator, type EmulatorOptions } from "../src/emulator/index.ts";
import { MAX_LINE_BYTES } from "../src/emulator/logs.ts";
import { miniRuntime, root, startEmulator } from "./helpers.ts";

/** A "function" that starts and does nothing, so the test itself can play the runtime. */
const idle = [process.execPath, "-e", "setInterval(() => {}, 1 << 30)"];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(url: string, method: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The emulator's output (its log stream), readable as text. */
function output(): { stream: Writable; text(): string; until(pattern: RegExp): Promise<void> } {
  let text = "";
  return {
    stream: new Writable({ write: (chunk, _encoding, done) => ((text += String(chunk)), done()) }),
    text: () => text,
    async until(pattern) {
      for (let i = 0; i < 400 && !pattern.test(text); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.match(text, pattern);
    },
  };
}

async function start(t: TestContext, options: Partial<EmulatorOptions> = {}): Promise<{ emulator: Emulator; log: ReturnType<typeof output> }> {
  const log = output();
  const emulator = await startEmulator(t, { command: idle, initTimeoutMs: 30_000, output: log.stream, ...options });
  return { emulator, log };
}

/** Sends the head of a request and part of its body, then hangs up, as Ctrl-C on a curl upload does. */
function hangUpMidBody(address: string, method: string, path: string): Promise<void> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    const socket = connect(Number(port), host, () => {
      socket.write(`${method} ${path} HTTP/1.1\r\nhost: ${address}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"partial":`, () => {
        socket.destroy();
        resolve();
      });
    });
    socket.on("error", () => resolve());
  });
}

/** Raw bytes to the server, and what it answers before closing. */
function raw(address: string, bytes: string): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(Number(port), host, () => socket.write(bytes));
    socket.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    socket.on("close", () => resolve(text));
    socket.on("error", () => {});
  });
}

const utf8 = (header: string | string[] | undefined) => Buffer.from(String(header), "latin1").toString("utf8");

/** Whether a process is gone (or a zombie nobody has reaped yet: it runs no more). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

test("a client that hangs up mid-body, on any endpoint, is logged and the emulator goes on answering", async (t) => {
  const { emulator, log } = await start(t);
  const api = "/2018-06-01/runtime";
  const running = emulator.invoke({ n: 1 });
  const next = await http(`${emulator.url}${api}/invocation/next`, "GET");
  const id = next.headers["lambda-runtime-aws-request-id"] as string;
  const paths = ["/2015-03-31/functions/function/invocations", `${api}/invocation/${id}/response`, `${api}/invocation/${id}/error`, `${api}/init/error`, "/nowhere"];
  for (const path of paths) {
    await hangUpMidBody(emulator.address, "POST", path);
    await log.until(new RegExp(`micro-lambda emulator: POST ${path.replaceAll("/", "\\/")}: the client hung up after \\d+ bytes of the body \\(Content-Length: 1000\\)`));
  }
  // The invocation whose /response broke off is still running: a whole answer is taken.
  assert.equal((await http(`${emulator.url}${api}/invocation/${id}/response`, "POST", '"whole"')).status, 202);
  assert.equal((await running).result, "whole");
  const again = emulator.invoke({ n: 2 });
  const next2 = await http(`${emulator.url}${api}/invocation/next`, "GET");
  await http(`${emulator.url}${api}/invocation/${next2.headers["lambda-runtime-aws-request-id"]}/response`, "POST", "2");
  assert.equal((await again).result, 2);
});

test("a malformed percent-escape in a request id gets 400 InvalidRequestID; malformed HTTP gets 400; the emulator goes on", async (t) => {
  const { emulator } = await start(t);
  const bad = await http(`${emulator.url}/2018-06-01/runtime/invocation/%ZZ/response`, "POST", "{}");
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.body), { errorType: "InvalidRequestID", errorMessage: "the request id in the path is not percent-encoded correctly: %ZZ" });
  assert.equal((await http(`${emulator.url}/2018-06-01/runtime/invocation/%E0%A4%A/error`, "POST", "{}")).status, 400);
  assert.match(await raw(emulator.address, "NOT HTTP AT ALL\r\n\r\n"), /^HTTP\/1\.1 400 Bad Request/);
  const out = emulator.invoke({ still: "here" });
  const next = await http(`${emulator.url}/2018-06-01/runtime/invocation/next`, "GET");
  assert.equal(next.body, '{"still":"here"}');
  await http(`${emulator.url}/2018-06-01/runtime/invocation/${next.headers["lambda-runtime-aws-request-id"]}/response`, "POST", "1");
  assert.equal((await out).ok, true);
});

test("client context with € and emoji reaches the runtime as UTF-8 bytes; one that is not base64 JSON is refused as Lambda refuses it", async (t) => {
  const { emulator } = await start(t);
  const context = { custom: { city: "Zürich €", mood: "😀" } };
  const invoked = http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST", "{}", { "x-amz-client-context": Buffer.from(JSON.stringify(context)).toString("base64") });
  const next = await http(`${emulator.url}/2018-06-01/runtime/invocation/next`, "GET");
  assert.deepEqual(JSON.parse(utf8(next.headers["lambda-runtime-client-context"])), context);
  await http(`${emulator.url}/2018-06-01/runtime/invocation/${next.headers["lambda-runtime-aws-request-id"]}/response`, "POST", "{}");
  assert.equal((await invoked).status, 200);

  for (const header of ["not base64 at all!", Buffer.from("Zürich €").toString("base64"), Buffer.from("[1]").toString("base64")]) {
    const refused = await http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST", "{}", { "x-amz-client-context": header });
    assert.equal(refused.status, 400, header);
    assert.equal(refused.headers["x-amzn-errortype"], "InvalidRequestContentException");
    assert.deepEqual(JSON.parse(refused.body), { Type: "User", message: "Client context must be a valid Base64-encoded JSON object." });
  }
});

test("Emulator.invoke never rejects: non-ASCII client context and identity go as UTF-8; what no header can carry is a failed result", async (t) => {
  const { emulator } = await start(t);
  const sent = emulator.invoke({}, { clientContext: "Zürich € 😀", identity: { cognitoIdentityId: "ïd 😀" } });
  const next = await http(`${emulator.url}/2018-06-01/runtime/invocation/next`, "GET");
  assert.equal(utf8(next.headers["lambda-runtime-client-context"]), "Zürich € 😀");
  assert.deepEqual(JSON.parse(utf8(next.headers["lambda-runtime-cognito-identity"])), { cognitoIdentityId: "ïd 😀" });
  await http(`${emulator.url}/2018-06-01/runtime/invocation/${next.headers["lambda-runtime-aws-request-id"]}/response`, "POST", "{}");
  assert.equal((await sent).ok, true);

  const crlf = await emulator.invoke({}, { clientContext: "a\r\nInjected: yes" });
  assert.equal(crlf.error?.errorType, "InvalidRequestContentException");
  assert.match(crlf.error!.errorMessage, /clientContext cannot be sent as a header: it holds a control character/);
  const bigint = await emulator.invoke(10n);
  assert.equal(bigint.error?.errorType, "InvalidRequestContentException");
  assert.match(bigint.error!.errorMessage, /BigInt/);
});

test("the Invoke API refuses a payload over 6 MiB and one that is not JSON, as Lambda does", async (t) => {
  const { emulator } = await start(t);
  const url = `${emulator.url}/2015-03-31/functions/function/invocations`;
  const big = await http(url, "POST", Buffer.alloc(6_291_457, 0x20));
  assert.equal(big.status, 413);
  assert.equal(big.headers["x-amzn-errortype"], "RequestEntityTooLargeException");
  assert.deepEqual(JSON.parse(big.body), { Type: "User", message: "Request must be smaller than 6291456 bytes for the InvokeFunction operation" });
  for (const body of ["not json", Buffer.from([0x22, 0x87, 0x22])]) {
    const bad = await http(url, "POST", body);
    assert.equal(bad.status, 400);
    assert.equal(bad.headers["x-amzn-errortype"], "InvalidRequestContentException");
    assert.match(JSON.parse(bad.body).message, /^Could not parse request body into json: Could not parse payload into json: /);
  }
});

test("an error body over the limit reaches the caller as valid JSON (Function.ResponseSizeTooLarge), not truncated", async (t) => {
  const { emulator } = await start(t, { command: miniRuntime });
  const out = await http(`${emulator.url}/2015-03-31/functions/function/invocations`, "POST", JSON.stringify({ errorBytes: 20 * 1024 * 1024 }));
  assert.equal(out.status, 200);
  assert.equal(out.headers["x-amz-function-error"], "Unhandled");
  assert.equal(out.headers["content-type"], "application/json");
  const error = JSON.parse(out.body);
  assert.equal(error.errorType, "Function.ResponseSizeTooLarge");
  assert.match(error.errorMessage, /^Response payload size \(\d+ bytes\) exceeded maximum allowed payload size \(6291556 bytes\)\.$/);
});

test("a timeout kills what the function left behind: a detached grandchild holding its stdout dies, later invokes and close() go on", async (t) => {
  const spawner = [
    process.execPath,
    "-e",
    `const c = require("node:child_process").spawn("sleep", ["600"], { detached: true, stdio: ["ignore", "inherit", "inherit"] }); console.log("grandchild " + c.pid); setInterval(() => {}, 1 << 30);`,
  ];
  const { emulator } = await start(t, { command: spawner, timeoutMs: 500 });
  const api = `${emulator.url}/2018-06-01/runtime`;
  const first = emulator.invoke({ n: 1 });
  await http(`${api}/invocation/next`, "GET");
  const out = await first;
  assert.equal(out.error?.errorType, "Sandbox.Timedout");
  const pid1 = Number(/grandchild (\d+)/.exec(out.logs)?.[1]);
  assert.ok(pid1 > 0, out.logs);
  assert.ok(gone(pid1), "the grandchild was killed with the sandbox");

  const second = emulator.invoke({ n: 2 });
  const next = await http(`${api}/invocation/next`, "GET");
  await http(`${api}/invocation/${next.headers["lambda-runtime-aws-request-id"]}/response`, "POST", '"fresh"');
  const fresh = await second;
  assert.equal(fresh.result, "fresh");
  const pid2 = Number(/grandchild (\d+)/.exec(fresh.logs)?.[1]);
  await emulator.close();
  assert.ok(gone(pid2), "close() killed the new sandbox's grandchild too");
});

test("micro-lambda serve: after a timeout with a detached grandchild, invokes go on, SIGINT stops it with exit 0, and nothing is left running", async (t) => {
  const spawnGrandchild = `require("node:child_process").spawn("sleep", ["600"], { detached: true, stdio: ["ignore", "inherit", "inherit"] }).pid`;
  const fn = [process.execPath, "-e", `console.log("grandchild " + ${spawnGrandchild});\n${miniRuntime[2]}`];
  const server = spawn(process.execPath, ["--import", "tsx", "src/cli/bin.ts", "serve", "--port", "0", "--timeout", "0.5", "--", ...fn], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => server.kill("SIGKILL"));
  let log = "";
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      log += chunk;
      const match = /on (http:\/\/127\.0\.0\.1:\d+);/.exec(log);
      if (match) resolve(match[1]!);
    });
    server.on("exit", () => reject(new Error(`exited: ${log}`)));
  });
  const invocations = `${url}/2015-03-31/functions/function/invocations`;
  const timedOut = await http(invocations, "POST", '{"hang":true}');
  assert.equal(JSON.parse(timedOut.body).errorType, "Sandbox.Timedout");
  assert.equal((await http(invocations, "POST", "{}")).status, 200, "the next invoke is answered");
  const pids = [...log.matchAll(/grandchild (\d+)/g)].map((match) => Number(match[1]));
  assert.equal(pids.length, 2, log);
  assert.ok(gone(pids[0]!), "the first sandbox's grandchild died with it");
  server.kill("SIGINT");
  assert.equal(await new Promise((resolve) => server.once("exit", resolve)), 0);
  assert.ok(gone(pids[1]!), "the second one died with the emulator");
});

test("a timed-out invocation's logs hold what the function printed up to the end", async (t) => {
  const { emulator } = await start(t, { command: miniRuntime, timeoutMs: 300 });
  const out = await emulator.invoke({ print: "last words", raw: "no newline at the end", hang: true });
  assert.equal(out.error?.errorType, "Sandbox.Timedout");
  assert.match(out.logs, /\tINFO\tlast words\nno newline at the end$/);
  assert.equal((await emulator.invoke({})).ok, true, "a fresh sandbox takes the next one");
});

test("50 MiB of stdout without a newline: cut into CloudWatch-sized lines, in linear time, and the invocation succeeds", async (t) => {
  const size = 50 * 1024 * 1024;
  const printer = [process.execPath, "-e", `process.stdout.write(Buffer.alloc(${size}, "x"), () => console.log("€nd")); setInterval(() => {}, 1 << 30);`];
  // The output is measured as it comes, not kept: line count, longest line, bytes of x, and the end mark.
  const seen = { lines: 0, longest: 0, xBytes: 0, ended: false };
  const stream = new Writable({
    write(chunk, _encoding, done) {
      const line = String(chunk).replace(/\n$/, "");
      if (line.startsWith("x")) {
        seen.lines++;
        seen.longest = Math.max(seen.longest, Buffer.byteLength(line));
        seen.xBytes += line.replace(/€nd$/, "").length;
        seen.ended ||= line.endsWith("x€nd");
      }
      done();
    },
  });
  const emulator = await startEmulator(t, { command: printer, initTimeoutMs: 30_000, timeoutMs: 10_000, output: stream });
  const api = `${emulator.url}/2018-06-01/runtime`;
  const invoked = emulator.invoke({});
  const next = await http(`${api}/invocation/next`, "GET");
  for (let i = 0; i < 1200 && !seen.ended; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  await http(`${api}/invocation/${next.headers["lambda-runtime-aws-request-id"]}/response`, "POST", "1");
  assert.equal((await invoked).ok, true);
  assert.deepEqual(seen, { lines: Math.ceil(size / MAX_LINE_BYTES), longest: MAX_LINE_BYTES, xBytes: size, ended: true }, "every byte, in lines of at most 262,118 bytes, the last one ending with the mark");
});

test("--log-format and --log-level reach the function; Lambda's variables are defaults, and the ARN and log group follow the name", async (t) => {
  const { emulator } = await start(t, {
    command: miniRuntime,
    logFormat: "JSON",
    logLevel: "DEBUG",
    env: { AWS_LAMBDA_FUNCTION_NAME: "orders", AWS_LAMBDA_FUNCTION_TIMEOUT: "7", AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256", AWS_REGION: "eu-west-1" },
    timeoutMs: undefined,
  });
  assert.equal(emulator.options.timeoutMs, 7000);
  assert.equal(emulator.options.memoryMB, 256);
  const out = await emulator.invoke({});
  const { env, arn } = out.result as { env: Record<string, string>; arn: string };
  assert.equal(arn, "arn:aws:lambda:eu-west-1:012345678912:function:orders");
  assert.equal(env.AWS_LAMBDA_LOG_FORMAT, "JSON");
  assert.equal(env.AWS_LAMBDA_LOG_LEVEL, "DEBUG");
  assert.equal(env.AWS_LAMBDA_LOG_GROUP_NAME, "/aws/lambda/orders");
  assert.equal(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, "256");
  assert.equal(env.AWS_REGION, "eu-west-1");
  await assert.rejects(Emulator.start({ command: idle, logFormat: "XML" as "JSON" }), /logFormat must be Text or JSON, got "XML"/);
});

test("the telemetry log fd: each frame is one record, multi-line kept whole; Telemetry API `function` records are the parsed object for JSON", async (t) => {
  const records: { type: string; record: unknown }[] = [];
  const listener = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      records.push(...JSON.parse(body));
      res.end();
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => listener.close(resolve)));
  const uri = `http://sandbox.localdomain:${(listener.address() as AddressInfo).port}/`;
  const init = { subscribe: uri, frames: [{ text: "first line\nsecond line" }, { text: JSON.stringify({ level: "INFO", message: "in json" }), json: true }] };
  const { emulator, log } = await start(t, { command: miniRuntime, telemetryLogFd: true, env: { MINI_INIT: JSON.stringify(init) } });
  const invoked = emulator.invoke({ frames: [{ text: "during\nthe invoke" }, { text: "y".repeat(300_000) }], fdRaw: "not a frame, sixteen bytes or more" });
  const out = await invoked;
  assert.equal(out.ok, true);
  assert.ok(out.logs.includes("first line\nsecond line"), out.logs);
  assert.ok(out.logs.includes("during\nthe invoke"), out.logs);
  assert.ok(out.logs.includes(`\n${"y".repeat(MAX_LINE_BYTES)}`) && !out.logs.includes("y".repeat(MAX_LINE_BYTES + 1)), "a frame over the limit is kept to 262,118 bytes");
  await emulator.close(); // delivers what is buffered
  const functionRecords = records.filter((event) => event.type === "function").map((event) => event.record);
  assert.deepEqual(functionRecords, ["first line\nsecond line", { level: "INFO", message: "in json" }, "during\nthe invoke", "y".repeat(MAX_LINE_BYTES)]);
  assert.match(log.text(), /first line\nsecond line\n/);
  assert.match(log.text(), /micro-lambda emulator: the telemetry log fd carried bytes that are not a frame \(type 0x6e6f7420\); it is ignored from here on/);
});

test("with several invocations at once, a line is attributed to the invocation whose request id it carries", async (t) => {
  const { emulator } = await start(t, { command: miniRuntime, concurrency: 2 });
  const [a, b] = await Promise.all([emulator.invoke({ print: "from a", pauseMs: 50 }), emulator.invoke({ print: "from b", pauseMs: 50 })]);
  assert.match(a!.logs, new RegExp(`\\t${a!.requestId}\\tINFO\\tfrom a`));
  assert.doesNotMatch(a!.logs, /from b/);
  assert.match(b!.logs, /from b/);
  assert.doesNotMatch(b!.logs, /from a/);
});
