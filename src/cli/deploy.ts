// `micro-lambda deploy`: not written yet.
import { UsageError } from "./args.ts";

export const deployUsage = "usage: micro-lambda deploy (not available yet)";

export async function deploy(_argv: string[]): Promise<number> {
  throw new UsageError("deploy is not available yet");
}
