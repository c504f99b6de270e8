// Lambda Managed Instances: several invocations in one process, each with its own context and trace id, under tsx and in the built bootstrap.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test, type TestContext } from "node:test";
import type { InvokeResult } from "../src/emulator/index.ts";
import { bootstrap, command } from "./bootstraps.ts";
import { startEmulator, tsxCommand } from "./helpers.ts";

const fixture = "test/fixtures/concurrency/main.ts";
const sentinel = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0";

interface Seen {
  requestId: string;
  traceId: string | null;
  traceEnv: string | null;
  storeRequestId: string | null;
}
interface Report {
  before: Seen;
  after: Seen;
  mostAtOnce: number;
  own: string | null;
  refused: string | null;
}

const trace = (n: number) => `Root=1-6a1b2c3d-${String(n).padStart(24, "0")};Parent=${String(n).padStart(16, "0")};Sampled=1`;

/** A fake S3 on loopback that answers every GET and records the X-Amzn-Trace-Id of each, by object key (the request id). */
async function fakeS3(t: TestContext): Promise<{ endpoint: string; traceIds: Map<string, string | undefined> }> {
  const traceIds = new Map<string, string | undefined>();
  const server = createServer((req, res) => {
    traceIds.set(decodeURIComponent(req.url!.split("?")[0]!.split("/").pop()!), req.headers["x-amzn-trace-id"] as string | undefined);
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" }).end("object");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, traceIds };
}

function suite(label: string, commandFor: () => Promise<string[]>): void {
  describe(`Managed Instances concurrency (${label})`, () => {
    test("four interleaved invocations each see their own context, trace id and InvokeStore values, and _X_AMZN_TRACE_ID is left alone", async (t) => {
      const emulator = await startEmulator(t, { command: await commandFor(), concurrency: 4, initTimeoutMs: 60_000, env: { _X_AMZN_TRACE_ID: sentinel } });
      // Different pauses: they resume in another order than they started. The third has no trace id.
      const pauses = [40, 10, 30, 20];
      const sent = [trace(1), trace(2), null, trace(4)];
      const outs = await Promise.all(pauses.map((pauseMs, i) => emulator.invoke({ overlap: 4, pauseMs }, { traceId: sent[i] })));
      outs.forEach((out, i) => {
        assert.equal(out.ok, true, JSON.stringify(out.error));
        const report = out.result as Report;
        assert.equal(report.mostAtOnce, 4, "four invocations ran at once");
        for (const seen of [report.before, report.after]) {
          assert.deepEqual(seen, { requestId: out.requestId, traceId: sent[i], traceEnv: sentinel, storeRequestId: out.requestId });
        }
        assert.equal(report.own, out.requestId, "a value the function stored in the InvokeStore is its invocation's own");
        assert.equal(report.refused, "Symbol(_AWS_LAMBDA_REQUEST_ID) is the runtime's and cannot be changed");
      });
    });

    test("an error in one invocation does not affect the others running with it", async (t) => {
      const emulator = await startEmulator(t, { command: await commandFor(), concurrency: 4, initTimeoutMs: 60_000 });
      const outs = await Promise.all([0, 1, 2, 3].map((i) => emulator.invoke({ overlap: 4, pauseMs: 10 * i, fail: i === 1 }, { traceId: trace(i) })));
      const [failed] = outs.splice(1, 1) as [InvokeResult];
      assert.equal(failed.ok, false);
      assert.equal(failed.error?.errorType, "Error");
      assert.equal(failed.error?.errorMessage, `failed on purpose in ${failed.requestId}`);
      for (const [i, out] of outs.entries()) {
        assert.equal(out.ok, true, JSON.stringify(out.error));
        assert.equal((out.result as Report).after.requestId, out.requestId);
        assert.equal((out.result as Report).after.traceId, trace(i === 0 ? 0 : i + 1));
      }
      const again = await emulator.invoke({ overlap: 1, pauseMs: 0 });
      assert.equal(again.ok, true, "the sandbox goes on");
      assert.equal(again.initDurationMs, undefined, "in the same process");
    });

    for (const atInit of [false, true]) {
      const when = atInit ? ", also when an SDK call during init made the SDK publish its own store first" : "";
      test(`the AWS SDK v3 sends each invocation's own trace id (X-Amzn-Trace-Id) when four run at once${when}`, async (t) => {
        const s3 = await fakeS3(t);
        const env: Record<string, string> = atInit ? { TEST_S3_AT_INIT: s3.endpoint } : {};
        const emulator = await startEmulator(t, { command: await commandFor(), concurrency: 4, initTimeoutMs: 60_000, env });
        const outs = await Promise.all([0, 1, 2, 3].map((i) => emulator.invoke({ overlap: 4, pauseMs: 30 - 10 * i, s3Endpoint: s3.endpoint }, { traceId: trace(i) })));
        for (const [i, out] of outs.entries()) {
          assert.equal(out.ok, true, JSON.stringify(out.error));
          assert.equal(s3.traceIds.get(out.requestId), trace(i));
          assert.equal((out.result as Report).after.traceId, trace(i), "traceId() reads the same store");
        }
        assert.equal(s3.traceIds.has("init"), atInit);
      });
    }

    test("one invocation at a time: traceId() is _X_AMZN_TRACE_ID, set for each invocation and unset when it has none", async (t) => {
      const s3 = await fakeS3(t);
      const emulator = await startEmulator(t, { command: await commandFor(), initTimeoutMs: 60_000 });
      for (const sent of [trace(7), null, trace(8)]) {
        const out = await emulator.invoke({ overlap: 1, pauseMs: 0, s3Endpoint: s3.endpoint }, { traceId: sent });
        assert.equal(out.ok, true, JSON.stringify(out.error));
        const report = out.result as Report;
        assert.deepEqual(report.after, { requestId: out.requestId, traceId: sent, traceEnv: sent, storeRequestId: report.after.storeRequestId });
        assert.equal(s3.traceIds.get(out.requestId), sent ?? undefined);
      }
    });
  });
}

suite("tsx", async () => tsxCommand(fixture));
suite("x86_64 bootstrap", async () => command(await bootstrap(fixture, "x86_64", ["--name", "fixture-concurrency"]), "x86_64"));

test("an AWS_LAMBDA_MAX_CONCURRENCY that is not a whole number of at least 1 means one loop", async (t) => {
  for (const value of ["-2", "0", "abc"]) {
    const emulator = await startEmulator(t, { command: tsxCommand(fixture), env: { AWS_LAMBDA_MAX_CONCURRENCY: value } });
    const out = await emulator.invoke({ overlap: 1, pauseMs: 0 });
    assert.equal(out.ok, true, `${value}: ${JSON.stringify(out.error)}`);
  }
});

test("lambda(handler, { concurrency: 0 }) fails init, saying what it needs", async (t) => {
  const emulator = await startEmulator(t, { command: tsxCommand(fixture), env: { TEST_CONCURRENCY_OPTION: "0" } });
  const out = await emulator.invoke({ overlap: 1, pauseMs: 0 });
  assert.equal(out.ok, false);
  assert.equal(out.error?.errorType, "TypeError");
  assert.equal(out.error?.errorMessage, "lambda(handler, { concurrency }) needs a whole number of at least 1, got 0");
});
