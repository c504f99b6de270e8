// `micro-lambda invoke` and `micro-lambda serve`: the emulator (src/emulator/) from the command line.
import { readFileSync } from "node:fs";
import { Emulator, type EmulatorOptions } from "../emulator/index.ts";
import { functionCommand, UsageError } from "./args.ts";

const emulatorOptions = `  --timeout SECONDS    the function's timeout (default 3, or AWS_LAMBDA_FUNCTION_TIMEOUT)
  --memory MB          the function's memory size (default 128, or AWS_LAMBDA_FUNCTION_MEMORY_SIZE)
  --concurrency N      invocations at once, as on Lambda Managed Instances (default 1)
  --env NAME=VALUE     add to the function's environment (repeatable)
  --extensions DIR     start the Lambda extensions in DIR (as /opt/extensions) before the function
  --log-format FORMAT  Text or JSON: the function's AWS_LAMBDA_LOG_FORMAT, as Lambda's logging config sets it
  --log-level LEVEL    TRACE, DEBUG, INFO, WARN, ERROR or FATAL: the function's AWS_LAMBDA_LOG_LEVEL
  --telemetry-log-fd   give the function a telemetry log fd (_LAMBDA_TELEMETRY_LOG_FD), as Lambda does: each
                       record the runtime writes there is one log event, however many lines it has
AWS_LAMBDA_FUNCTION_NAME and AWS_REGION (from --env or the environment) name the function and its region.

FUNCTION is a built bootstrap (dist/NAME/ARCH/bootstrap), a TypeScript or JavaScript main file (run
under tsx), or after --, any command that runs a Lambda runtime.`;

export const invokeUsage = `usage: micro-lambda invoke [--event JSON | --event -] [options] FUNCTION

Runs FUNCTION once behind a local Runtime API with the event (default {}), prints the response on stdout,
and exits 0, or 1 when the function failed. --event - reads the event from stdin.

options:
${emulatorOptions}`;

export const serveUsage = `usage: micro-lambda serve [options] FUNCTION

Serves Lambda's Invoke API for FUNCTION, as aws-lambda-rie does:
  curl -d '{"name":"you"}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations

options:
  --port N             port to listen on (default 9000; 0 picks a free one)
  --host ADDRESS       address to bind (default 127.0.0.1)
${emulatorOptions}`;

interface Parsed {
  options: EmulatorOptions;
  event?: string;
}

/** Parses the options `invoke` and `serve` share; `--event` only for invoke, `--port`/`--host` only for serve. */
export function parseEmulatorArgs(argv: string[], command: "invoke" | "serve"): Parsed {
  const options: EmulatorOptions = { command: [], port: 9000, output: process.stderr, env: {} };
  let event: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    const number = () => {
      const text = value();
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n) || n < 0) throw new UsageError(`${arg} needs a non-negative number, got ${text}`);
      return n;
    };
    if (arg === "--") {
      options.command.push(...argv.slice(i + 1));
      break;
    } else if (arg === "--event" && command === "invoke") event = value();
    else if (arg === "--port" && command === "serve") options.port = number();
    else if (arg === "--host" && command === "serve") options.host = value();
    else if (arg === "--timeout") options.timeoutMs = number() * 1000;
    else if (arg === "--memory") options.memoryMB = number();
    else if (arg === "--concurrency") options.concurrency = Math.max(1, Math.floor(number()));
    else if (arg === "--extensions") options.extensionsDir = value();
    else if (arg === "--log-format") options.logFormat = oneOf(arg, value(), ["Text", "JSON"]);
    else if (arg === "--log-level") options.logLevel = oneOf(arg, value().toUpperCase(), ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]);
    else if (arg === "--telemetry-log-fd") options.telemetryLogFd = true;
    else if (arg === "--env") {
      const text = value();
      const equals = text.indexOf("=");
      if (equals < 1) throw new UsageError(`--env needs NAME=VALUE, got ${text}`);
      options.env![text.slice(0, equals)] = text.slice(equals + 1);
    } else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    else {
      options.command.push(...functionCommand(arg), ...argv.slice(i + 1));
      break;
    }
  }
  if (options.command.length === 0) throw new UsageError("no function given");
  return { options, event };
}

function oneOf<const T extends string>(option: string, text: string, allowed: readonly T[]): T {
  if (!allowed.includes(text as T)) throw new UsageError(`${option} needs one of ${allowed.join(", ")}, got ${text}`);
  return text as T;
}

export async function invoke(argv: string[]): Promise<number> {
  const { options, event: eventText = "{}" } = parseEmulatorArgs(argv, "invoke");
  const text = eventText === "-" ? readFileSync(0, "utf8") : eventText;
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--event needs JSON: ${(error as Error).message}`);
  }
  const emulator = await Emulator.start({ ...options, port: 0 });
  const result = await emulator.invoke(event);
  await emulator.close();
  process.stdout.write(result.payload.toString() + "\n");
  return result.ok ? 0 : 1;
}

export async function serve(argv: string[]): Promise<number> {
  const { options } = parseEmulatorArgs(argv, "serve");
  const emulator = await Emulator.start(options);
  console.error(`micro-lambda: Runtime API and Invoke API on ${emulator.url}; invoke with:\n  curl -d '{}' ${emulator.url}/2015-03-31/functions/function/invocations`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void emulator.close().then(() => process.exit(0)));
  return new Promise(() => {});
}
