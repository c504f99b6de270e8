// Runs the extension beside a function that prints, under micro-lambda's emulator, a local Lambda with the
// Telemetry API, and checks every line reached LOG_DESTINATION (a server on 127.0.0.1 here). From source by
// default; BOOTSTRAP=dist/{{name}}/x86_64/extensions/{{name}} npm test runs the built extension instead.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test, type TestContext } from "node:test";
import { Emulator } from "micro-lambda/emulator";

const name = "{{name}}"; // Lambda registers an extension under its executable's file name.

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

test("every line the function printed reaches LOG_DESTINATION, with its request id", async (t) => {
  const received: { requestId: string; message: string }[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    for (const line of body.trim().split("\n")) received.push(JSON.parse(line));
    res.end();
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  t.after(() => server.close());
  const extensions = extensionsFolder(t);

  const emulator = await Emulator.start({
    command: [process.execPath, "--import", "tsx", "test/function.ts"],
    extensionsDir: extensions,
    env: { LOG_DESTINATION: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logs` },
  });
  const hello = await emulator.invoke({ say: "hello" });
  const goodbye = await emulator.invoke({ say: "goodbye" });
  await emulator.close(); // SHUTDOWN: the extension sends what is left first
  // Each line as the function's log holds it: console.log puts the time, the request id and the level first.
  assert.deepEqual(received.map(({ requestId }) => requestId), [hello.requestId, goodbye.requestId]);
  assert.match(received[0]!.message, /\tINFO\tthe function says hello$/);
  assert.match(received[1]!.message, /\tINFO\tthe function says goodbye$/);
});
