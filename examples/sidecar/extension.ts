// The sidecar example's extension: it processes the file each invocation left in SIDECAR_DIR (default /tmp), one invocation later.
//
// When INVOKE n+1 arrives, invocation n's file is complete: the extension reads it, processes it (here: a
// log line with what it holds), and deletes it. The last invocation's file is processed on SHUTDOWN, which
// the original version of this example forgot. A missing or partial file is logged, never fatal: the
// extension must not take the function down with it.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { extension } from "micro-lambda/extension";

interface Sidecar {
  dir: string;
  /** The invocation whose file is waiting. */
  previous?: string;
}

extension<Sidecar>({
  init: () => ({ dir: process.env.SIDECAR_DIR ?? "/tmp" }),
  onInvoke(event, sidecar) {
    if (sidecar.previous) processFile(sidecar.dir, sidecar.previous);
    sidecar.previous = event.requestId;
  },
  onShutdown(_event, sidecar) {
    if (sidecar.previous) processFile(sidecar.dir, sidecar.previous);
  },
});

function processFile(dir: string, requestId: string): void {
  const file = join(dir, requestId);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return console.log(`sidecar: ${requestId}: no file to process (${(error as NodeJS.ErrnoException).code})`);
  }
  rmSync(file, { force: true });
  let content: { payload?: unknown };
  try {
    content = JSON.parse(text);
  } catch {
    return console.log(`sidecar: ${requestId}: the file is partial (${text.length} bytes, not complete JSON): skipped`);
  }
  console.log(`sidecar: ${requestId}: processed ${JSON.stringify(content.payload)}`);
}
