// `micro-lambda watch`: not written yet.
import { UsageError } from "./args.ts";

export const watchUsage = "usage: micro-lambda watch (not available yet)";

export async function watch(_argv: string[]): Promise<number> {
  throw new UsageError("watch is not available yet");
}
