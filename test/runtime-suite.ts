// The runtime's behaviour, written once and run against every way a function can be started: tsx, and the built bootstraps.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { idleDelayMs } from "../src/runtime/runtime-api.ts";
import { Emulator } from "../src/emulator/index.ts";
import { accepted, event, fakeRuntimeApi, runToExit, startEmulator, type Answer, type Recorded } from "./helpers.ts";

const fixture = "test/fixtures/behaviour/main.ts";
const isNext = (request: Recorded) => request.method === "GET" && request.url === "/2018-06-01/runtime/invocation/next";

/** Collects everything written to it, for the emulator's `output`. */
function collector(): Writable & { text: string } {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      sink.text += String(chunk);
      done();
    },
  }) as Writable & { text: string };
  sink.text = "";
  return sink;
}

/** Waits until `check` is true, polling; for output that arrives after an invocation has been answered. */
async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function runtimeSuite(label: string, commandFor: (entry: string) => Promise<string[]>): void {
  let command: string[];
  before(async () => {
    command = await commandFor(fixture);
  });

  describe(`one sandbox, many invocations (${label})`, () => {
    let emulator: Emulator;
    const output = collector();
    before(async () => {
      emulator = await Emulator.start({ command, timeoutMs: 30_000, initTimeoutMs: 30_000, functionName: "behaviour", memoryMB: 256, output });
    });
    after(() => emulator.close());

    test("the context has the managed runtime's fields, from the event's headers and the environment", async () => {
      const identity = { cognitoIdentityId: "us-east-1:id", cognitoIdentityPoolId: "us-east-1:pool" };
      const clientContext = { client: { appTitle: "app" }, Custom: { k: "v" }, env: { platform: "test" } };
      const out = await emulator.invoke({ action: "context" }, { identity, clientContext, tenantId: "tenant-7" });
      assert.equal(out.ok, true, out.payload.toString());
      const context = out.result as Record<string, unknown>;
      assert.equal(context.awsRequestId, out.requestId);
      assert.equal(context.invokedFunctionArn, "arn:aws:lambda:us-east-1:012345678912:function:behaviour");
      assert.equal(context.functionName, "behaviour");
      assert.equal(context.functionVersion, "$LATEST");
      assert.equal(context.memoryLimitInMB, "256");
      assert.equal(context.logGroupName, "/aws/lambda/behaviour");
      assert.match(context.logStreamName as string, /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
      assert.ok((context.remainingMs as number) > 25_000 && (context.remainingMs as number) <= 30_000, `remaining ${context.remainingMs}`);
      assert.deepEqual(context.identity, identity);
      assert.deepEqual(context.clientContext, clientContext);
      assert.equal(context.tenantId, "tenant-7");
    });

    test("_X_AMZN_TRACE_ID follows Lambda-Runtime-Trace-Id, and is unset when an event has none", async () => {
      const traceId = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
      const traced = (await emulator.invoke({ action: "context" }, { traceId })).result as { traceEnv: string; traceSeen: unknown };
      assert.equal(traced.traceEnv, traceId);
      // Kept in JavaScript rather than the C environment (setenv leaks every value), yet seen everywhere JavaScript looks, and by child processes.
      assert.deepEqual(traced.traceSeen, { in: true, keys: true, copy: traceId, child: traceId });
      const untraced = (await emulator.invoke({ action: "context" }, { traceId: null })).result as { traceEnv: string | null; traceSeen: unknown };
      assert.equal(untraced.traceEnv, null);
      assert.deepEqual(untraced.traceSeen, { in: false, keys: false, copy: null, child: "" });
    });

    test("one-time init runs once per sandbox: invocations share its state", async () => {
      const first = (await emulator.invoke({ action: "count" })).result as { sandboxId: string; invocations: number };
      const second = (await emulator.invoke({ action: "count" })).result as { sandboxId: string; invocations: number };
      assert.equal(second.sandboxId, first.sandboxId);
      assert.equal(second.invocations, first.invocations + 1);
    });

    test("the invocation id is echoed on /response and on /error", async () => {
      const ok = await emulator.invoke({ action: "echo", value: 1 });
      const failed = await emulator.invoke({ action: "throw" });
      for (const out of [ok, failed]) {
        assert.match(String(out.answerHeaders?.["lambda-runtime-invocation-id"]), /^[0-9a-f-]{36}$/);
      }
      assert.notEqual(ok.answerHeaders?.["lambda-runtime-invocation-id"], failed.answerHeaders?.["lambda-runtime-invocation-id"]);
    });

    test("results are JSON as in the managed runtime: undefined is sent as null", async () => {
      assert.deepEqual((await emulator.invoke({ action: "echo", value: { a: [1, "two", null] } })).result, { a: [1, "two", null] });
      const undef = await emulator.invoke({ action: "undefined" });
      assert.equal(undef.ok, true);
      assert.equal(undef.payload.toString(), "null");
    });

    test("a thrown Error is reported as {errorType, errorMessage, trace} with the error-type header, and the loop goes on", async () => {
      const before = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
      const out = await emulator.invoke({ action: "throw" });
      assert.equal(out.ok, false);
      assert.equal(out.error?.errorType, "TypeError");
      assert.equal(out.error?.errorMessage, "the handler threw on purpose");
      const trace = (out.error as { trace?: string[] } | undefined)?.trace;
      assert.ok(Array.isArray(trace) && trace[0] === "TypeError: the handler threw on purpose", JSON.stringify(out.error));
      assert.equal(out.errorTypeHeader, "TypeError");
      assert.equal(out.answerHeaders?.["content-type"], "application/vnd.aws.lambda.error+json");
      assert.match(out.logs, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\t${out.requestId}\\tERROR\\tInvoke Error \\t\\{"errorType":"TypeError","errorMessage":"the handler threw on purpose","stack":\\["TypeError: the handler threw on purpose`, "m"));
      const after = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
      assert.equal(after.sandboxId, before.sandboxId, "the same sandbox goes on");
    });

    test("whatever is thrown is reported, never crashing the runtime: strings, null, errors whose getters throw", async () => {
      const string = await emulator.invoke({ action: "throw-string" });
      assert.deepEqual(string.error, { errorType: "string", errorMessage: "a thrown string", trace: [] });
      const nothing = await emulator.invoke({ action: "throw-null" });
      assert.deepEqual(nothing.error, { errorType: "object", errorMessage: "null", trace: [] });
      const hostile = await emulator.invoke({ action: "throw-hostile" });
      assert.equal(hostile.error?.errorType, "Error");
      assert.equal(hostile.error?.errorMessage, "");
      assert.equal((await emulator.invoke({ action: "echo", value: "still here" })).result, "still here");
    });

    test("a result that cannot be serialised (circular, BigInt) fails with Runtime.JSONStringifyError, as in the managed runtime", async () => {
      for (const action of ["circular", "bigint"]) {
        const out = await emulator.invoke({ action });
        assert.equal(out.error?.errorType, "Runtime.JSONStringifyError", action);
        assert.equal(out.error!.errorMessage, "Unable to stringify response body");
        assert.equal(out.errorTypeHeader, "Runtime.JSONStringifyError");
      }
    });

    test("malformed event JSON and malformed client-context / identity headers fail only that invocation", async () => {
      const event = await emulator.invoke(Buffer.from("{not json"));
      assert.equal(event.error?.errorType, "Runtime.MalformedEvent");
      assert.match(event.error!.errorMessage, /the event is not valid JSON/);
      const clientContext = await emulator.invoke({ action: "context" }, { clientContext: "{oops" });
      assert.equal(clientContext.error?.errorType, "Runtime.MalformedClientContext");
      assert.match(clientContext.error!.errorMessage, /lambda-runtime-client-context header is not valid JSON/);
      const identity = await emulator.invoke({ action: "context" }, { identity: "nope" });
      assert.equal(identity.error?.errorType, "Runtime.MalformedCognitoIdentity");
      assert.equal((await emulator.invoke({ action: "echo", value: 2 })).result, 2);
    });

    test("a 20 MB error message: the /error body and the Invoke Error line are both cut to 128 KiB, still valid JSON", async () => {
      const out = await emulator.invoke({ action: "throw-huge", bytes: 20_000_000 });
      assert.equal(out.error?.errorType, "Error");
      assert.match(out.error!.errorMessage, /^x+… \[\d+ more characters cut\]$/);
      assert.ok(Buffer.byteLength(JSON.stringify(out.error)) <= 128 * 1024);
      const line = out.logs.split("\n").find((text) => text.includes("\tInvoke Error \t"))!;
      assert.ok(line.length < 200 * 1024, `${line.length} characters`);
      assert.deepEqual(JSON.parse(line.slice(line.indexOf("\t{") + 1)), out.error);
    });

    test("context.succeed() and context.fail() answer the invocation", async () => {
      assert.deepEqual((await emulator.invoke({ action: "succeed" })).result, { via: "succeed" });
      const failed = await emulator.invoke({ action: "fail" });
      assert.equal(failed.error?.errorMessage, "via fail");
    });

    test("a response over 6 MB: Lambda fails the invocation (413), the runtime logs it and takes the next event", async () => {
      const out = await emulator.invoke({ action: "large", bytes: 7 * 1024 * 1024 });
      assert.equal(out.ok, false);
      assert.equal(out.error?.errorType, "Function.ResponseSizeTooLarge");
      await eventually(() => /answered 413 \(response too large/.test(output.text), "the runtime's 413 log line");
      assert.equal((await emulator.invoke({ action: "echo", value: "next" })).result, "next");
    });

    test("function output reaches the logs, with START/END/REPORT lines around each invocation", async () => {
      const out = await emulator.invoke({ action: "log" });
      assert.match(out.logs, /to stdout/);
      assert.match(out.logs, /to stderr/);
      assert.match(output.text, new RegExp(`START RequestId: ${out.requestId} Version: \\$LATEST\\nto stdout|START RequestId: ${out.requestId}`));
      assert.match(output.text, new RegExp(`REPORT RequestId: ${out.requestId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 256 MB\\tMax Memory Used: \\d+ MB`));
    });
  });

  describe(`failures that end the sandbox (${label})`, () => {
    test("an uncaught exception during an invocation is reported to its /error, then the runtime exits and the next invoke starts a new sandbox", async (t) => {
      const emulator = await startEmulator(t, { command, timeoutMs: 30_000, initTimeoutMs: 30_000 });
      const before = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
      const out = await emulator.invoke({ action: "uncaught" });
      assert.equal(out.error?.errorType, "SyntaxError");
      assert.equal(out.error?.errorMessage, "thrown from a timer");
      const after = (await emulator.invoke({ action: "count" })).result as { sandboxId: string; invocations: number };
      assert.notEqual(after.sandboxId, before.sandboxId);
      assert.equal(after.invocations, 1);
    });

    test("an unhandled rejection during an invocation is reported as Runtime.UnhandledPromiseRejection, then the runtime exits", async (t) => {
      const emulator = await startEmulator(t, { command, timeoutMs: 30_000, initTimeoutMs: 30_000 });
      const out = await emulator.invoke({ action: "unhandled-rejection" });
      assert.equal(out.error?.errorType, "Runtime.UnhandledPromiseRejection");
      assert.equal(out.error?.errorMessage, "nobody caught this");
      assert.equal((await emulator.invoke({ action: "echo", value: 3 })).result, 3);
    });

    test("a function that exits mid-invocation is reported as Runtime.ExitError", async (t) => {
      const emulator = await startEmulator(t, { command, timeoutMs: 30_000, initTimeoutMs: 30_000 });
      const out = await emulator.invoke({ action: "exit" });
      assert.equal(out.error?.errorType, "Runtime.ExitError");
      assert.match(out.error!.errorMessage, /Runtime exited with error: exit status 3/);
    });

    for (const [failure, errorType, message] of [
      ["throw", "RangeError", "init failed on purpose"],
      ["reject", "Error", "async init failed on purpose"],
      ["never", "Runtime.NoHandler", "the main file finished without calling lambda(handler)"],
    ] as const) {
      test(`an init failure (${failure}) is the invoke's error; the next invoke tries init again`, async (t) => {
        const emulator = await startEmulator(t, { command, env: { INIT_FAILURE: failure }, timeoutMs: 30_000, initTimeoutMs: 30_000 });
        for (let attempt = 0; attempt < 2; attempt++) {
          const out = await emulator.invoke({ action: "count" });
          assert.equal(out.error?.errorType, errorType);
          assert.equal(out.error?.errorMessage, message);
          assert.ok(out.logs.includes("\tERROR\tInit Error \t{") && out.logs.includes(message), out.logs);
        }
      });
    }
  });

  describe(`what the runtime does with each Runtime API answer (${label})`, () => {
    test("a 204 from /next means poll again; every call reuses one keep-alive connection; request ids are percent-encoded in paths", async (t) => {
      let nexts = 0;
      const fake = await fakeRuntimeApi(t, (request) => {
        if (!isNext(request)) return accepted;
        nexts++;
        if (nexts === 1) return { status: 204 };
        if (nexts === 2) return event("id/with?odd#chars %", { action: "echo", value: "first" }, { "lambda-runtime-invocation-id": "inv-1" });
        if (nexts === 3) return event("plain-id", { action: "throw" });
        return { status: 500, body: "the end of this test" };
      });
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      const posts = fake.requests.filter((r) => r.method === "POST");
      assert.deepEqual(
        posts.map((r) => r.url),
        ["/2018-06-01/runtime/invocation/id%2Fwith%3Fodd%23chars%20%25/response", "/2018-06-01/runtime/invocation/plain-id/error"],
      );
      assert.equal(posts[0]!.body, '"first"');
      assert.equal(posts[0]!.headers["lambda-runtime-invocation-id"], "inv-1");
      assert.equal(posts[1]!.headers["lambda-runtime-invocation-id"], undefined, "echoes only what was sent");
      assert.equal(fake.connections, 1, "one keep-alive connection for every call");
      assert.equal(exit.code, 1);
    });

    test("a 5xx from /next: a clear message on stderr and a non-zero exit", async (t) => {
      const fake = await fakeRuntimeApi(t, () => ({ status: 500, body: "container broken" }));
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      assert.equal(exit.code, 1);
      assert.match(exit.stderr, /micro-lambda: GET \/2018-06-01\/runtime\/invocation\/next answered 500: container broken/);
    });

    test("a 5xx answering /response is fatal too", async (t) => {
      const fake = await fakeRuntimeApi(t, (request) => (isNext(request) ? event("r1", { action: "echo", value: 1 }) : { status: 502, body: "bad gateway" }));
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      assert.equal(exit.code, 1);
      assert.match(exit.stderr, /POST \/2018-06-01\/runtime\/invocation\/r1\/response answered 502: bad gateway/);
      assert.equal(fake.requests.filter(isNext).length, 1, "no polling after a fatal answer");
    });

    test("400, 403 and 410 answers are logged and the loop goes on; after a 413 no /error is posted", async (t) => {
      const statuses = [400, 403, 410, 413];
      let nexts = 0;
      const fake = await fakeRuntimeApi(t, (request) => {
        if (isNext(request)) {
          nexts++;
          return nexts <= statuses.length ? event(`r${nexts}`, { action: "echo", value: nexts }) : { status: 500, body: "done" };
        }
        return { status: statuses[nexts - 1]!, body: `refused with ${statuses[nexts - 1]}` };
      });
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      assert.equal(fake.requests.filter(isNext).length, 5, "kept polling after each refusal");
      assert.equal(fake.requests.filter((r) => r.url.endsWith("/error")).length, 0, "never posted /error");
      // Logged as the function's ERROR lines, each with the request id of the invocation it was about.
      for (const [i, status] of statuses.entries()) assert.match(exit.stdout, new RegExp(`\\tr${i + 1}\\tERROR\\tmicro-lambda: POST .*answered ${status}.*refused with ${status}`));
      assert.match(exit.stdout, /answered 413 \(response too large: Lambda has already failed this invocation\)/);
      assert.match(exit.stdout, /answered 410 \(too late: the invocation is over\)/);
    });

    test("no client timeout on /next: an event that arrives after a long wait is handled", async (t) => {
      let nexts = 0;
      const fake = await fakeRuntimeApi(t, async (request) => {
        if (!isNext(request)) return accepted;
        nexts++;
        if (nexts > 1) return { status: 500, body: "done" };
        await new Promise((resolve) => setTimeout(resolve, 6_000)); // longer than any default keep-alive or socket timeout Node has
        return event("late", { action: "echo", value: "late" });
      });
      await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      assert.equal(fake.requests.find((r) => r.url.endsWith("/late/response"))?.body, '"late"');
    });

    test("init failures go to /runtime/init/error with the error-type header, and the runtime exits without polling", async (t) => {
      for (const [failure, errorType] of [["throw", "RangeError"], ["reject", "Error"], ["never", "Runtime.NoHandler"]] as const) {
        const fake = await fakeRuntimeApi(t, () => accepted);
        const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address, INIT_FAILURE: failure });
        assert.notEqual(exit.code, 0, failure);
        assert.deepEqual(fake.requests.map((r) => `${r.method} ${r.url}`), ["POST /2018-06-01/runtime/init/error"], failure);
        const [report] = fake.requests;
        assert.equal(report!.headers["lambda-runtime-function-error-type"], errorType);
        assert.equal(report!.headers["content-type"], "application/vnd.aws.lambda.error+json");
        assert.equal(JSON.parse(report!.body).errorType, errorType);
      }
    });

    test("the Runtime API unreachable: a clear message and a non-zero exit", async () => {
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: "127.0.0.1:1" });
      assert.equal(exit.code, 1);
      assert.match(exit.stderr, /micro-lambda: the Runtime API at 127\.0\.0\.1:1 cannot be reached \(GET \/2018-06-01\/runtime\/invocation\/next\): connect ECONNREFUSED/);
    });

    test("AWS_LAMBDA_RUNTIME_API missing: a message that names it, and a non-zero exit", async () => {
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: undefined, MICRO_LAMBDA_RUNTIME_API: undefined });
      assert.equal(exit.code, 1);
      assert.match(exit.stderr, /AWS_LAMBDA_RUNTIME_API is not set/);
    });

    test("MICRO_LAMBDA_RUNTIME_API, when set, is used instead of AWS_LAMBDA_RUNTIME_API", async (t) => {
      const official = await fakeRuntimeApi(t, () => ({ status: 500, body: "the official address was used" }));
      let nexts = 0;
    const override = await fakeRuntimeApi(t, (request) => (isNext(request) ? (++nexts === 1 ? event("o1", { action: "echo", value: "via override" }) : { status: 500, body: "done" }) : accepted));
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: official.address, MICRO_LAMBDA_RUNTIME_API: override.address });
      assert.equal(official.requests.length, 0);
      assert.equal(override.requests.find((r) => r.url === "/2018-06-01/runtime/invocation/o1/response")?.body, '"via override"');
      assert.match(exit.stderr, /answered 500: done/);
    });

    test("204 answers in a row: the runtime waits before asking again, 1 ms doubling up to 250 ms, instead of a busy loop", async (t) => {
      assert.deepEqual([0, 1, 2, 3, 7, 8, 9, 20].map(idleDelayMs), [1, 2, 4, 8, 128, 250, 250, 250]);
      const times: number[] = [];
      const fake = await fakeRuntimeApi(t, (request) => {
        if (!isNext(request)) return accepted;
        times.push(Date.now());
        if (times.length <= 9) return { status: 204 };
        return times.length === 10 ? event("after-idle", { action: "echo", value: "woken" }) : { status: 500, body: "done" };
      });
      await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      assert.equal(fake.requests.find((r) => r.url.endsWith("/after-idle/response"))?.body, '"woken"');
      assert.equal(times.length, 11, "ten polls for ten answers: no busy loop");
      // Lower bounds only (a loaded machine makes gaps longer, never shorter): the 9th wait is at least 250 ms.
      assert.ok(times[9]! - times[8]! >= 245, `the 9th wait was ${times[9]! - times[8]!} ms`);
      assert.ok(times[8]! - times[4]! >= 128 + 64 + 32 + 16 - 5, `waits 5-8 took ${times[8]! - times[4]!} ms`);
    });

    test("a missing or non-numeric deadline: getRemainingTimeInMillis() counts down from 15 minutes, not NaN, and a line says why", async (t) => {
      const fake = await fakeRuntimeApi(t, (request, index) => {
        if (!isNext(request)) return accepted;
        const body = JSON.stringify({ action: "context" });
        if (index === 0) return { status: 200, headers: { "lambda-runtime-aws-request-id": "no-deadline" }, body };
        if (index === 2) return { status: 200, headers: { "lambda-runtime-aws-request-id": "bad-deadline", "lambda-runtime-deadline-ms": "soon" }, body };
        return { status: 500, body: "done" };
      });
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      for (const id of ["no-deadline", "bad-deadline"]) {
        const remaining = JSON.parse(fake.requests.find((r) => r.url.endsWith(`/${id}/response`))!.body).remainingMs as number;
        assert.ok(remaining > 800_000 && remaining <= 900_000, `${id}: ${remaining}`);
      }
      assert.match(exit.stdout, /\tno-deadline\tWARN\tmicro-lambda: the event's lambda-runtime-deadline-ms header is missing: getRemainingTimeInMillis\(\) counts down from 15 minutes/);
      assert.match(exit.stdout, /\tbad-deadline\tWARN\tmicro-lambda: the event's lambda-runtime-deadline-ms header is not a time \("soon"\)/);
    });

    test("a /next answer that is not valid HTTP (a lone CR in the invocation id): the message says so, not 'cannot be reached'", async (t) => {
      const server = createServer((socket) => {
        socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: cr\r\nLambda-Runtime-Invocation-Id: a\rb\r\nContent-Length: 2\r\n\r\n{}"));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      t.after(() => new Promise((resolve) => server.close(resolve)));
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${(server.address() as AddressInfo).port}` });
      assert.equal(exit.code, 1);
      assert.match(exit.stderr, /micro-lambda: the Runtime API at 127\.0\.0\.1:\d+ answered with something that is not valid HTTP \(GET \/2018-06-01\/runtime\/invocation\/next\): .*lambda-runtime-invocation-id/i);
      assert.doesNotMatch(exit.stderr, /cannot be reached/);
    });

    test("with _LAMBDA_TELEMETRY_LOG_FD, each console call is one frame on that fd (type, length, µs time, message), a multi-line one included", async (t) => {
      let nexts = 0;
      const fake = await fakeRuntimeApi(t, (request) => (isNext(request) ? (++nexts === 1 ? event("framed", { action: "log-later", ms: 0 }) : { status: 500, body: "done" }) : accepted));
      const started = Date.now();
      const [file, ...args] = command;
      const child = spawn(file!, args, { env: { ...process.env, AWS_LAMBDA_RUNTIME_API: fake.address, _LAMBDA_TELEMETRY_LOG_FD: "3" }, stdio: ["ignore", "pipe", "pipe", "pipe"] });
      const chunks: Buffer[] = [];
      let stdout = "";
      (child.stdio[3] as NodeJS.ReadableStream).on("data", (chunk: Buffer) => chunks.push(chunk));
      child.stdout!.setEncoding("utf8").on("data", (text: string) => (stdout += text));
      child.stderr!.resume();
      await new Promise((resolve) => child.on("close", resolve));
      const frames: { type: number; micros: bigint; message: string }[] = [];
      const bytes = Buffer.concat(chunks);
      for (let at = 0; at < bytes.length; ) {
        const length = bytes.readUInt32BE(at + 4);
        frames.push({ type: bytes.readUInt32BE(at), micros: bytes.readBigUInt64BE(at + 8), message: bytes.toString("utf8", at + 16, at + 16 + length) });
        at += 16 + length;
      }
      const mine = frames.filter((frame) => frame.message.includes("\tframed\t"));
      assert.deepEqual(
        mine.map((frame) => [frame.type.toString(16), frame.message.replace(/^\S+\t/, "<time>\t")]),
        [
          ["a55a000f", "<time>\tframed\tINFO\tbefore the wait, in framed\n"],
          ["a55a000f", "<time>\tframed\tINFO\tafter the wait, in framed\n"],
          ["a55a0013", "<time>\tframed\tWARN\ttwo lines\nof framed\n"],
        ],
      );
      for (const frame of mine) {
        const ms = Number(frame.micros / 1000n);
        assert.ok(frame.micros % 1000n === 0n && ms >= started - 1000 && ms <= Date.now(), String(frame.micros));
        assert.equal(new Date(ms).toISOString(), frame.message.split("\t")[0]);
      }
      assert.doesNotMatch(stdout, /framed/, "nothing of it on stdout");
    });

    test("with AWS_LAMBDA_MAX_CONCURRENCY, every line is JSON and carries its own invocation's request id, across awaits", async (t) => {
      const ids = ["slow", "middle", "fast"];
      let answered = 0;
      let allAnswered!: () => void;
      const done = new Promise<void>((resolve) => (allAnswered = resolve));
      const fake = await fakeRuntimeApi(t, async (request, index) => {
        if (!isNext(request)) {
          if (++answered === 3) allAnswered();
          return accepted;
        }
        const id = ids.shift();
        if (id) return event(id, { action: "log-later", ms: { slow: 80, middle: 40, fast: 0 }[id] });
        await done;
        return { status: 500, body: "done" };
      });
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address, AWS_LAMBDA_MAX_CONCURRENCY: "3" });
      const lines = exit.stdout.split("\n").filter((line) => /before the wait|after the wait|two lines/.test(line));
      assert.equal(lines.length, 9, exit.stdout);
      for (const line of lines) {
        const record = JSON.parse(line) as { requestId: string; message: string; level: string };
        assert.ok(record.message.endsWith(` ${record.requestId}`), line);
      }
    });

    test("an error name that cannot be a header value is cleaned for the header and kept readable in the body", async (t) => {
      const fake = await fakeRuntimeApi(t, (request, index) => (isNext(request) ? (index === 0 ? event("h1", { action: "throw-odd-name" }) : { status: 500 }) : accepted));
      await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      const error = fake.requests.find((r) => r.url.endsWith("/h1/error"))!;
      assert.equal(error.headers["lambda-runtime-function-error-type"], "Bad Name");
      assert.equal(JSON.parse(error.body).errorType, "Bad\nName✓", "the body has the name as it is, as in the managed runtime");
    });
  });
}

export type { Answer };
