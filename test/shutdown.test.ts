// Graceful shutdown: lambda(handler, { onShutdown }) under the emulator (tsx and the built bootstraps), and the runtime's side of it against a scripted Runtime API.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { bootstrap, command } from "./bootstraps.ts";
import { logOutput } from "./extension-helpers.ts";
import { accepted, event, fakeRuntimeApi, root, startEmulator, tsxCommand, type Recorded } from "./helpers.ts";

const fixture = "test/fixtures/shutdown/main.ts";

/** A fresh file for the fixture's cleanup to write to, and a way to read it (empty when nothing was written). */
function shutdownLog(t: TestContext): { path: string; lines(): string[] } {
  const path = join(mkdtempSync(join(tmpdir(), "micro-lambda-shutdown-")), "log");
  void t;
  return {
    path,
    lines: () => {
      try {
        return readFileSync(path, "utf8").split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

function suite(label: string, commandFor: () => Promise<string[]>): void {
  describe(`graceful shutdown under the emulator (${label})`, () => {
    test("onShutdown runs when the sandbox shuts down: the runtime registered a no-op internal extension, so it gets SIGTERM", async (t) => {
      const file = shutdownLog(t);
      const output = logOutput();
      const emulator = await startEmulator(t, { command: await commandFor(), initTimeoutMs: 60_000, env: { SHUTDOWN_LOG: file.path }, output: output.stream });
      const out = await emulator.invoke({});
      assert.equal(out.result, "ok");
      assert.deepEqual(file.lines(), [], "nothing runs before shutdown");
      await emulator.close();
      assert.deepEqual(file.lines(), ["cleanup started", "cleanup finished"]);
      assert.match(output.text(), /EXTENSION\tName: micro-lambda-graceful-shutdown\tState: Ready\tEvents: \[\]/);
    });

    test("a cleanup longer than the 500 ms budget is cut short by SIGKILL", async (t) => {
      const file = shutdownLog(t);
      const emulator = await startEmulator(t, { command: await commandFor(), initTimeoutMs: 60_000, env: { SHUTDOWN_LOG: file.path, SHUTDOWN_MODE: "slow" } });
      assert.equal((await emulator.invoke({})).result, "ok");
      await emulator.close();
      // The cleanup would write its second line after 10 s; close() returned after SIGKILL, without it.
      assert.deepEqual(file.lines(), ["cleanup started"]);
    });

    test("without the opt-in there is no extension, and the sandbox ends with SIGKILL alone: a SIGTERM listener never runs", async (t) => {
      const file = shutdownLog(t);
      const output = logOutput();
      const emulator = await startEmulator(t, { command: await commandFor(), initTimeoutMs: 60_000, env: { SHUTDOWN_LOG: file.path, SHUTDOWN_MODE: "none" }, output: output.stream });
      assert.equal((await emulator.invoke({})).result, "ok");
      await emulator.close();
      assert.deepEqual(file.lines(), []);
      assert.doesNotMatch(output.text(), /EXTENSION\tName/);
    });
  });
}

suite("tsx", async () => tsxCommand(fixture));
suite("x86_64 bootstrap", async () => command(await bootstrap(fixture, "x86_64", ["--name", "fixture-shutdown"]), "x86_64"));
suite("arm64 bootstrap under qemu", async () => command(await bootstrap(fixture, "arm64", ["--name", "fixture-shutdown"]), "arm64"));

const isNext = (request: Recorded) => request.method === "GET" && request.url === "/2018-06-01/runtime/invocation/next";

/**
 * Starts the fixture against `address` as one process (`node --import tsx`, not the tsx wrapper, which would
 * leave its node child running, holding stderr open, when it is itself killed).
 */
function startFunction(address: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", join(root, fixture)], { cwd: root, env: { ...process.env, AWS_LAMBDA_RUNTIME_API: address, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on("close", (code) => resolve({ code, stderr })));
  return { child, exited };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 30_000; !check(); await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
  }
}

describe("graceful shutdown: the runtime's side", () => {
  const registered = { status: 200, headers: { "lambda-extension-identifier": "ext-1", "content-type": "application/json" }, body: '{"functionName":"f","functionVersion":"$LATEST","handler":"bootstrap"}' };

  for (const [mode, code, lines] of [
    ["quick", 0, ["cleanup started", "cleanup finished"]],
    ["fail", 1, ["cleanup started"]],
  ] as const) {
    test(`registers the no-op extension before the first /next; on SIGTERM runs the cleanup, then exits ${code} (${mode})`, async (t) => {
      const file = shutdownLog(t);
      const api = await fakeRuntimeApi(t, (request) => (request.url === "/2020-01-01/extension/register" ? registered : "hang"));
      const fn = startFunction(api.address, { SHUTDOWN_LOG: file.path, SHUTDOWN_MODE: mode });
      t.after(() => fn.child.kill("SIGKILL"));
      await until(() => api.requests.some(isNext), "the first /next");
      fn.child.kill("SIGTERM");
      const exit = await fn.exited;
      assert.equal(exit.code, code, exit.stderr);
      assert.deepEqual(file.lines(), lines);
      if (mode === "fail") assert.match(exit.stderr, /micro-lambda: onShutdown failed: Error: could not flush/);
      const [register, extensionNext, next] = api.requests;
      assert.equal(register?.method, "POST");
      assert.equal(register?.url, "/2020-01-01/extension/register");
      assert.equal(register?.headers["lambda-extension-name"], "micro-lambda-graceful-shutdown");
      assert.deepEqual(JSON.parse(register!.body), { events: [] });
      assert.equal(extensionNext?.url, "/2020-01-01/extension/event/next");
      assert.equal(extensionNext?.headers["lambda-extension-identifier"], "ext-1");
      assert.equal(next && isNext(next), true, "the runtime's first /next comes after the registration");
    });
  }

  for (const [refusal, answer, says] of [
    ["403", { status: 403, body: '{"errorType":"Extension.RegistrationClosed","errorMessage":"too late"}' }, 'answered 403: {"errorType":"Extension.RegistrationClosed","errorMessage":"too late"}'],
    ["200 without an identifier", { status: 200, body: "{}" }, "answered 200 without a Lambda-Extension-Identifier: {}"],
  ] as const) {
    test(`a refused registration (${refusal}): the function still runs, and says its cleanup will not`, async (t) => {
      const file = shutdownLog(t);
      let nexts = 0;
      const api = await fakeRuntimeApi(t, (request) => {
        if (request.url === "/2020-01-01/extension/register") return answer;
        if (isNext(request)) return nexts++ === 0 ? event("req-1", {}) : "hang";
        return accepted;
      });
      const fn = startFunction(api.address, { SHUTDOWN_LOG: file.path });
      t.after(() => fn.child.kill("SIGKILL"));
      await until(() => api.requests.some((request) => request.url === "/2018-06-01/runtime/invocation/req-1/response"), "the response");
      assert.equal(api.requests.find((request) => request.url.endsWith("/response"))?.body, '"ok"');
      // Lambda would not send SIGTERM to this sandbox; sent anyway, the handler (installed before registering) still runs the cleanup.
      fn.child.kill("SIGTERM");
      const exit = await fn.exited;
      assert.equal(exit.code, 0);
      assert.deepEqual(file.lines(), ["cleanup started", "cleanup finished"]);
      assert.equal(
        exit.stderr,
        `micro-lambda: onShutdown will not run: Lambda sends SIGTERM only to a sandbox with an extension registered, and registering one failed: POST /2020-01-01/extension/register ${says}\n`,
      );
    });
  }
});
