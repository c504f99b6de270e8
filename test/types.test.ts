// The whole project type-checks, including test/types-check.ts: Context is assignable to @types/aws-lambda's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { join } from "node:path";
import { root, runToExit } from "./helpers.ts";

test("tsc --noEmit passes on src, examples and tests", async () => {
  const out = await runToExit([process.execPath, join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", root], {}, 120_000);
  assert.equal(out.code, 0, out.stdout + out.stderr);
});
