// Every example is executable documentation: each runs here under the emulator (built bootstraps run in the build tests).
import assert from "node:assert/strict";
import { test } from "node:test";
import { startEmulator, tsxCommand } from "./helpers.ts";

test("examples/hello greets whoever the event names", async (t) => {
  const emulator = await startEmulator(t, { command: tsxCommand("examples/hello/main.ts") });
  const named = await emulator.invoke({ name: "Ada" });
  assert.deepEqual(named.result, { message: "Hello, Ada!", requestId: named.requestId });
  assert.equal(((await emulator.invoke({})).result as { message: string }).message, "Hello, world!");
});

test("examples/init does its setup once per sandbox and reuses it", async (t) => {
  const emulator = await startEmulator(t, { command: tsxCommand("examples/init/main.ts") });
  const first = (await emulator.invoke({ n: 99_991 })).result as Record<string, unknown>;
  const second = (await emulator.invoke({ n: 99_992 })).result as Record<string, unknown>;
  assert.equal(first.isPrime, true);
  assert.equal(second.isPrime, false);
  assert.equal(first.primesKnown, 9592);
  assert.equal(first.served, 1);
  assert.equal(second.served, 2);
  assert.equal(second.sandboxStartedAt, first.sandboxStartedAt);
});

test("examples/errors: a handler's error reaches the caller with its class name as errorType", async (t) => {
  const emulator = await startEmulator(t, { command: tsxCommand("examples/errors/main.ts"), env: { MAX_ITEMS: "2" } });
  assert.deepEqual((await emulator.invoke({ items: [1] })).result, { count: 1 });
  const invalid = await emulator.invoke({ items: "nope" });
  assert.equal(invalid.error?.errorType, "ValidationError");
  assert.equal(invalid.error?.errorMessage, "items must be an array");
  const tooMany = await emulator.invoke({ items: [1, 2, 3] });
  assert.equal(tooMany.error?.errorMessage, "at most 2 items, got 3");
});

test("examples/errors: bad configuration fails init, and every invoke sees that init error", async (t) => {
  const emulator = await startEmulator(t, { command: tsxCommand("examples/errors/main.ts"), env: { MAX_ITEMS: "lots" } });
  const out = await emulator.invoke({ items: [] });
  assert.equal(out.error?.errorType, "RangeError");
  assert.equal(out.error?.errorMessage, "MAX_ITEMS must be a positive integer, got lots");
});
