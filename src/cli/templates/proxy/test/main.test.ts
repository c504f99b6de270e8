// Runs the proxy in front of a function under micro-lambda's emulator, a local Lambda: the proxy is an
// extension, and the function talks to it through MICRO_LAMBDA_RUNTIME_API. From source by default;
// BOOTSTRAP=dist/{{name}}/x86_64/extensions/{{name}} npm test runs the built extension instead.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { test, type TestContext } from "node:test";
import { Emulator } from "micro-lambda/emulator";

const name = "{{name}}"; // Lambda registers an extension under its executable's file name.

/** A port nothing listens on, for the proxy (9009 on Lambda, where nothing else runs). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((listening) => server.once("listening", listening));
  const { port } = server.address() as AddressInfo;
  await new Promise((closed) => server.close(closed));
  return port;
}

/**
 * An extensions folder as a layer has it (/opt/extensions/NAME): one executable, named as Lambda names the
 * extension. It runs src/main.ts under tsx from a file of the same name (an extension registers under the name
 * of the file it runs), or the built extension when BOOTSTRAP is set.
 */
function extensionsFolder(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-extensions-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "source"));
  writeFileSync(join(dir, "source", `${name}.ts`), `import ${JSON.stringify(resolve("src/main.ts"))};\n`);
  const command = process.env.BOOTSTRAP ? [resolve(process.env.BOOTSTRAP)] : [process.execPath, "--import", "tsx", join(dir, "source", `${name}.ts`)];
  writeFileSync(join(dir, name), `#!/bin/sh\nexec ${command.map((word) => `'${word}'`).join(" ")}\n`, { mode: 0o755 });
  return dir;
}

test("events from an allowed source reach the function; others are rejected before it; each is audited", async (t) => {
  const extensions = extensionsFolder(t);
  const port = await freePort();
  let log = "";
  const output = new PassThrough().setEncoding("utf8").on("data", (text: string) => (log += text));
  const emulator = await Emulator.start({
    command: [process.execPath, "--import", "tsx", "test/function.ts"],
    extensionsDir: extensions,
    env: { ALLOWED_SOURCES: "my.app", MICRO_LAMBDA_PROXY_PORT: String(port), MICRO_LAMBDA_RUNTIME_API: `127.0.0.1:${port}` },
    output,
  });
  t.after(() => emulator.close());
  const allowed = await emulator.invoke({ source: "my.app" });
  assert.deepEqual(allowed.result, { handled: "my.app" }, log);
  const rejected = await emulator.invoke({ source: "someone.else" });
  assert.equal(rejected.ok, false);
  assert.equal(rejected.error?.errorType, "Runtime.EventRejected");
  const audits = log.split("\n").filter((line) => line.startsWith('{"audit"')).map((line) => JSON.parse(line));
  assert.deepEqual(
    audits.map(({ requestId, outcome }) => ({ requestId, outcome })),
    [
      { requestId: allowed.requestId, outcome: "response" },
      { requestId: rejected.requestId, outcome: "rejected" },
    ],
  );
});
