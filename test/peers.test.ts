// Real HTTP servers that are not Lambda's: a fake Runtime API written with Python's http.server, which speaks
// HTTP/1.0 and closes every connection unless told otherwise. A function behind it must answer every event.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { bootstrap } from "./bootstraps.ts";
import { root, runToExit, tsxCommand } from "./helpers.ts";

interface Seen {
  method: string;
  path: string;
  body: string;
}

/** Starts test/fixtures/python-runtime-api/server.py; resolves with its address and the requests it prints. */
async function pythonRuntimeApi(t: TestContext, mode: string, events: string[]): Promise<{ address: string; seen: Seen[] }> {
  const child = spawn("python3", [join(root, "test/fixtures/python-runtime-api/server.py"), mode, ...events], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => child.kill());
  const seen: Seen[] = [];
  let pending = "";
  const port = await new Promise<string>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the Python fake Runtime API exited (${code}) before listening`)));
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      pending += text;
      for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (/^\d+$/.test(line)) resolve(line);
        else seen.push(JSON.parse(line) as Seen);
      }
    });
  });
  return { address: `127.0.0.1:${port}`, seen };
}

const modes = ["http10", "close", "keep-alive-close", "silent-close"] as const;
const names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"];

for (const runtime of ["tsx", "x86_64 bootstrap"] as const) {
  test(`a Python http.server Runtime API (${runtime}): every /response arrives, whether the server speaks HTTP/1.0, says Connection: close, or just closes`, async (t) => {
    const command = runtime === "tsx" ? tsxCommand("examples/hello/main.ts") : [await bootstrap("hello", "x86_64")];
    for (const mode of modes) {
      const api = await pythonRuntimeApi(t, mode, names.map((name) => JSON.stringify({ name })));
      const exit = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: api.address, MICRO_LAMBDA_RUNTIME_API: undefined });
      const responses = api.seen.filter((request) => request.method === "POST");
      assert.deepEqual(
        responses.map((request) => [request.path, JSON.parse(request.body)]),
        names.map((name, i) => [`/2018-06-01/runtime/invocation/request-${i}/response`, { message: `Hello, ${name}!`, requestId: `request-${i}` }]),
        `${mode}: ${exit.stderr}`,
      );
      // The runtime stops only at the server's 500 after the last event, and says why.
      assert.equal(exit.code, 1, mode);
      assert.match(exit.stderr, /GET \/2018-06-01\/runtime\/invocation\/next answered 500/, mode);
    }
  });
}
