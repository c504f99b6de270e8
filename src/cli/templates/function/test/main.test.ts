// Runs the function under micro-lambda's emulator, a local Lambda: it starts the function as a sandbox would
// and hands it each event through the Runtime API. From source by default; BOOTSTRAP=dist/{{name}}/x86_64/bootstrap
// npm test runs the built executable instead, the one in the zip.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Emulator } from "micro-lambda/emulator";

const command = process.env.BOOTSTRAP ? [process.env.BOOTSTRAP] : [process.execPath, "--import", "tsx", "src/main.ts"];

test("greets whoever the event names", async (t) => {
  const emulator = await Emulator.start({ command });
  t.after(() => emulator.close());
  const result = await emulator.invoke({ name: "you" });
  assert.equal(result.ok, true, result.payload.toString());
  assert.deepEqual(result.result, { message: "Hello, you!", requestId: result.requestId });
});

test("greets the world when the event names no one", async (t) => {
  const emulator = await Emulator.start({ command });
  t.after(() => emulator.close());
  const result = await emulator.invoke({});
  assert.equal((result.result as { message: string }).message, "Hello, world!");
});
