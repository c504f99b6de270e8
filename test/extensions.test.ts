// Extensions in the emulator: the helper (src/extension/) run under tsx from an extensions folder, against the emulator's Extensions API.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { extensionsDir, logOutput, recordFile } from "./extension-helpers.ts";
import { root, runToExit, startEmulator, tsx, tsxCommand } from "./helpers.ts";

/** Whether a process has ended within a second (a zombie waiting to be reaped counts as ended). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    try {
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"))) return true;
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

const chatty = tsxCommand("test/fixtures/chatty/main.ts");

test("an extension registers with its file name, gets INVOKE for each invocation, and SHUTDOWN when the emulator closes", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["recorder"]), env: { RECORD_FILE: record.path }, functionName: "fn" });
  const first = await emulator.invoke({ lines: 1 });
  const second = await emulator.invoke({ lines: 1 });
  assert.equal(first.ok, true);
  const closing = Date.now();
  await emulator.close();
  const entries = record.read();
  assert.equal(entries[0].kind, "registered");
  assert.equal(entries[0].registration.name, "recorder");
  assert.equal(entries[0].registration.functionName, "fn");
  assert.equal(entries[0].registration.functionVersion, "$LATEST");
  assert.equal(entries[0].registration.accountId, "012345678912");
  const events = entries.filter((entry) => entry.kind === "event").map((entry) => entry.event);
  assert.deepEqual(
    events.map((event) => event.eventType),
    ["INVOKE", "INVOKE", "SHUTDOWN"],
  );
  assert.deepEqual([events[0].requestId, events[1].requestId], [first.requestId, second.requestId]);
  assert.equal(events[0].invokedFunctionArn, "arn:aws:lambda:us-east-1:012345678912:function:fn");
  assert.equal(events[0].tracing.type, "X-Amzn-Trace-Id");
  assert.match(events[0].tracing.value, /^Root=1-/);
  assert.ok(events[0].deadlineMs > Date.now() - 60_000);
  assert.equal(events[2].shutdownReason, "spindown");
  // 2 s with an external extension, as Lambda gives.
  assert.ok(events[2].deadlineMs >= closing + 1500 && events[2].deadlineMs <= closing + 2500, `deadline ${events[2].deadlineMs - closing} ms after close`);
});

test("the first invoke waits for every extension's first event/next, and each invocation for every INVOKE subscriber to ask again", async (t) => {
  const record = recordFile(t);
  const log = logOutput();
  const emulator = await startEmulator(t, {
    command: chatty,
    extensionsDir: extensionsDir(t, ["recorder"]),
    env: { RECORD_FILE: record.path, INIT_DELAY_MS: "700", INVOKE_DELAY_MS: "400" },
    output: log.stream,
  });
  const first = await emulator.invoke({ lines: 1 });
  // The caller has its answer when the function answers, before the extension (400 ms in onInvoke) is done.
  assert.equal(log.text().includes(`recorder done ${first.requestId}`), false, "answered before the extension finished");
  const second = await emulator.invoke({ lines: 1 });
  assert.ok(first.initDurationMs! >= 700, `init took ${first.initDurationMs} ms, the extension's init 700`);
  await emulator.close();
  const lines = log.text().split("\n");
  const report = lines.findIndex((line) => line.startsWith(`REPORT RequestId: ${first.requestId}`));
  const nextStart = lines.indexOf(`START RequestId: ${second.requestId} Version: $LATEST`);
  assert.ok(report >= 0 && report < nextStart, `order in the log: REPORT ${report}, next START ${nextStart}`);
  assert.ok(lines.includes(`recorder done ${first.requestId}`));
  assert.ok(Number(/Duration: ([\d.]+) ms/.exec(lines[report]!)![1]) >= 400, lines[report]);
  assert.match(log.text(), /EXTENSION\tName: recorder\tState: Ready\tEvents: \[INVOKE, SHUTDOWN\]/);
});

test("init error: the extension's error type and message reach the caller and the log, and every invoke sees init fail", async (t) => {
  const log = logOutput();
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "init" }, output: log.stream });
  const result = await emulator.invoke({});
  assert.equal(result.ok, false);
  assert.equal(result.error?.errorType, "Extension.InitError");
  assert.equal(result.error?.errorMessage, "extension troubled failed to init: Extension.ConfigInvalid: TROUBLE is set to init");
  assert.match(result.logs, /micro-lambda extension troubled: init failed: Extension.ConfigInvalid: TROUBLE is set to init/);
  assert.match(log.text(), /INIT_REPORT .*Status: error\tError Type: Extension.InitError/);
  const again = await emulator.invoke({});
  assert.equal(again.error?.errorType, "Extension.InitError");
});

test("init error from anything thrown: reported as Extension.<its name>", async (t) => {
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "init-type" } });
  const result = await emulator.invoke({});
  assert.equal(result.error?.errorType, "Extension.InitError");
  assert.match(result.error!.errorMessage, /^extension troubled failed to init: Extension.TypeError: Cannot read properties of undefined/);
});

test("a registration under another name is refused with a message that explains the name rule", async (t) => {
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "wrong-name" } });
  const result = await emulator.invoke({});
  assert.equal(result.error?.errorType, "Extension.Crash");
  assert.equal(result.error?.errorMessage, "extension troubled exited with status 1 before registering");
  assert.match(result.logs, /Lambda refused to register the extension "someone-else" \(403 Extension.InvalidEventType: SHUTDOWN: only an external extension can register for SHUTDOWN/);
  assert.match(result.logs, /must register with the file name of its executable/);
  assert.match(result.logs, /the extensions folder has troubled/);
});

test("an extension that exits before registering fails init with Extension.Crash", async (t) => {
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "crash-early" } });
  const result = await emulator.invoke({});
  assert.deepEqual(result.error, { errorType: "Extension.Crash", errorMessage: "extension troubled exited with status 3 before registering" });
});

test("a throw in onInvoke goes to /extension/exit/error; the sandbox is reset and the next invoke starts a fresh one", async (t) => {
  const log = logOutput();
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "invoke" }, output: log.stream });
  const first = await emulator.invoke({});
  assert.equal(first.ok, true, "the function answered before the extension failed");
  const second = await emulator.invoke({});
  assert.equal(second.ok, true);
  assert.notEqual(second.initDurationMs, undefined, "a fresh sandbox: init again");
  assert.match(log.text(), /micro-lambda extension troubled: failed: Extension.Error: onInvoke broke/);
  assert.match(log.text(), /Extension.ExitError: extension troubled failed: Extension.Error: onInvoke broke: resetting the sandbox/);
});

test("an extension that crashes during an invocation resets the sandbox", async (t) => {
  const log = logOutput();
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "crash-invoke" }, output: log.stream });
  await emulator.invoke({});
  const second = await emulator.invoke({});
  assert.notEqual(second.initDurationMs, undefined);
  assert.match(log.text(), /Extension.Crash: extension troubled exited with status 3: resetting the sandbox/);
});

test("an extension still running at the SHUTDOWN deadline is killed", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: "stubborn", RECORD_FILE: record.path } });
  await emulator.invoke({});
  const started = Date.now();
  await emulator.close();
  // It waited for the deadline (2 s with an external extension) before killing.
  const took = Date.now() - started;
  assert.ok(took >= 1500, `close took ${took} ms (budget 2 s)`);
  const { pid } = record.read()[0];
  assert.equal(await gone(pid), true, `process ${pid} still runs`);
});

test("a function that registers an internal extension (no events) gets SIGTERM at shutdown", async (t) => {
  const log = logOutput();
  const emulator = await startEmulator(t, { command: tsxCommand("test/fixtures/sigterm/main.ts"), output: log.stream });
  assert.equal((await emulator.invoke({})).result, "ok");
  await emulator.close();
  assert.match(log.text(), /SIGTERM received/);
  assert.match(log.text(), /EXTENSION\tName: sigterm-opt-in\tState: Ready\tEvents: \[\]/);
});

test("extension folder problems are reported like Lambda's launch errors", async (t) => {
  const dir = extensionsDir(t, []);
  writeFileSync(join(dir, "not-executable"), "#!/bin/sh\n", { mode: 0o644 });
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: dir });
  const result = await emulator.invoke({});
  assert.equal(result.error?.errorType, "Extension.LaunchError");
  assert.match(result.error!.errorMessage, /not-executable is not executable/);
  const missing = await startEmulator(t, { command: chatty, extensionsDir: join(dir, "absent") });
  assert.match((await missing.invoke({})).error!.errorMessage, /cannot read the extensions folder/);
});

test("onShutdown that throws is reported as an exit error; one that outlasts the deadline is cut short by the helper", async (t) => {
  for (const [trouble, expected] of [
    ["shutdown-throw", /micro-lambda extension troubled: failed: Extension.Error: onShutdown broke/],
    ["slow-shutdown", /micro-lambda extension: extension troubled: onShutdown did not finish before the SHUTDOWN deadline; exiting before Lambda kills it/],
  ] as const) {
    const log = logOutput();
    const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["troubled"]), env: { TROUBLE: trouble }, output: log.stream });
    assert.equal((await emulator.invoke({})).ok, true);
    await emulator.close();
    assert.match(log.text(), expected);
  }
});

test("outside Lambda, or with the API unreachable, the helper exits 1 with one clear line", async () => {
  const command = [tsx, join(root, "test/fixtures/extensions/recorder.ts")];
  const alone = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: undefined });
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /micro-lambda extension: AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda extension/);
  const unreachable = await runToExit(command, { AWS_LAMBDA_RUNTIME_API: "127.0.0.1:1" });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /micro-lambda extension: the Extensions API at 127.0.0.1:1 cannot be reached \(POST \/2020-01-01\/extension\/register\)/);
});

test("CLI: --extensions DIR starts the folder's extensions before the function", async (t) => {
  const record = recordFile(t);
  const dir = extensionsDir(t, ["recorder"]);
  const out = await runToExit([tsx, join(root, "src/cli/bin.ts"), "invoke", "--extensions", dir, "--event", '{"lines":1}', "--", ...chatty], { RECORD_FILE: record.path });
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { printed: 1 });
  assert.match(out.stderr, /EXTENSION\tName: recorder\tState: Ready\tEvents: \[INVOKE, SHUTDOWN\]/);
  assert.deepEqual(
    record.read().filter((entry) => entry.kind === "event").map((entry) => entry.event.eventType),
    ["INVOKE", "SHUTDOWN"],
  );
});

test("when one extension crashes, the others get SHUTDOWN with reason failure before the sandbox is replaced", async (t) => {
  const record = recordFile(t);
  const emulator = await startEmulator(t, { command: chatty, extensionsDir: extensionsDir(t, ["recorder", "troubled"]), env: { RECORD_FILE: record.path, TROUBLE: "crash-invoke" } });
  const first = await emulator.invoke({});
  const second = await emulator.invoke({});
  assert.notEqual(second.initDurationMs, undefined, "a fresh sandbox");
  await emulator.close(); // the caller has its answer before the extensions are done: wait for them
  const events = record.read().filter((entry) => entry.kind === "event").map((entry) => entry.event);
  assert.deepEqual(
    events.slice(0, 3).map((event) => [event.eventType, event.requestId ?? event.shutdownReason]),
    [["INVOKE", first.requestId], ["SHUTDOWN", "failure"], ["INVOKE", second.requestId]],
  );
});
