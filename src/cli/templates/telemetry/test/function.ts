// A function that prints, for the extension to forward in the test.
import { lambda } from "micro-lambda";

lambda(async (event: { say?: string }) => {
  console.log(`the function says ${event.say ?? "nothing"}`);
  return { ok: true };
});
