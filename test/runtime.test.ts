// The runtime's behaviour with the main file run by tsx, as during development.
import { runtimeSuite } from "./runtime-suite.ts";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { FunctionLog, levels, logSettings } from "../src/runtime/logging.ts";
import { root } from "./helpers.ts";

// One process, tsx as a loader: the tsx command would start a second one, with its own use of fd 3 (an IPC channel).
runtimeSuite("tsx", async (entry) => [process.execPath, "--import", "tsx", join(root, entry)]);

// The log writer in-process, for what is awkward to reach through a function: hostile values, every frame field.
describe("FunctionLog, in-process", () => {
  const capture = (run: () => void): string => {
    const write = process.stdout.write;
    let text = "";
    process.stdout.write = ((chunk: string) => ((text += chunk), true)) as typeof process.stdout.write;
    try {
      run();
    } finally {
      process.stdout.write = write;
    }
    return text;
  };
  const hostile = { [Symbol.for("nodejs.util.inspect.custom")]: () => { throw new Error("trap"); } };

  test("a value whose inspection throws is logged as such, never thrown at the caller", () => {
    for (const format of ["Text", "JSON"]) {
      const log = new FunctionLog(logSettings({ AWS_LAMBDA_LOG_FORMAT: format }));
      const out = capture(() => log.write(levels.INFO, ["a", hostile]));
      assert.match(out, /\t-\tINFO\t\[a value that cannot be printed: .*\]\n$/, format);
    }
  });

  test("an Error whose fields throw: the error line still comes out, as valid JSON", () => {
    const error = Object.defineProperty(new Error("e"), "toJSON", { value: () => { throw new Error("no JSON"); } });
    const out = capture(() => new FunctionLog(logSettings({})).error("Invoke Error", error));
    const json = out.slice(out.indexOf("\t{") + 1);
    assert.deepEqual(Object.keys(JSON.parse(json)), ["errorType", "errorMessage", "trace"]);
  });

  test("in JSON, a message that JSON cannot hold (a cycle, a BigInt) becomes its util.format text", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const out = capture(() => new FunctionLog(logSettings({ AWS_LAMBDA_LOG_FORMAT: "json" })).write(levels.WARN, [cycle]));
    assert.equal(JSON.parse(out).message, "<ref *1> { self: [Circular *1] }");
    assert.equal(JSON.parse(capture(() => new FunctionLog(logSettings({ AWS_LAMBDA_LOG_FORMAT: "JSON" })).write(levels.WARN, [10n]))).message, "10n");
  });

  test("the settings: format and level case-insensitive, unknown values ignored, the fd taken out of the environment", () => {
    const env: NodeJS.ProcessEnv = { AWS_LAMBDA_LOG_FORMAT: "json", AWS_LAMBDA_LOG_LEVEL: "warn", _LAMBDA_TELEMETRY_LOG_FD: "7" };
    assert.deepEqual(logSettings(env), { format: "JSON", minLevel: levels.WARN, fd: 7 });
    assert.equal(env._LAMBDA_TELEMETRY_LOG_FD, undefined);
    assert.deepEqual(logSettings({ AWS_LAMBDA_LOG_LEVEL: "LOUD", _LAMBDA_TELEMETRY_LOG_FD: "x" }), { format: "TEXT", minLevel: levels.TRACE, fd: undefined });
    assert.deepEqual(logSettings({ AWS_LAMBDA_MAX_CONCURRENCY: "4" }, 9), { format: "JSON", minLevel: levels.TRACE, fd: 9 });
  });

  test("a JSON frame: the JSON type OR-ed with the level's bits, the line without a newline", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "frames-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const fd = openSync(join(dir, "frames"), "w");
    new FunctionLog({ format: "JSON", minLevel: levels.TRACE, fd }).write(levels.ERROR, ["ü"]);
    closeSync(fd);
    const bytes = readFileSync(join(dir, "frames"));
    assert.equal(bytes.readUInt32BE(0), (0xa55a0002 | 20) >>> 0);
    assert.equal(bytes.readUInt32BE(4), bytes.length - 16);
    const record = JSON.parse(bytes.toString("utf8", 16));
    assert.equal(record.message, "ü");
    assert.equal(Number(bytes.readBigUInt64BE(8) / 1000n), Date.parse(record.timestamp));
  });
});
