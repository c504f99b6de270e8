// The runtime's behaviour, written once and run against every way a function can be started: tsx, and the built bootstraps.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Writable } from "node:stream";
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

    test("a thrown Error is reported as {errorType, errorMessage, stackTrace} with the error-type header, and the loop goes on", async () => {
      const before = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
      const out = await emulator.invoke({ action: "throw" });
      assert.equal(out.ok, false);
      assert.equal(out.error?.errorType, "TypeError");
      assert.equal(out.error?.errorMessage, "the handler threw on purpose");
      assert.ok(Array.isArray(out.error?.stackTrace) && out.error.stackTrace[0] === "TypeError: the handler threw on purpose", JSON.stringify(out.error));
      assert.equal(out.errorTypeHeader, "TypeError");
      assert.equal(out.answerHeaders?.["content-type"], "application/vnd.aws.lambda.error+json");
      assert.match(out.logs, /ERROR\tInvoke Error\t\{"errorType":"TypeError"/);
      const after = (await emulator.invoke({ action: "count" })).result as { sandboxId: string };
      assert.equal(after.sandboxId, before.sandboxId, "the same sandbox goes on");
    });

    test("whatever is thrown is reported, never crashing the runtime: strings, null, errors whose getters throw", async () => {
      const string = await emulator.invoke({ action: "throw-string" });
      assert.deepEqual(string.error, { errorType: "string", errorMessage: "a thrown string", stackTrace: [] });
      const nothing = await emulator.invoke({ action: "throw-null" });
      assert.deepEqual(nothing.error, { errorType: "object", errorMessage: "null", stackTrace: [] });
      const hostile = await emulator.invoke({ action: "throw-hostile" });
      assert.equal(hostile.error?.errorType, "Error");
      assert.equal(hostile.error?.errorMessage, "");
      assert.equal((await emulator.invoke({ action: "echo", value: "still here" })).result, "still here");
    });

    test("a result that cannot be serialised (circular, BigInt) fails with Runtime.SerializationError", async () => {
      for (const action of ["circular", "bigint"]) {
        const out = await emulator.invoke({ action });
        assert.equal(out.error?.errorType, "Runtime.SerializationError", action);
        assert.match(out.error!.errorMessage, /cannot be serialised to JSON: .*(circular|BigInt)/i);
        assert.equal(out.errorTypeHeader, "Runtime.SerializationError");
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
          assert.ok(out.logs.includes("micro-lambda: init failed: ") && out.logs.includes(message), out.logs);
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
      for (const status of statuses) assert.match(exit.stderr, new RegExp(`answered ${status}.*refused with ${status}`));
      assert.match(exit.stderr, /answered 413 \(response too large: Lambda has already failed this invocation\)/);
      assert.match(exit.stderr, /answered 410 \(too late: the invocation is over\)/);
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

    test("an error name that cannot be a header value is cleaned for the header and kept readable in the body", async (t) => {
      const fake = await fakeRuntimeApi(t, (request, index) => (isNext(request) ? (index === 0 ? event("h1", { action: "throw-odd-name" }) : { status: 500 }) : accepted));
      await runToExit(command, { AWS_LAMBDA_RUNTIME_API: fake.address });
      const error = fake.requests.find((r) => r.url.endsWith("/h1/error"))!;
      assert.equal(error.headers["lambda-runtime-function-error-type"], "Bad Name");
      assert.equal(JSON.parse(error.body).errorType, "Bad Name✓");
    });
  });
}

export type { Answer };
