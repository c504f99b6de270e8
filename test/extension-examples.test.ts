// The extension examples, built with build.sh into bootstraps and run end to end in the emulator (x86_64; the sidecar on arm64 under qemu too).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { build, command, type Arch } from "./bootstraps.ts";
import { extensionsFolder, logOutput } from "./extension-helpers.ts";
import type { InvokeResult } from "../src/emulator/index.ts";
import { startEmulator } from "./helpers.ts";

interface FakeFirehose {
  url: string;
  /** Records accepted, decoded, in arrival order. */
  accepted: string[];
  /** PutRecordBatch calls, and how many of their records were failed on purpose. */
  calls: { stream: string; records: number; failed: number }[];
}

/**
 * A Kinesis Data Firehose endpoint speaking PutRecordBatch (AWS JSON 1.1) as the SDK expects. The first time it
 * sees a record whose position in its call is a multiple of `failEvery`, it refuses that record
 * (ServiceUnavailableException), as Firehose does under load: the sender must send it again.
 */
async function fakeFirehose(t: TestContext, failEvery = 0): Promise<FakeFirehose> {
  const fake: FakeFirehose = { url: "", accepted: [], calls: [] };
  const refused = new Set<string>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.headers["x-amz-target"] !== "Firehose_20150804.PutRecordBatch") {
      return void res.writeHead(400, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify({ __type: "UnknownOperationException" }));
    }
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { DeliveryStreamName: string; Records: { Data: string }[] };
    let failed = 0;
    const responses = body.Records.map(({ Data }, index) => {
      const data = Buffer.from(Data, "base64").toString();
      if (failEvery > 0 && index % failEvery === 0 && !refused.has(data)) {
        refused.add(data);
        failed++;
        return { ErrorCode: "ServiceUnavailableException", ErrorMessage: "Slow down." };
      }
      fake.accepted.push(data);
      return { RecordId: `record-${fake.accepted.length}` };
    });
    fake.calls.push({ stream: body.DeliveryStreamName, records: body.Records.length, failed });
    res.writeHead(200, { "content-type": "application/x-amz-json-1.1" }).end(JSON.stringify({ FailedPutCount: failed, Encrypted: false, RequestResponses: responses }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return fake;
}

const fakeCredentials = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_SESSION_TOKEN: "token" };

test("examples/log-router: every line the function printed reaches Firehose exactly once, records Firehose refused included", async (t) => {
  const [router, chatty] = await Promise.all([build("examples/log-router/main.ts", "x86_64", ["--extension", "--name", "log-router"]), build("test/fixtures/chatty/main.ts", "x86_64")]);
  const firehose = await fakeFirehose(t, 3);
  const emulator = await startEmulator(t, {
    command: [chatty.executable],
    extensionsDir: join(router.dir, "extensions"),
    env: { KINESIS_DELIVERY_STREAM: "function-logs", AWS_ENDPOINT_URL: firehose.url, ...fakeCredentials },
  });
  const results: InvokeResult[] = [];
  for (const [tag, lines] of [["a", 3], ["b", 700], ["c", 5]] as const) results.push(await emulator.invoke({ tag, lines }));
  await emulator.close();
  const printed = ["chatty init", ...results.flatMap((result, n) => Array.from({ length: (result.result as { printed: number }).printed }, (_, i) => `${"abc"[n]} ${result.requestId} ${i}`))];
  // Each line as the managed runtime prints it: timestamp, request id ("-" during init here, as the parity test shows), level, message.
  const lambdaLine = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t([^\t]+)\tINFO\t(.*)$/s;
  const shipped = firehose.accepted.map((data) => {
    const record = JSON.parse(data) as { message: string; requestId?: string; time: string };
    const match = lambdaLine.exec(record.message);
    assert.ok(match, `a line in Lambda's text format: ${JSON.stringify(record.message)}`);
    if (match[2] !== "chatty init") assert.ok(match[2]!.includes(match[1]!), `the line's request id is its invocation's: ${record.message}`);
    return { ...record, message: match[2]! };
  });
  assert.deepEqual(
    shipped.map((record) => record.message).sort(),
    [...printed].sort(),
  );
  assert.equal(new Set(firehose.accepted).size, firehose.accepted.length, "no record twice");
  assert.ok(firehose.calls.some((call) => call.failed > 0), "the fake refused records, so they were sent again");
  assert.ok(firehose.calls.every((call) => call.stream === "function-logs" && call.records <= 500));
  const lastLine = shipped.find((record) => record.message === `c ${results[2]!.requestId} 4`)!;
  assert.equal(lastLine.requestId, results[2]!.requestId, "the last invocation's lines, sent on SHUTDOWN, carry its request id");
});

test("examples/log-router: without KINESIS_DELIVERY_STREAM init fails with a clear error, not a crash", async (t) => {
  const [router, chatty] = await Promise.all([build("examples/log-router/main.ts", "x86_64", ["--extension", "--name", "log-router"]), build("test/fixtures/chatty/main.ts", "x86_64")]);
  const emulator = await startEmulator(t, { command: [chatty.executable], extensionsDir: join(router.dir, "extensions"), env: { KINESIS_DELIVERY_STREAM: undefined } });
  const result = await emulator.invoke({});
  assert.equal(result.error?.errorType, "Extension.InitError");
  assert.equal(
    result.error?.errorMessage,
    "extension log-router failed to init: Extension.ConfigInvalid: KINESIS_DELIVERY_STREAM is not set: set it to the name of the Firehose delivery stream the function's logs should go to",
  );
});

async function sidecar(t: TestContext, arch: Arch): Promise<void> {
  const [extension, fn] = await Promise.all([build("examples/sidecar/extension.ts", arch, ["--extension", "--name", "sidecar"]), build("examples/sidecar/function.ts", arch, ["--name", "sidecar-function"])]);
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-sidecar-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = logOutput();
  const emulator = await startEmulator(t, {
    command: command(fn.executable, arch),
    extensionsDir: extensionsFolder(t, { sidecar: command(extension.executable, arch) }),
    env: { SIDECAR_DIR: dir },
    output: log.stream,
    timeoutMs: 60_000,
    initTimeoutMs: 60_000,
  });
  const first = await emulator.invoke({ payload: { order: 1 } });
  assert.equal(existsSync(join(dir, first.requestId)), true, "the function left its file");
  const skipped = await emulator.invoke({ skip: true });
  // INVOKE of the third processed the first's file; the second left none.
  const partial = await emulator.invoke({ payload: { order: 3 }, partial: true });
  assert.equal(existsSync(join(dir, first.requestId)), false, "processed and removed");
  const last = await emulator.invoke({ payload: { order: 4 } });
  await emulator.close();
  for (const result of [first, skipped, partial, last]) assert.equal(result.ok, true, JSON.stringify(result.error));
  const lines = log.text().split("\n").filter((line) => line.startsWith("sidecar: "));
  assert.deepEqual(lines, [
    `sidecar: ${first.requestId}: processed {"order":1}`,
    `sidecar: ${skipped.requestId}: no file to process (ENOENT)`,
    `sidecar: ${partial.requestId}: the file is partial (12 bytes, not complete JSON): skipped`,
    // The last one, on SHUTDOWN.
    `sidecar: ${last.requestId}: processed {"order":4}`,
  ]);
  assert.deepEqual(readdirSync(dir), [], "every file processed");
  assert.doesNotMatch(log.text(), /Extension\.(Crash|ExitError)/);
}

test("examples/sidecar: each file is processed one invocation later, the last on SHUTDOWN; missing and partial files are logged (x86_64)", (t) => sidecar(t, "x86_64"));

test("examples/sidecar on arm64, under qemu", (t) => sidecar(t, "arm64"));
