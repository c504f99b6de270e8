// `micro-lambda new`: not written yet.
import { UsageError } from "./args.ts";

export const newUsage = "usage: micro-lambda new (not available yet)";

export async function create(_argv: string[]): Promise<number> {
  throw new UsageError("new is not available yet");
}
