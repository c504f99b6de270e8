// The logging bench's function: one line per invocation, written as BENCH_LOG says: "console" (console.log, which
// micro-lambda turns into the managed runtime's line), "debug" (console.debug, below AWS_LAMBDA_LOG_LEVEL=INFO),
// "raw" (process.stdout.write of a finished line), or nothing.
import { lambda } from "micro-lambda";

const mode = process.env.BENCH_LOG;

lambda(async (event: { name?: string }, context) => {
  if (mode === "console") console.log("handled", event.name, "for", context.awsRequestId);
  else if (mode === "debug") console.debug("handled", event.name, "for", context.awsRequestId);
  else if (mode === "raw") process.stdout.write(`handled ${event.name} for ${context.awsRequestId}\n`);
  return { ok: true };
});
