// The error normaliser, in-process, against the hostile values a handler can throw.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { InvocationError, JSONStringifyError, toErrorResponse, xrayErrorCause } from "../src/wire/errors.ts";
import { limits } from "../src/wire/protocol.ts";

test("an Error: its name, message, and stack lines", () => {
  const error = new TypeError("bad type");
  const out = toErrorResponse(error);
  assert.equal(out.errorType, "TypeError");
  assert.equal(out.errorMessage, "bad type");
  assert.deepEqual(out.trace, error.stack!.split("\n"));
});

test("a custom error class reports its own name", () => {
  class NotFound extends Error {
    override name = "NotFound";
  }
  assert.equal(toErrorResponse(new NotFound("x")).errorType, "NotFound");
});

test("non-Errors: typeof as the type, and readable text", () => {
  assert.deepEqual(toErrorResponse("plain"), { errorType: "string", errorMessage: "plain", trace: [] });
  assert.deepEqual(toErrorResponse(42), { errorType: "number", errorMessage: "42", trace: [] });
  assert.deepEqual(toErrorResponse(undefined), { errorType: "undefined", errorMessage: "undefined", trace: [] });
  assert.deepEqual(toErrorResponse(null), { errorType: "object", errorMessage: "null", trace: [] });
  assert.deepEqual(toErrorResponse({ code: 7 }), { errorType: "object", errorMessage: "{ code: 7 }", trace: [] });
  assert.deepEqual(toErrorResponse(Object.create(null)), { errorType: "object", errorMessage: "[Object: null prototype] {}", trace: [] });
});

test("getters that throw, on name, message and stack, never make it throw", () => {
  const hostile = Object.defineProperties(new Error("hidden"), {
    stack: { get: () => { throw new Error("stack"); } },
    name: { get: () => { throw new Error("name"); } },
    message: { get: () => { throw new Error("message"); } },
  });
  assert.deepEqual(toErrorResponse(hostile), { errorType: "Error", errorMessage: "", trace: [] });
});

test("non-string name and message are ignored, not stringified into nonsense", () => {
  const odd = Object.assign(new Error("m"), { name: { nested: true } });
  assert.equal(toErrorResponse(odd).errorType, "Error");
});

test("a Proxy whose every trap throws is still reported", () => {
  const trap = () => { throw new Error("trap"); };
  const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, has: trap });
  assert.deepEqual(toErrorResponse(proxy), { errorType: "object", errorMessage: "a thrown value that cannot be inspected", trace: [] });
});

test("errors from another realm and error-shaped objects count as errors", () => {
  const foreign = runInNewContext("new RangeError('from a vm')");
  assert.equal(toErrorResponse(foreign).errorType, "RangeError");
  assert.deepEqual(toErrorResponse({ name: "Shaped", message: "like an error" }), { errorType: "Shaped", errorMessage: "like an error", trace: [] });
});

test("a name is reported as it is, as the managed runtime does (the error-type header is cleaned separately); DEL becomes %7F", () => {
  assert.equal(toErrorResponse(Object.assign(new Error("m"), { name: "Two\nLines" })).errorType, "Two\nLines");
  assert.equal(toErrorResponse(new Error("a\x7fb")).errorMessage, "a%7Fb");
});

test("the runtime's own invocation errors keep their Runtime.* type, and their trace is only its first line", () => {
  assert.deepEqual(toErrorResponse(new InvocationError("Runtime.MalformedEvent", "not JSON")), { errorType: "Runtime.MalformedEvent", errorMessage: "not JSON", trace: ["Runtime.MalformedEvent: not JSON"] });
});

test("an unserialisable result is Runtime.JSONStringifyError, worded as the managed runtime words it", () => {
  const error = toErrorResponse(new JSONStringifyError());
  assert.equal(error.errorType, "Runtime.JSONStringifyError");
  assert.equal(error.errorMessage, "Unable to stringify response body");
  assert.equal(error.trace[0], "Runtime.JSONStringifyError: Unable to stringify response body");
});

test("a 100 MB message becomes an error JSON of at most 128 KiB: valid JSON, the start of the message kept, the cut said", () => {
  const huge = new Error("é".repeat(50_000_000));
  const error = toErrorResponse(huge);
  const body = JSON.stringify(error);
  assert.ok(Buffer.byteLength(body) <= limits.errorBodyBytes, `${Buffer.byteLength(body)} bytes`);
  assert.deepEqual(JSON.parse(body), error);
  assert.match(error.errorMessage, /^é+… \[\d+ more characters cut\]$/);
  assert.equal(error.errorType, "Error");
});

test("a long trace loses lines from its end first, then the message is shortened", () => {
  const error = Object.assign(new Error("m".repeat(200)), { stack: Array.from({ length: 5000 }, (_, i) => `    at frame${i} (file.js:${i}:1)`).join("\n") });
  const bounded = toErrorResponse(error, 4096);
  assert.ok(Buffer.byteLength(JSON.stringify(bounded)) <= 4096);
  assert.equal(bounded.errorMessage, "m".repeat(200), "the message is kept whole while dropping trace lines is enough");
  assert.ok(bounded.trace.length > 0 && bounded.trace.length < 5000);
  assert.equal(bounded.trace[0], "    at frame0 (file.js:0:1)");
  const tiny = toErrorResponse(new Error("x".repeat(10_000)), 200);
  assert.ok(Buffer.byteLength(JSON.stringify(tiny)) <= 200, JSON.stringify(tiny));
});

test("the X-Ray error cause: type, message and parsed frames; empty for null and undefined; ASCII only; bounded", () => {
  const cause = JSON.parse(xrayErrorCause(new TypeError("bad ü")));
  assert.equal(cause.working_directory, process.cwd());
  assert.equal(cause.exceptions[0].type, "TypeError");
  assert.equal(cause.exceptions[0].message, "bad ü");
  assert.ok(cause.exceptions[0].stack.length > 0);
  const [top] = cause.exceptions[0].stack;
  assert.equal(typeof top.path, "string");
  assert.ok(Number.isInteger(top.line));
  assert.deepEqual(cause.paths, [...new Set(cause.exceptions[0].stack.map((f: { path: string }) => f.path))]);
  assert.match(xrayErrorCause(new Error("ü€😀")), /^[\x20-\x7e]*$/);
  assert.equal(xrayErrorCause(null), "");
  assert.equal(xrayErrorCause(undefined), "");
  assert.deepEqual(JSON.parse(xrayErrorCause("a string")).exceptions, [{ stack: [] }]);
  const long = Object.assign(new Error("x"), { stack: "Error: x\n" + Array.from({ length: 2000 }, (_, i) => `    at f${i} (/a/b.js:${i}:1)`).join("\n") });
  const bounded = xrayErrorCause(long, 2000);
  assert.ok(bounded.length <= 2000 && JSON.parse(bounded).exceptions[0].stack.length < 2000);
  assert.equal(xrayErrorCause(new Error("y".repeat(5000)), 100), "", "left out when even without frames it is too long");
});

test("property: whatever is thrown (hostile getters, Proxies, cycles, symbols), the normaliser returns a bounded, valid error JSON and never throws", () => {
  const trap = () => {
    throw new Error("trap");
  };
  // Made inside the property: fast-check itself would trip over a hostile Proxy if it were handed one to generate.
  const makers: (() => unknown)[] = [
    () => new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, has: trap }),
    () => new Proxy(new Error("p"), { get: trap }),
    () => Object.defineProperty(new Error("g"), "stack", { get: trap }),
    () => Object.defineProperty({}, "message", { get: trap }),
    () => Object.defineProperty(new Error("n"), "name", { get: trap }),
    () => Object.create(null),
    () => Symbol("s"),
    () => {
      const cycle: Record<string, unknown> = { message: "cyclic" };
      cycle.self = cycle;
      return cycle;
    },
    () => Object.assign(new Error("x"), { name: 42, message: { not: "a string" } }),
    () => runInNewContext("new RangeError('from a vm')"),
  ];
  const hostile = fc.integer({ min: 0, max: makers.length - 1 }).map((index) => ({ make: makers[index]! }));
  const errors = fc.tuple(fc.string(), fc.string({ maxLength: 3000 }), fc.option(fc.string())).map(([name, message, stack]) => Object.assign(new Error(message), { name, ...(stack === null ? {} : { stack }) }));
  const anything = fc.oneof(hostile, errors.map((error) => ({ make: () => error })), fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true }), fc.string(), fc.constant(null), fc.constant(undefined)).map((value) => (value && typeof value === "object" && "make" in value && typeof value.make === "function" ? value : { make: () => value }));
  fc.assert(
    fc.property(anything, fc.integer({ min: 256, max: 4096 }), ({ make }, maxBytes) => {
      const thrown = (make as () => unknown)();
      const error = toErrorResponse(thrown, maxBytes);
      const body = JSON.stringify(error);
      assert.ok(Buffer.byteLength(body) <= maxBytes, `${Buffer.byteLength(body)} > ${maxBytes}`);
      assert.deepEqual(Object.keys(JSON.parse(body)), ["errorType", "errorMessage", "trace"]);
      assert.equal(typeof error.errorType, "string");
      assert.equal(typeof error.errorMessage, "string");
      assert.ok(error.trace.every((line) => typeof line === "string"));
      const cause = xrayErrorCause(thrown);
      if (cause !== "") JSON.parse(cause);
    }),
    { seed: 20261202, numRuns: 300 },
  );
});
