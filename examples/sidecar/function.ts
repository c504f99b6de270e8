// The sidecar example's function: it leaves each invocation's payload in a file named after the request id, for the sidecar extension to process off the invocation's clock.
//
// SIDECAR_DIR says where (default /tmp, the only writable place on Lambda; the tests give each run its own).
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lambda } from "micro-lambda";

const dir = process.env.SIDECAR_DIR ?? "/tmp";

lambda(async (event: { payload?: unknown; skip?: boolean; partial?: boolean }, context) => {
  const file = join(dir, context.awsRequestId);
  const content = JSON.stringify({ payload: event.payload ?? null });
  if (event.skip) return { stored: false };
  // A crash halfway through a write leaves this; `partial` shows what the extension does with it.
  if (event.partial) writeFileSync(file, content.slice(0, Math.ceil(content.length / 2)));
  else {
    // Written whole, then renamed: the extension never sees half a file from a write that finished.
    writeFileSync(`${file}.tmp`, content);
    renameSync(`${file}.tmp`, file);
  }
  return { stored: true };
});
