// Response streaming: the suite under tsx and in the built bootstraps (arm64 under qemu: the basics), and the emulator's own limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bootstrap, command } from "./bootstraps.ts";
import { startEmulator, tsxCommand } from "./helpers.ts";
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
