// The bench's own machinery, checked without timing anything: its fast fake Runtime API against a real function
// and against hand-written requests, and the runner's refusal of a section that does not exist.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import test from "node:test";
import { startFakeRuntimeApi } from "./bench/lib/fake-runtime-api.ts";
import { lambdaEnv } from "./bench/lib/processes.ts";
import { root, tsx, tsxCommand } from "./helpers.ts";

test("bench fake Runtime API: serves N events to a real function, times every answer, holds the /next after the last", async (t) => {
  const fake = await startFakeRuntimeApi({ invocations: 50, holdFirst: true });
  t.after(() => fake.close());
  const [command, ...args] = tsxCommand("examples/hello/main.ts");
  const child = spawn(command, args, { env: lambdaEnv(fake.address), stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  await fake.firstNext;
  assert.equal(fake.overheadMs[0], 0, "the first event waits for release()");
  fake.release();
  await fake.done;
  assert.equal(fake.errors, 0);
  assert.deepEqual(fake.initErrors, []);
  assert.ok(fake.overheadMs.every((ms) => ms > 0), "every one of the 50 events was answered");
  assert.ok(fake.turnaroundMs.slice(0, 49).every((ms) => ms > 0), "each answer was followed by a /next");
  assert.equal(child.exitCode, null, "the runtime waits on its held /next");
});

test("bench fake Runtime API: chunked bodies with trailers, Expect: 100-continue, an unknown path", async (t) => {
  const fake = await startFakeRuntimeApi({ invocations: 0 });
  t.after(() => fake.close());
  const [host, port] = fake.address.split(":");
  const socket = connect(Number(port), host);
  t.after(() => socket.destroy());
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  const waitFor = async (what: string, count = 1) => {
    for (let i = 0; i < 200 && text.split(what).length - 1 < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(text.split(what).length - 1, count, `waiting for ${JSON.stringify(what)} in ${JSON.stringify(text)}`);
  };
  await new Promise((resolve) => socket.once("connect", resolve));

  // A chunked init error, split across writes, with a trailer.
  socket.write("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"err");
  socket.write("\r\n3\r\nor\"\r\n");
  socket.write("3\r\n:1}\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.X\r\n\r\n");
  await waitFor("HTTP/1.1 202");
  assert.deepEqual(fake.initErrors, ['{"error":1}']);

  // Expect: 100-continue: the body follows only once the server says so.
  socket.write("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  await waitFor("HTTP/1.1 100 Continue");
  socket.write("null");
  await waitFor("HTTP/1.1 202", 2);
  assert.deepEqual(fake.initErrors, ['{"error":1}', "null"]);

  socket.write("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor("HTTP/1.1 404");
});

test("npm run bench -- NAME: an unknown section is refused with the list of sections, exit 2", async () => {
  const child = spawn(tsx, ["test/bench/run.ts", "no-such-section"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 2);
  assert.match(stderr, /no section no-such-section\. Sections: .*cold-start.*warm/);
});
