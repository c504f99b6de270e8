// Runs the function under micro-lambda's emulator, a local Lambda, and reads its streamed response as a
// function URL would: the status and headers first, then the body chunk by chunk. From source by default;
// BOOTSTRAP=dist/{{name}}/x86_64/bootstrap npm test runs the built executable instead, the one in the zip.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Emulator } from "micro-lambda/emulator";

const command = process.env.BOOTSTRAP ? [process.env.BOOTSTRAP] : [process.execPath, "--import", "tsx", "src/main.ts"];

test("streams one NDJSON line per item, after a 200 and its content type", async (t) => {
  const emulator = await Emulator.start({ command });
  t.after(() => emulator.close());
  const chunks: string[] = [];
  const result = await emulator.invoke({ queryStringParameters: { count: "3" } }, { onChunk: (chunk) => void chunks.push(chunk.toString()) });
  assert.equal(result.ok, true, result.error?.errorMessage);
  assert.equal(result.streamed, true);
  assert.equal(result.head?.prelude?.statusCode, 200);
  assert.equal(result.head?.prelude?.headers?.["content-type"], "application/x-ndjson");
  const lines = chunks.join("").trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines, [1, 2, 3].map((item) => ({ item, of: 3 })));
});
