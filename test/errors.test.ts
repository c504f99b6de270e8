// The error normaliser, in-process, against the hostile values a handler can throw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import { InvocationError, toErrorResponse } from "../src/wire/errors.ts";

test("an Error: its name, message, and stack lines", () => {
  const error = new TypeError("bad type");
  const out = toErrorResponse(error);
  assert.equal(out.errorType, "TypeError");
  assert.equal(out.errorMessage, "bad type");
  assert.deepEqual(out.stackTrace, error.stack!.split("\n"));
});

test("a custom error class reports its own name", () => {
  class NotFound extends Error {
    override name = "NotFound";
  }
  assert.equal(toErrorResponse(new NotFound("x")).errorType, "NotFound");
});

test("non-Errors: typeof as the type, and readable text", () => {
  assert.deepEqual(toErrorResponse("plain"), { errorType: "string", errorMessage: "plain", stackTrace: [] });
  assert.deepEqual(toErrorResponse(42), { errorType: "number", errorMessage: "42", stackTrace: [] });
  assert.deepEqual(toErrorResponse(undefined), { errorType: "undefined", errorMessage: "undefined", stackTrace: [] });
  assert.deepEqual(toErrorResponse(null), { errorType: "object", errorMessage: "null", stackTrace: [] });
  assert.deepEqual(toErrorResponse({ code: 7 }), { errorType: "object", errorMessage: "{ code: 7 }", stackTrace: [] });
  assert.deepEqual(toErrorResponse(Object.create(null)), { errorType: "object", errorMessage: "[Object: null prototype] {}", stackTrace: [] });
});

test("getters that throw, on name, message and stack, never make it throw", () => {
  const hostile = Object.defineProperties(new Error("hidden"), {
    stack: { get: () => { throw new Error("stack"); } },
    name: { get: () => { throw new Error("name"); } },
    message: { get: () => { throw new Error("message"); } },
  });
  assert.deepEqual(toErrorResponse(hostile), { errorType: "Error", errorMessage: "", stackTrace: [] });
});

test("non-string name and message are ignored, not stringified into nonsense", () => {
  const odd = Object.assign(new Error("m"), { name: { nested: true } });
  assert.equal(toErrorResponse(odd).errorType, "Error");
});

test("a Proxy whose every trap throws is still reported", () => {
  const trap = () => { throw new Error("trap"); };
  const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, has: trap });
  assert.deepEqual(toErrorResponse(proxy), { errorType: "object", errorMessage: "a thrown value that cannot be inspected", stackTrace: [] });
});

test("errors from another realm and error-shaped objects count as errors", () => {
  const foreign = runInNewContext("new RangeError('from a vm')");
  assert.equal(toErrorResponse(foreign).errorType, "RangeError");
  assert.deepEqual(toErrorResponse({ name: "Shaped", message: "like an error" }), { errorType: "Shaped", errorMessage: "like an error", stackTrace: [] });
});

test("newlines in a name are folded to one line", () => {
  assert.equal(toErrorResponse(Object.assign(new Error("m"), { name: "Two\nLines" })).errorType, "Two Lines");
});

test("the runtime's own invocation errors keep their Runtime.* type and carry no runtime stack", () => {
  assert.deepEqual(toErrorResponse(new InvocationError("Runtime.MalformedEvent", "not JSON")), { errorType: "Runtime.MalformedEvent", errorMessage: "not JSON", stackTrace: [] });
});
