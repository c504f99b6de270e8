// The logging bench's function for aws-lambda-ric: the same line per invocation as log-function.ts (BENCH_LOG=console), or none.
const log = process.env.BENCH_LOG === "console";

export const handler = async (event, context) => {
  if (log) console.log("handled", event.name, "for", context.awsRequestId);
  return { ok: true };
};
