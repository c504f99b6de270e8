// Response streaming, written once and run against every way the function can be started: tsx, and the built bootstraps.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Emulator, type InvokeOptions, type InvokeResult } from "../src/emulator/index.ts";

export const streamingFixture = "test/fixtures/streaming/main.ts";
const MiB = 1024 * 1024;

export interface SuiteOptions {
  /** Also run the tests that stream hundreds of MB (too slow under qemu). */
  large: boolean;
}

/** The error trailers' body: base64 JSON. */
function decodeErrorBody(value: string | undefined): unknown {
  return JSON.parse(Buffer.from(value ?? "", "base64").toString("utf8"));
}

/** One request to the emulator's Invoke API; `onFirstData` runs when the first body bytes arrive, before the rest is read. */
function invokeOverHttp(
  emulator: Emulator,
  event: unknown,
  onFirstData?: () => void,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; chunks: string[]; trailers: Record<string, string | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${emulator.url}/2015-03-31/functions/function/invocations`, { method: "POST" }, (res) => {
      const chunks: string[] = [];
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        chunks.push(text);
        if (chunks.length === 1) onFirstData?.();
      });
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, chunks, trailers: res.trailers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(JSON.stringify(event));
  });
}

function rssMiB(pid: string): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
}

export function streamingSuite(label: string, commandFor: () => Promise<string[]>, options: SuiteOptions): void {
  describe(`response streaming (${label})`, () => {
    let emulator: Emulator;
    const scratch = mkdtempSync(join(tmpdir(), "micro-lambda-streaming-"));
    let gates = 0;
    before(async () => {
      // --expose-gc: the backpressure test collects garbage as it goes, to measure what is held.
      emulator = await Emulator.start({ command: await commandFor(), timeoutMs: 120_000, initTimeoutMs: 60_000, env: { NODE_OPTIONS: "--expose-gc" } });
    });
    after(() => emulator.close());

    const invoke = (event: unknown, invokeOptions?: InvokeOptions): Promise<InvokeResult> => emulator.invoke(event, invokeOptions);

    test("chunks reach the caller in order, as they are written: the first before the handler has finished", async () => {
      // The handler writes its second chunk only once this file exists, and it is created when the first chunk
      // arrives: were chunks held until the handler finished, this invocation would never end.
      const gate = join(scratch, `gate-${gates++}`);
      const chunks: string[] = [];
      let seenAtGate: string[] = [];
      const heads: unknown[] = [];
      const out = await invoke(
        { action: "gated", gate },
        {
          onHead: (head) => heads.push(head),
          onChunk: (chunk) => {
            chunks.push(chunk.toString());
            if (chunks.length === 1) {
              seenAtGate = [...chunks];
              writeFileSync(gate, "");
            }
          },
        },
      );
      assert.equal(out.ok, true, JSON.stringify(out.error));
      assert.equal(out.streamed, true);
      assert.deepEqual(seenAtGate, [`first ${out.requestId};`]);
      assert.equal(chunks.join(""), `first ${out.requestId};second;third`);
      assert.deepEqual(heads, [{ contentType: "application/octet-stream" }]);
      assert.equal(out.payload.length, 0, "with onChunk, the chunks are handed over, not collected");
      // What went over the wire to the Runtime API.
      const sent = out.answerHeaders!;
      assert.equal(sent["lambda-runtime-function-response-mode"], "streaming");
      assert.equal(sent["transfer-encoding"], "chunked");
      assert.deepEqual(
        String(sent.trailer)
          .split(",")
          .map((name) => name.trim().toLowerCase()),
        ["lambda-runtime-function-error-type", "lambda-runtime-function-error-body"],
      );
      assert.equal(sent["content-type"], "application/octet-stream");
    });

    test("without onChunk, invoke() collects the streamed response", async () => {
      const gate = join(scratch, `gate-${gates++}`);
      writeFileSync(gate, "");
      const out = await invoke({ action: "gated", gate });
      assert.equal(out.ok, true);
      assert.equal(out.payload.toString(), `first ${out.requestId};second;third`);
    });

    test("HttpResponseStream.from: the prelude (status, headers, cookies) is parsed and is not part of the body", async () => {
      const out = await invoke({ action: "prelude" });
      assert.equal(out.ok, true, JSON.stringify(out.error));
      assert.deepEqual(out.head, {
        contentType: "application/vnd.awslambda.http-integration-response",
        prelude: { statusCode: 418, headers: { "Content-Type": "text/plain", "X-Brewed-By": "micro-lambda" }, cookies: ["a=1", "b=2; Secure"] },
      });
      assert.equal(out.payload.toString(), "I'm a teapot");
    });

    test("the Invoke API passes a streamed response on as a function URL does: the prelude's status, headers and cookies, then the body", async () => {
      const reply = await invokeOverHttp(emulator, { action: "prelude" });
      assert.equal(reply.status, 418);
      assert.equal(reply.headers["content-type"], "text/plain");
      assert.equal(reply.headers["x-brewed-by"], "micro-lambda");
      assert.deepEqual(reply.headers["set-cookie"], ["a=1", "b=2; Secure"]);
      assert.equal(reply.chunks.join(""), "I'm a teapot");
      assert.deepEqual(reply.trailers, {});
    });

    test("the Invoke API sends each chunk to the HTTP caller as it arrives", async () => {
      const gate = join(scratch, `gate-${gates++}`);
      let firstData = "";
      const reply = await invokeOverHttp(emulator, { action: "gated", gate }, () => writeFileSync(gate, ""));
      firstData = reply.chunks[0]!;
      assert.equal(reply.status, 200);
      assert.match(firstData, /^first [0-9a-f-]+;$/);
      assert.match(reply.chunks.join(""), /^first [0-9a-f-]+;second;third$/);
    });

    test("setContentType() sets the response's Content-Type; after the first write it throws and says why", async () => {
      const csv = await invoke({ action: "content-type" });
      assert.equal(csv.head?.contentType, "text/csv");
      assert.equal(csv.payload.toString(), "a,b\n1,2\n");
      const late = await invoke({ action: "late-content-type" });
      assert.equal(late.ok, true);
      assert.equal(late.payload.toString(), "x;setContentType() must be called before the first write: the response's headers have been sent");
    });

    test("a failure after the first byte: the caller has the bytes, and the error from the trailers", async () => {
      const out = await invoke({ action: "fail-mid" });
      assert.equal(out.ok, false);
      assert.equal(out.streamed, true);
      assert.equal(out.payload.toString(), "partial;");
      assert.equal(out.errorTypeHeader, "RangeError");
      assert.equal(out.error?.errorType, "RangeError");
      assert.equal(out.error?.errorMessage, "failed after the first byte");
      assert.match((out.error as { trace?: string[] } | undefined)?.trace?.[0] ?? "", /^RangeError: failed after the first byte/);
      assert.match(out.logs, /ERROR\tInvoke Error \t.*failed after the first byte/);
    });

    test("a failure after the first byte, through the Invoke API: the body so far, then the error in the HTTP trailers", async () => {
      const reply = await invokeOverHttp(emulator, { action: "fail-mid" });
      assert.equal(reply.status, 200);
      assert.equal(reply.chunks.join(""), "partial;");
      assert.equal(reply.trailers["x-amz-function-error"], "Unhandled");
      assert.equal(reply.trailers["lambda-runtime-function-error-type"], "RangeError");
      assert.deepEqual((decodeErrorBody(reply.trailers["lambda-runtime-function-error-body"]) as { errorMessage: string }).errorMessage, "failed after the first byte");
    });

    test("a failure before any byte is written is an ordinary /error", async () => {
      const out = await invoke({ action: "fail-before" });
      assert.equal(out.ok, false);
      assert.equal(out.streamed, undefined);
      assert.equal(out.error?.errorType, "RangeError");
      assert.equal(out.error?.errorMessage, "failed before writing anything");
      assert.equal(out.answerHeaders?.["lambda-runtime-function-response-mode"], undefined);
      const reply = await invokeOverHttp(emulator, { action: "fail-before" });
      assert.equal(reply.headers["x-amz-function-error"], "Unhandled");
      assert.equal((JSON.parse(reply.chunks.join("")) as { errorType: string }).errorType, "RangeError");
    });

    test("stream.destroy(error) fails the invocation with that error, in the trailers", async () => {
      const out = await invoke({ action: "destroy" });
      assert.equal(out.ok, false);
      assert.equal(out.payload.toString(), "partial;");
      assert.equal(out.error?.errorType, "Error");
      assert.equal(out.error?.errorMessage, "destroyed by the handler");
    });

    test("an uncaught exception mid-stream ends the stream with the error in its trailers, then the runtime exits", async () => {
      const out = await invoke({ action: "crash-mid" });
      assert.equal(out.ok, false);
      assert.equal(out.payload.toString(), "partial;");
      assert.equal(out.errorTypeHeader, "Error");
      assert.equal(out.error?.errorMessage, "uncaught while streaming");
      assert.match(out.logs, /\tERROR\tUncaught Exception \t\{"errorType":"Error","errorMessage":"uncaught while streaming"/);
      const next = await invoke({ action: "empty" });
      assert.equal(next.ok, true, "the next invocation gets a new sandbox");
      assert.notEqual(next.initDurationMs, undefined);
    });

    test("a handler that returns without calling end() still completes its response", async () => {
      const out = await invoke({ action: "no-end" });
      assert.equal(out.ok, true, JSON.stringify(out.error));
      assert.equal(out.payload.toString(), "written, never ended");
    });

    test("a handler that writes nothing sends an empty streamed response", async () => {
      const out = await invoke({ action: "empty" });
      assert.equal(out.ok, true, JSON.stringify(out.error));
      assert.equal(out.streamed, true);
      assert.equal(out.payload.length, 0);
      assert.deepEqual(out.head, { contentType: "application/octet-stream" });
    });

    if (!options.large) return;

    test("backpressure: a caller reading slowly keeps the runtime's memory bounded (150 MiB streamed)", async () => {
      const pidFile = join(scratch, "pid");
      await invoke({ action: "large", mib: 1, pidFile }, { onChunk: () => {} });
      const pid = readFileSync(pidFile, "utf8");
      /** Streams `mib` MiB with `action`, reading slowly: a pause after the first chunk (time enough for a producer that ignores backpressure to write everything), then one every 16 MiB. */
      const stream = async (action: string, mib: number) => {
        const before = rssMiB(pid);
        let peak = before;
        let received = 0;
        let nextPause = 0;
        const out = await invoke(
          { action, mib, pidFile },
          {
            onChunk: async (chunk) => {
              peak = Math.max(peak, rssMiB(pid));
              if (received === 0) await new Promise((resolve) => setTimeout(resolve, 500));
              received += chunk.length;
              if (received >= nextPause) {
                nextPause += 16 * MiB;
                await new Promise((resolve) => setTimeout(resolve, 50));
              }
            },
          },
        );
        return { out, received, growth: peak - before };
      };
      const mib = 150;
      const honoured = await stream("large", mib);
      assert.equal(honoured.out.ok, true, JSON.stringify(honoured.out.error));
      assert.equal(honoured.received, mib * MiB);
      const { waits, gc } = JSON.parse(readFileSync(`${pidFile}.waits`, "utf8")) as { waits: number; gc: boolean };
      assert.ok(waits > 0, "write() returned false while the caller was slow");
      assert.equal(gc, true, "the function runs with --expose-gc, so RSS shows what is held, not uncollected garbage");
      assert.ok(honoured.growth < mib / 2, `the runtime's RSS grew by ${honoured.growth.toFixed(1)} MiB while streaming ${mib} MiB`);
      // The control: the same bytes from a handler that ignores write()'s false are held in the runtime, and the probe sees it.
      const ignored = await stream("large-nobp", mib);
      assert.equal(ignored.received, mib * MiB);
      assert.ok(ignored.growth > mib / 2, `ignoring backpressure, the RSS grew by only ${ignored.growth.toFixed(1)} MiB: the probe cannot see buffering`);
    });

    test("the 200 MB limit: the write that would cross it fails with Function.ResponseSizeTooLarge, and the caller gets exactly 200 MiB and that error", async () => {
      for (const action of ["cap", "cap-ignored"]) {
        let received = 0;
        const out = await invoke({ action, mib: 200 }, { onChunk: (chunk) => void (received += chunk.length) });
        assert.equal(out.ok, false, action);
        assert.equal(received, 200 * MiB, action);
        assert.equal(out.error?.errorType, "Function.ResponseSizeTooLarge", action);
        assert.equal(
          out.error?.errorMessage,
          "the streamed response is larger than Lambda's limit of 209715200 bytes (200 MB): 209715200 bytes were sent, a write of 1 more was refused",
          action,
        );
        assert.equal(out.errorTypeHeader, "Function.ResponseSizeTooLarge", action);
      }
    });
  });
}
