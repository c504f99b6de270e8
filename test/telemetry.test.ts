// The Telemetry API: the client and listener (src/extension/telemetry.ts) against a fake and against the emulator, and the emulator's delivery and validation.
import assert from "node:assert/strict";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { Extensions } from "../src/emulator/extensions.ts";
import { RuntimeApiError } from "../src/wire/errors.ts";
import { listenHost, subscribeTelemetry, type TelemetryEvent } from "../src/extension/telemetry.ts";
import { extensionsDir, recordFile } from "./extension-helpers.ts";
import { fakeRuntimeApi, startEmulator, tsxCommand } from "./helpers.ts";

const chatty = tsxCommand("test/fixtures/chatty/main.ts");

async function post(port: number, body: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body, headers: { "content-type": "application/json" } });
  return { status: res.status, body: await res.text() };
}

test("subscribeTelemetry starts the listener, then PUTs the subscription with the listener as destination", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const batches: TelemetryEvent[][] = [];
  const listener = await subscribeTelemetry({ id: "ext-1", address: api.address }, { types: ["function"], buffering: { timeoutMs: 25 }, onEvents: (events) => void batches.push(events) });
  t.after(() => listener.close());
  const [put] = api.requests;
  assert.equal(put!.method, "PUT");
  assert.equal(put!.url, "/2022-07-01/telemetry");
  assert.equal(put!.headers["lambda-extension-identifier"], "ext-1");
  assert.deepEqual(JSON.parse(put!.body), {
    schemaVersion: "2022-12-13",
    types: ["function"],
    buffering: { maxItems: 1000, maxBytes: 262144, timeoutMs: 25 },
    destination: { protocol: "HTTP", URI: `http://sandbox.localdomain:${listener.port}/` },
  });
  // Here sandbox.localdomain does not resolve: loopback. In Lambda it resolves to the sandbox's own address.
  assert.equal(listener.host, await listenHost());
  assert.equal(listener.host, "127.0.0.1");
  const event = { time: "2026-01-01T00:00:00.000Z", type: "function", record: "hello" };
  assert.equal((await post(listener.port, JSON.stringify([event]))).status, 200);
  assert.deepEqual(batches, [[event]]);
});

test("the listener answers a malformed batch with 400 and takes the next one; a callback that throws gets Lambda a 500", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const batches: TelemetryEvent[][] = [];
  const listener = await subscribeTelemetry(
    { id: "ext-1", address: api.address },
    {
      onEvents: (events) => {
        if (events[0]?.record === "explode") throw new Error("callback broke");
        batches.push(events);
      },
    },
  );
  t.after(() => listener.close());
  const notJson = await post(listener.port, "[{oops");
  assert.equal(notJson.status, 400);
  assert.match(JSON.parse(notJson.body).errorMessage, /^not JSON/);
  assert.equal((await post(listener.port, '{"time":"x"}')).status, 400);
  assert.match((await post(listener.port, '[{"time":"x","type":"function"}]')).body, /element 0 is not \{time, type, record\}/);
  assert.equal((await fetch(`http://127.0.0.1:${listener.port}/`)).status, 400, "GET is not a batch");
  const failed = await post(listener.port, JSON.stringify([{ time: "t", type: "function", record: "explode" }]));
  assert.equal(failed.status, 500);
  assert.match(failed.body, /callback broke/);
  const good = [{ time: "t", type: "platform.start", record: { requestId: "r" } }];
  assert.equal((await post(listener.port, JSON.stringify(good))).status, 200);
  assert.deepEqual(batches, [good]);
});

test("options are checked against Lambda's limits before anything is sent", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const registration = { id: "ext-1", address: api.address };
  const onEvents = () => {};
  await assert.rejects(subscribeTelemetry(registration, { buffering: { maxItems: 5 }, onEvents }), { name: "RangeError", message: "telemetry buffering.maxItems must be an integer from 1000 to 10000 (Lambda's limits), got 5" });
  await assert.rejects(subscribeTelemetry(registration, { buffering: { maxBytes: 2_000_000 }, onEvents }), /buffering.maxBytes must be an integer from 262144 to 1048576/);
  await assert.rejects(subscribeTelemetry(registration, { buffering: { timeoutMs: 10.5 }, onEvents }), /buffering.timeoutMs must be an integer from 25 to 30000/);
  await assert.rejects(subscribeTelemetry(registration, { types: [], onEvents }), { name: "TypeError" });
  await assert.rejects(subscribeTelemetry(registration, { types: ["logs" as "function"], onEvents }), /"logs" is not one of platform, function, extension/);
  await assert.rejects(subscribeTelemetry(registration, { schemaVersion: "2020-01-01" as "2022-12-13", onEvents }), /schemaVersion "2020-01-01"/);
  await assert.rejects(subscribeTelemetry(registration, { port: 9001, onEvents }), /port 9001/);
  await assert.rejects(subscribeTelemetry(registration, {} as Parameters<typeof subscribeTelemetry>[1]), /needs an onEvents/);
  assert.equal(api.requests.length, 0);
});

test("the Logs API option subscribes at /2020-08-15/logs with its schema", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const listener = await subscribeTelemetry({ id: "ext-1", address: api.address }, { api: "logs", onEvents: () => {} });
  t.after(() => listener.close());
  assert.equal(api.requests[0]!.url, "/2020-08-15/logs");
  assert.equal(JSON.parse(api.requests[0]!.body).schemaVersion, "2021-03-18");
});

test("a refused subscription rejects with Lambda's answer and closes the listener", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 400, body: '{"errorType":"ValidationError","errorMessage":"URI port is not provided"}' }));
  let port = 0;
  await assert.rejects(
    subscribeTelemetry({ id: "ext-1", address: api.address }, { onEvents: () => {} }).catch((error: RuntimeApiError) => {
      port = Number(/sandbox.localdomain:(\d+)/.exec(api.requests[0]!.body)![1]);
      throw error;
    }),
    { name: "RuntimeApiError", status: 400, message: 'PUT /2022-07-01/telemetry answered 400: {"errorType":"ValidationError","errorMessage":"URI port is not provided"}' },
  );
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`), "the listener is closed");
  await assert.rejects(subscribeTelemetry({ id: "ext-1", address: "127.0.0.1:1" }, { onEvents: () => {} }), /the Telemetry API at 127.0.0.1:1 cannot be reached/);
});

// ---- the emulator's side -------------------------------------------------------------------------------

test("emulator: every line the function prints arrives once, in order, with platform.start/runtimeDone/report around each invocation", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, {
    command: chatty,
    extensionsDir: extensionsDir(t, ["recorder"]),
    env: { RECORD_FILE: record.path, TELEMETRY_TYPES: "platform,function", BUFFERING: '{"timeoutMs":25}' },
  });
  const results = [await emulator.invoke({ lines: 3, tag: "a" }), await emulator.invoke({ lines: 2, tag: "b" })];
  await emulator.close();
  const events = record.read().flatMap((entry) => (entry.kind === "batch" ? (entry.events as TelemetryEvent[]) : []));
  // What this test is about is delivery (once, in order), not the console's format: a Lambda-style prefix
  // (`time<TAB>request id<TAB>INFO<TAB>`) is set aside.
  const lines = events.filter((event) => event.type === "function").map((event) => String(event.record).replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z\t\S+\tINFO\t/, ""));
  const expected = ["chatty init", ...results.flatMap((result, n) => Array.from({ length: 3 - n }, (_, i) => `${"ab"[n]} ${result.requestId} ${i}`))];
  assert.deepEqual(lines, expected);
  const platform = events.filter((event) => event.type.startsWith("platform.")).map((event) => `${event.type} ${(event.record as { requestId?: string }).requestId ?? ""}`.trim());
  const [a, b] = results.map((result) => result.requestId);
  assert.deepEqual(platform, [
    "platform.initStart",
    "platform.telemetrySubscription",
    "platform.extension",
    "platform.initRuntimeDone",
    "platform.initReport",
    `platform.start ${a}`,
    `platform.runtimeDone ${a}`,
    `platform.report ${a}`,
    `platform.start ${b}`,
    `platform.runtimeDone ${b}`,
    `platform.report ${b}`,
  ]);
  const report = events.find((event) => event.type === "platform.report")!.record as { status: string; metrics: Record<string, number> };
  assert.equal(report.status, "success");
  assert.equal(report.metrics.memorySizeMB, 128);
  assert.ok(report.metrics.initDurationMs! > 0 && report.metrics.billedDurationMs >= report.metrics.durationMs);
  for (const event of events) assert.ok(!Number.isNaN(Date.parse(event.time)), event.time);
});

test("emulator: batches hold at most maxItems events, and what is left is delivered before SHUTDOWN", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, {
    command: chatty,
    extensionsDir: extensionsDir(t, ["recorder"]),
    env: { RECORD_FILE: record.path, TELEMETRY_TYPES: "function", BUFFERING: '{"maxItems":1000,"timeoutMs":30000}' },
  });
  await emulator.invoke({ lines: 2500 });
  await emulator.close();
  const entries = record.read();
  const sizes = entries.filter((entry) => entry.kind === "batch").map((entry) => entry.events.length);
  assert.deepEqual(sizes, [1000, 1000, 501]);
  const shutdown = entries.findIndex((entry) => entry.kind === "event" && entry.event.eventType === "SHUTDOWN");
  assert.equal(shutdown, entries.length - 1, "the last batch came before SHUTDOWN");
});

test("emulator: batches stay under maxBytes", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, {
    command: chatty,
    extensionsDir: extensionsDir(t, ["recorder"]),
    env: { RECORD_FILE: record.path, TELEMETRY_TYPES: "function", BUFFERING: '{"maxItems":10000,"maxBytes":262144,"timeoutMs":30000}' },
  });
  await emulator.invoke({ lines: 300, size: 2000 });
  await emulator.close();
  const batches = record.read().filter((entry) => entry.kind === "batch");
  assert.ok(batches.length >= 3, `${batches.length} batches`);
  for (const batch of batches) assert.ok(Buffer.byteLength(JSON.stringify(batch.events)) <= 262144 + 2 + batch.events.length, "a batch over maxBytes");
  assert.equal(batches.reduce((sum, batch) => sum + batch.events.length, 0), 301);
});

test("emulator: a Logs API subscriber gets the Logs API's records (platform.start, platform.end, platform.report)", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, {
    command: chatty,
    extensionsDir: extensionsDir(t, ["recorder"]),
    env: { RECORD_FILE: record.path, TELEMETRY_TYPES: "platform,function", TELEMETRY_API: "logs", BUFFERING: '{"timeoutMs":25}' },
  });
  const { requestId } = await emulator.invoke({ lines: 1 });
  await emulator.close();
  const events = record.read().flatMap((entry) => (entry.kind === "batch" ? (entry.events as TelemetryEvent[]) : []));
  assert.deepEqual(
    events.filter((event) => event.type !== "function").map((event) => event.type),
    ["platform.logsSubscription", "platform.extension", "platform.start", "platform.runtimeDone", "platform.end", "platform.report"],
  );
  assert.deepEqual(events.find((event) => event.type === "platform.start")!.record, { requestId, version: "$LATEST" });
});

// The emulator's Extensions and Telemetry API answers, straight against one sandbox's Extensions object.
async function extensionsServer(t: TestContext, concurrency = 1): Promise<{ extensions: Extensions; call(method: string, path: string, headers?: Record<string, string>, body?: unknown): Promise<{ status: number; headers: Headers; json: any }> }> {
  const fatal: unknown[] = [];
  const extensions = new Extensions({ env: {}, functionName: "fn", functionVersion: "$LATEST", handler: "bootstrap", concurrency, line: () => {}, onFatal: (error) => fatal.push(error) });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!extensions.route(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return Promise.all([extensions.kill(), new Promise((resolve) => server.close(resolve))]);
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    extensions,
    async call(method, path, headers = {}, body) {
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
    },
  };
}

test("emulator Extensions API: registration answers and refusals", async (t) => {
  const { call, extensions } = await extensionsServer(t);
  assert.equal((await call("POST", "/2020-01-01/extension/register", {}, { events: [] })).json.errorType, "Extension.InvalidExtensionName");
  assert.equal((await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "x" }, "nope")).json.errorType, "InvalidRequestFormat");
  const bad = await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "x" }, { events: ["INVOKE", "LUNCH"] });
  assert.deepEqual([bad.status, bad.json.errorType], [403, "Extension.InvalidEventType"]);
  const internal = await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "internal" }, { events: ["INVOKE"] });
  assert.equal(internal.status, 200);
  assert.deepEqual(internal.json, { functionName: "fn", functionVersion: "$LATEST", handler: "bootstrap" });
  const id = internal.headers.get("lambda-extension-identifier")!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(extensions.waitForInvoke, true);
  assert.deepEqual(extensions.count, { external: 0, internal: 1 });
  assert.equal((await call("GET", "/2020-01-01/extension/event/next")).json.errorType, "Extension.MissingExtensionIdentifier");
  assert.equal((await call("GET", "/2020-01-01/extension/event/next", { "lambda-extension-identifier": "nobody" })).json.errorType, "Extension.UnknownExtensionIdentifier");
  assert.equal((await call("POST", "/2020-01-01/extension/init/error", { "lambda-extension-identifier": id }, {})).json.errorType, "Extension.MissingHeader");
  assert.equal(extensions.closeRegistration(), false, "the internal extension has not asked for an event yet");
  assert.match(extensions.pending(), /internal \(never asked for its first event\)/);
  const late = await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "later" }, { events: ["INVOKE"] });
  assert.deepEqual([late.status, late.json.errorType], [403, "Extension.RegistrationClosed"]);
});

test("emulator Extensions API: INVOKE cannot be subscribed with concurrency above 1", async (t) => {
  const { call } = await extensionsServer(t, 4);
  const refused = await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "x" }, { events: ["INVOKE"] });
  assert.match(refused.json.errorMessage, /concurrency 1/);
});

test("emulator Telemetry API: subscriptions are validated as Lambda does, and refused after init", async (t) => {
  const { call, extensions } = await extensionsServer(t);
  const registered = await call("POST", "/2020-01-01/extension/register", { "lambda-extension-name": "internal" }, { events: [] });
  const id = { "lambda-extension-identifier": registered.headers.get("lambda-extension-identifier")! };
  const good = { schemaVersion: "2022-12-13", types: ["function"], destination: { protocol: "HTTP", URI: "http://sandbox.localdomain:4243/" } };
  const refusal = async (body: unknown) => {
    const answer = await call("PUT", "/2022-07-01/telemetry", id, body);
    assert.equal(answer.status, 400, JSON.stringify(answer.json));
    return answer.json.errorMessage as string;
  };
  assert.match(await refusal("{"), /not JSON/);
  assert.match(await refusal({ ...good, schemaVersion: "2021-03-18" }), /schemaVersion must be one of/);
  assert.match(await refusal({ ...good, types: ["logs"] }), /types must be a non-empty array/);
  assert.match(await refusal({ ...good, buffering: { maxItems: 10 } }), /buffering.maxItems must be an integer from 1000 to 10000, got 10/);
  assert.match(await refusal({ ...good, destination: { protocol: "TCP", URI: "tcp://sandbox.localdomain:4243" } }), /must be HTTP/);
  assert.match(await refusal({ ...good, destination: { protocol: "HTTP", URI: "http://localhost:4243/" } }), /must be http:\/\/sandbox.localdomain:PORT/);
  assert.match(await refusal({ ...good, destination: { protocol: "HTTP", URI: "not a uri" } }), /not a URI/);
  assert.equal((await call("PUT", "/2022-07-01/telemetry", id, good)).status, 200);
  assert.equal((await call("PUT", "/2020-08-15/logs", id, { ...good, schemaVersion: "2021-03-18" })).status, 200);
  extensions.initDone(1);
  const closed = await call("PUT", "/2022-07-01/telemetry", id, good);
  assert.deepEqual([closed.status, closed.json.errorType], [403, "Telemetry.SubscriptionClosed"]);
  assert.equal((await call("PUT", "/2020-08-15/logs", id, good)).json.errorType, "Logs.SubscriptionClosed");
});

/** A POST to the listener that sends `sent` bytes of a body announced by `framing`, then waits for the answer without finishing. */
function partialPost(port: number, framing: string[], sent: Buffer): Promise<{ status: number; body: string; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", headers: ["Host", `127.0.0.1:${port}`, "Content-Type", "application/json", ...framing] });
    req.on("error", reject);
    req.on("response", async (res) => {
      let body = "";
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode!, body, destroy: () => req.destroy() });
    });
    req.write(sent);
  });
}

test("hostile senders: an oversized batch gets 413 before it is all sent (nothing past the limit is held); a sender hanging up midway, a callback's unreadable throw; the listener goes on", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const batches: TelemetryEvent[][] = [];
  const listener = await subscribeTelemetry(
    { id: "ext-1", address: api.address },
    {
      onEvents: (events) => {
        if (events[0]?.record === "unreadable") throw { toString: () => { throw new Error("no"); } };
        batches.push(events);
      },
    },
  );
  t.after(() => listener.close());
  const printed: string[] = [];
  const original = console.error;
  console.error = (line: string) => void printed.push(line);
  t.after(() => (console.error = original));
  const nineMiB = Buffer.alloc(9 * 1024 * 1024, 0x20);
  // Announced as 1 GiB or chunked, 9 MiB sent: a listener that read to the end first would never answer.
  for (const framing of [["Content-Length", String(1024 ** 3)], ["Transfer-Encoding", "chunked"]]) {
    const answer = await partialPost(listener.port, framing, nineMiB);
    answer.destroy();
    assert.equal(answer.status, 413, `${framing[0]}: ${answer.body}`);
    assert.deepEqual(JSON.parse(answer.body), { errorType: "BatchTooLarge", errorMessage: "a batch larger than 8388608 bytes (Lambda's are at most 1 MiB)" });
  }
  // Hangs up halfway through a batch.
  const half = request({ host: "127.0.0.1", port: listener.port, method: "POST", path: "/", headers: { "content-length": "1000" } });
  half.on("error", () => {});
  half.write('[{"time":"t","type":"function","record":"half');
  await new Promise((resolve) => setTimeout(resolve, 30));
  half.destroy();
  const unreadable = await post(listener.port, JSON.stringify([{ time: "t", type: "function", record: "unreadable" }]));
  assert.deepEqual([unreadable.status, JSON.parse(unreadable.body)], [500, { errorType: "CallbackFailed", errorMessage: "a thrown value that cannot be read" }]);
  const good = [{ time: "t", type: "function", record: "still here" }];
  assert.equal((await post(listener.port, JSON.stringify(good))).status, 200);
  assert.deepEqual(batches, [good], "the half batch was never delivered");
  assert.deepEqual(printed.slice(0, 2), Array(2).fill("micro-lambda telemetry: refused a batch larger than 8388608 bytes (Lambda's are at most 1 MiB) (413)"));
});

test("a failure nothing else handles (here: stderr itself throws) is a 500 for that request, and the listener goes on", async (t) => {
  const api = await fakeRuntimeApi(t, () => ({ status: 200, body: '"OK"' }));
  const listener = await subscribeTelemetry({ id: "ext-1", address: api.address }, { onEvents: () => {} });
  t.after(() => listener.close());
  const original = console.error;
  console.error = () => {
    throw new Error("stderr is closed");
  };
  t.after(() => (console.error = original));
  const broken = await post(listener.port, "not a batch");
  assert.equal(broken.status, 500);
  assert.deepEqual(JSON.parse(broken.body), { errorType: "ListenerFailed", errorMessage: "POST /: the telemetry listener failed: stderr is closed" });
  console.error = original;
  assert.equal((await post(listener.port, '[{"time":"t","type":"function","record":"ok"}]')).status, 200);
});
