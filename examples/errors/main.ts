// Error reporting: what the caller sees when a handler throws, and how to choose the errorType.
import { lambda } from "micro-lambda";

/** The error's `name` becomes the `errorType` the caller sees, as in the managed Node.js runtime. */
class ValidationError extends Error {
  override readonly name = "ValidationError";
}

// Configuration is checked once, at init. A failure here is reported to /runtime/init/error and the
// sandbox never takes an invocation: the caller sees this error as the invoke's result.
const maxItems = Number(process.env.MAX_ITEMS ?? 10);
if (!Number.isInteger(maxItems) || maxItems <= 0) throw new RangeError(`MAX_ITEMS must be a positive integer, got ${process.env.MAX_ITEMS}`);

lambda(async (event: { items?: unknown }) => {
  if (!Array.isArray(event.items)) throw new ValidationError("items must be an array");
  if (event.items.length > maxItems) throw new ValidationError(`at most ${maxItems} items, got ${event.items.length}`);
  return { count: event.items.length };
});
