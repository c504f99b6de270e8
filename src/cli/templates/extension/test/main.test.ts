// Runs the extension beside a function under micro-lambda's emulator, a local Lambda: the emulator starts
// every executable in an extensions folder (as Lambda starts /opt/extensions), and the extension's lines land
// in the same log as the function's. From source by default; BOOTSTRAP=dist/{{name}}/x86_64/extensions/{{name}}
// npm test runs the built extension instead, the one in the layer.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
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

test("sees every invocation, and says how many on SHUTDOWN", async (t) => {
  const extensions = extensionsFolder(t);
  let log = "";
  const output = new PassThrough().setEncoding("utf8").on("data", (text: string) => (log += text));
  const emulator = await Emulator.start({ command: [process.execPath, "--import", "tsx", "test/function.ts"], extensionsDir: extensions, output });
  const first = await emulator.invoke({});
  const second = await emulator.invoke({});
  await emulator.close();
  assert.equal(first.ok && second.ok, true, log);
  assert.match(log, new RegExp(`${name}: invocation ${first.requestId}`));
  assert.match(log, new RegExp(`${name}: invocation ${second.requestId}`));
  assert.match(log, new RegExp(`${name}: spindown after 2 invocations`));
});
