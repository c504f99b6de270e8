// The differential test: the same handlers and events under AWS's own Node client (npm aws-lambda-ric 4.0.2, what the
// managed nodejs24.x runtime runs, on the bootstrap's Node 24 binary), under micro-lambda run by tsx, and in the x86_64
// bootstrap, against one fake Runtime API. What each posts (/response, /error, /init/error: bodies and headers) and
// prints (timestamps and stack frames masked) must be equal, or differ exactly as the README's parity table says.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { ric } from "./bench/lib/ric.ts";
import { targetNode } from "./bench/lib/builds.ts";
import { bootstrap } from "./bootstraps.ts";
import { accepted, event, fakeRuntimeApi, root, runToExit } from "./helpers.ts";

const fixtures = join(root, "test/fixtures/parity");
const entry = "test/fixtures/parity/main.ts";

/** One invocation of the table: the event, and the headers it comes with besides the request id and deadline. */
interface Row {
  name: string;
  event: Record<string, unknown> | string;
  headers?: Record<string, string>;
}

const clientContext = { client: { appTitle: "Zürich → Genève", installationId: "i-1" }, Custom: { emoji: "😀" }, env: { locale: "de-CH" } };
const identity = { cognitoIdentityId: "eu-central-1:Zoë", cognitoIdentityPoolId: "eu-central-1:pool-ü" };

const rows: Row[] = [
  { name: "console methods, one string each", event: { action: "log-levels" } },
  { name: "format specifiers and several arguments", event: { action: "log-format" } },
  { name: "objects, arrays, Maps, numbers, null", event: { action: "log-objects" } },
  { name: "Errors logged, alone and among other arguments", event: { action: "log-errors" } },
  { name: "multi-line text", event: { action: "log-multiline" } },
  { name: "logging after an await", event: { action: "log-after-await" } },
  { name: "a JSON result", event: { action: "echo", value: { a: [1, "two", null], ü: "€" } } },
  { name: "an undefined result", event: { action: "undefined" } },
  { name: "a thrown Error", event: { action: "throw-error" } },
  { name: "a custom error class with own fields", event: { action: "throw-custom" } },
  { name: "a thrown string", event: { action: "throw-string" } },
  { name: "a thrown null", event: { action: "throw-null" } },
  { name: "a thrown plain object", event: { action: "throw-object" } },
  { name: "a rejection after an await", event: { action: "reject-error" } },
  { name: "a circular result", event: { action: "circular" } },
  { name: "a BigInt in the result", event: { action: "bigint" } },
  {
    name: "non-ASCII client context, identity and tenant id",
    event: { action: "context" },
    headers: { "lambda-runtime-client-context": JSON.stringify(clientContext), "lambda-runtime-cognito-identity": JSON.stringify(identity), "lambda-runtime-aws-tenant-id": "tenant-ü" },
  },
  { name: "a log line with a tenant id", event: { action: "log-tenant" }, headers: { "lambda-runtime-aws-tenant-id": "tenant-7" } },
];

type Format = "Text" | "JSON";
type RuntimeName = "aws-lambda-ric" | "micro-lambda (tsx)" | "micro-lambda (bootstrap)";

interface Post {
  path: string;
  headers: Record<string, unknown>;
  body: unknown;
}

/** What one run did: the posts, and the lines printed, grouped by the request id each carries ("-" during init). */
interface Observed {
  posts: Post[];
  lines: Map<string, string[]>;
  /** Lines that carry no request id: output not written through console (Node's own crash report, for one). */
  raw: string[];
  /** How the run ended: it answered every event and asked for more (then it was stopped), or it exited or was killed by a signal by itself. */
  ended: "asked for more" | `exit ${number}` | `signal ${string}`;
  stderr: string;
}

interface Run {
  format: Format;
  level?: string;
  init?: "log" | "throw";
  rows: Row[];
}

/**
 * Runs `command` against a fresh fake Runtime API serving `run.rows` in order, until every event has been answered
 * and the next /next arrives (then it is killed), or it exits by itself.
 */
async function observe(command: string[], env: Record<string, string>, run: Run): Promise<Observed> {
  const posts: Post[] = [];
  let served = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const hanging: ServerResponse[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method === "GET" && req.url === "/2018-06-01/runtime/invocation/next") {
      const row = run.rows[served];
      if (!row) {
        hanging.push(res);
        return done();
      }
      served++;
      const headers: Record<string, string> = {
        // Lambda sends it; the Node client's native part crashes (SIGSEGV, strlen of NULL) on an answer without it.
        "content-type": "application/json",
        "lambda-runtime-aws-request-id": `request-${served}`,
        "lambda-runtime-deadline-ms": String(Date.now() + 60_000),
        "lambda-runtime-invoked-function-arn": "arn:aws:lambda:eu-central-1:012345678912:function:parity",
        "lambda-runtime-trace-id": `Root=1-5759e988-bd862e3fe1be46a99427279${served % 10};Parent=53995c3f42cd8ad8;Sampled=1`,
      };
      // Lambda sends header text as UTF-8 bytes; node:http writes a string's characters as single bytes (latin1).
      for (const [name, value] of Object.entries(row.headers ?? {})) headers[name] = Buffer.from(value, "utf8").toString("latin1");
      for (const [name, value] of Object.entries(headers)) if (value === "") delete headers[name]; // "" leaves a header out
      return res.writeHead(200, headers).end(typeof row.event === "string" ? row.event : JSON.stringify(row.event));
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // kept as text
    }
    posts.push({ path: req.url!, headers: pick(req.headers), body });
    res.writeHead(202).end('{"status":"OK"}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const [file, ...args] = command;
  const child = spawn(file!, args, {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_LAMBDA_RUNTIME_API: address,
      AWS_LAMBDA_FUNCTION_NAME: "parity",
      AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
      AWS_LAMBDA_LOG_GROUP_NAME: "/aws/lambda/parity",
      AWS_LAMBDA_LOG_STREAM_NAME: "2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
      AWS_REGION: "eu-central-1",
      AWS_LAMBDA_LOG_FORMAT: run.format,
      ...(run.level ? { AWS_LAMBDA_LOG_LEVEL: run.level } : {}),
      ...(run.init ? { PARITY_INIT: run.init } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<Observed["ended"]>((resolve) => child.on("close", (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code ?? 0}`)));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  // Either it answered everything and asked for more (then it is stopped here: exitCode null), or it exited by itself.
  const answered = await Promise.race([finished.then(() => true), exited.then(() => false)]);
  child.kill("SIGKILL");
  const ended = answered ? "asked for more" : await exited;
  await exited;
  clearTimeout(timer);
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return { posts, ...group(stdout, run.format), ended, stderr };
}

/** The headers worth comparing (the rest is transport: host, content-length, user-agent...). */
function pick(headers: IncomingHttpHeaders): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const name of ["content-type", "lambda-runtime-function-error-type"]) if (headers[name] !== undefined) kept[name] = headers[name];
  const cause = headers["lambda-runtime-function-xray-error-cause"];
  if (typeof cause === "string" && cause !== "") {
    // Paths, line numbers and the working directory are where each runtime's files are: compare what was thrown.
    const parsed = JSON.parse(cause) as { exceptions: { type?: string; message?: string; stack: unknown[] }[] };
    kept["xray-error-cause"] = parsed.exceptions.map(({ type, message, stack }) => ({ type, message, frames: Array.isArray(stack) }));
  } else if (cause === "") kept["xray-error-cause"] = "";
  return kept;
}

/** Stack frames are where each runtime's files are; everything else must match. */
function maskFrames(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/(\r|\n)? {4}at [^\r\n]*/g, "").replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<time>");
  if (Array.isArray(value)) return value.filter((item) => !(typeof item === "string" && /^ {4}at /.test(item))).map(maskFrames);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, maskFrames(item)]));
  return value;
}

function group(stdout: string, format: Format): { lines: Map<string, string[]>; raw: string[] } {
  const lines = new Map<string, string[]>();
  const raw: string[] = [];
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    let requestId: string | undefined;
    let masked: string | undefined;
    if (format === "JSON" && line.startsWith("{")) {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        requestId = String(record.requestId);
        masked = JSON.stringify(maskFrames(record));
      } catch {
        // not one of the runtime's lines
      }
    } else {
      const fields = /^\d{4}-\d\d-\d\dT[\d:.]+Z\t([^\t]*)\t/.exec(line);
      if (fields) {
        requestId = fields[1]!;
        masked = maskFrames(line) as string;
      }
    }
    if (requestId === undefined || masked === undefined) raw.push(line);
    else lines.set(requestId, [...(lines.get(requestId) ?? []), masked]);
  }
  return { lines, raw };
}

/** A run's posts and lines, frames masked, for one comparison. */
function comparable(observed: Observed): { posts: unknown; lines: Record<string, string[]> } {
  return { posts: maskFrames(observed.posts), lines: Object.fromEntries(observed.lines) };
}

/**
 * What micro-lambda is expected to produce, given what aws-lambda-ric produced: the documented, deliberate differences
 * (README, "Parity with the managed runtime"), applied to the reference. Every other byte must be equal.
 */
function expectedFrom(reference: ReturnType<typeof comparable>, run: Run): ReturnType<typeof comparable> {
  const posts = (reference.posts as Post[]).map((post) => {
    if (!post.path.endsWith("/error")) return post;
    const body = post.body as { errorType: string; errorMessage: string };
    const headers: Record<string, unknown> = { ...post.headers, "content-type": "application/vnd.aws.lambda.error+json", "lambda-runtime-function-error-type": body.errorType };
    // A thrown plain object: its content, where the Node client says "[object Object]".
    if (body.errorType === "object" && body.errorMessage === "[object Object]") return { ...post, headers, body: { ...body, errorMessage: "{ code: 7 }" } };
    return { ...post, headers };
  });
  const lines = Object.fromEntries(
    Object.entries(reference.lines).map(([requestId, list]) => [
      requestId,
      list.map((line) => {
        // The tenant id in JSON lines: the Node client 4.0.2 never puts it where its logger looks for it.
        const tenantId = tenantOf(run, requestId);
        if (run.format === "JSON" && tenantId) {
          const { timestamp, level, requestId: id, ...rest } = JSON.parse(line) as Record<string, unknown>;
          return JSON.stringify({ timestamp, level, requestId: id, tenantId, ...rest });
        }
        return line;
      }),
    ]),
  );
  return { posts, lines };
}

/** The tenant id the event of `requestId` came with (request-N is row N-1). */
function tenantOf(run: Run, requestId: string): string | undefined {
  const index = Number(/^request-(\d+)$/.exec(requestId)?.[1]) - 1;
  return run.rows[index]?.headers?.["lambda-runtime-aws-tenant-id"];
}

const runtimes: { name: RuntimeName; command: () => Promise<{ command: string[]; env: Record<string, string> }> }[] = [];

describe("parity with aws-lambda-ric 4.0.2 (the managed nodejs24.x runtime's client)", () => {
  let reference: { command: string[]; env: Record<string, string> } | undefined;
  let unavailable = "";
  before(async () => {
    // The bootstrap first: its build fetches the target Node, which the Node client is built for and run by.
    const executable = await bootstrap(entry, "x86_64", ["--name", "parity"]);
    const peer = await ric();
    if (!peer.ok) unavailable = peer.reason;
    else reference = { command: [targetNode(), join(peer.dir, "index.mjs")], env: { _HANDLER: "handlers.handler", LAMBDA_TASK_ROOT: fixtures } };
    runtimes.push(
      // One process (tsx's CLI would start a second one, which a kill would leave holding the output pipe).
      { name: "micro-lambda (tsx)", command: async () => ({ command: [process.execPath, "--import", "tsx", join(root, entry)], env: {} }) },
      { name: "micro-lambda (bootstrap)", command: async () => ({ command: [executable], env: {} }) },
    );
  });

  /** Runs `run` under the Node client and under each micro-lambda, and hands each pair to `check`. */
  async function differential(run: Run, check: (micro: Observed, reference: Observed, name: RuntimeName) => void): Promise<void> {
    assert.ok(reference, `aws-lambda-ric 4.0.2 could not be installed: ${unavailable}`);
    const expected = await observe(reference.command, reference.env, run);
    const observed = await Promise.all(runtimes.map(async (runtime) => [runtime.name, await observe((await runtime.command()).command, {}, run)] as const));
    for (const [name, micro] of observed) check(micro, expected, name);
  }

  for (const format of ["Text", "JSON"] as const) {
    test(`${format} logs: every row answers and prints as under the Node client (init lines included)`, async () => {
      const run: Run = { format, init: "log", rows };
      await differential(run, (micro, reference, name) => {
        assert.equal(reference.posts.length, rows.length, `the Node client answered every row: ${JSON.stringify(reference.posts.map((p) => p.path))}`);
        assert.deepEqual(comparable(micro), expectedFrom(comparable(reference), run), name);
        assert.deepEqual(micro.raw, [], `${name}: every line carries a request id`);
      });
    });

    test(`${format} logs at each level: lines below AWS_LAMBDA_LOG_LEVEL are dropped as under the Node client`, async () => {
      for (const level of ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]) {
        const run: Run = { format, level, rows: [rows[0]!, rows.find((row) => row.name === "a thrown Error")!] };
        await differential(run, (micro, reference, name) => {
          assert.deepEqual(comparable(micro), expectedFrom(comparable(reference), run), `${name} at ${level}`);
        });
      }
    });

    test(`${format} logs: an init failure is posted to /init/error and logged as under the Node client`, async () => {
      const run: Run = { format, init: "throw", rows: [rows[0]!] };
      await differential(run, (micro, reference, name) => {
        assert.equal(reference.posts[0]?.path, "/2018-06-01/runtime/init/error");
        const expected = expectedFrom(comparable(reference), run);
        // The Node client posts its init error as application/json; micro-lambda as Lambda's error type (as on /error).
        (expected.posts as Post[])[0]!.headers["content-type"] = "application/vnd.aws.lambda.error+json";
        assert.deepEqual(comparable(micro), expected, name);
        assert.equal(micro.ended, "exit 1");
        assert.equal(reference.ended, "exit 1");
      });
    });
  }

  for (const [action, errorType, message] of [
    ["uncaught", "SyntaxError", "thrown from a timer"],
    ["unhandled-rejection", "Runtime.UnhandledPromiseRejection", "nobody caught this"],
  ] as const) {
    test(`${action} during an invocation: the Node client dies without answering; micro-lambda answers with the error, then exits`, async () => {
      const run: Run = { format: "Text", rows: [{ name: action, event: { action } }] };
      await differential(run, (micro, reference, name) => {
        assert.deepEqual(reference.posts, [], "the Node client 4.0.2 posts nothing: Lambda reports Runtime.ExitError to the caller");
        assert.equal(reference.ended, "exit 1");
        assert.match(reference.stderr, new RegExp(message));
        assert.equal(micro.posts.length, 1, name);
        const [post] = micro.posts;
        assert.equal(post!.path, "/2018-06-01/runtime/invocation/request-1/error");
        assert.deepEqual({ ...(post!.body as object), trace: undefined }, { errorType, errorMessage: message, trace: undefined });
        assert.equal(micro.ended, "exit 1", name);
        const lines = micro.lines.get("request-1") ?? [];
        assert.match(lines.join("\n"), action === "uncaught" ? /\tERROR\tUncaught Exception \t\{"errorType":"SyntaxError"/ : /\tERROR\tUnhandled Promise Rejection \t\{"errorType":"Error"/, name);
      });
    });
  }

  for (const [what, row, errorType] of [
    ["an event that is not JSON", { name: "malformed event", event: "{not json" }, "Runtime.MalformedEvent"],
    ["a client-context header that is not JSON", { name: "malformed client context", event: { action: "echo", value: 1 }, headers: { "lambda-runtime-client-context": "{oops" } }, "Runtime.MalformedClientContext"],
    ["a /next answer without Content-Type", { name: "no content type", event: { action: "echo", value: "fine" }, headers: { "content-type": "" } }, undefined],
  ] as const) {
    test(`${what}: the Node client dies without answering; micro-lambda ${errorType ? `fails only that invocation (${errorType})` : "answers"}`, async () => {
      const run: Run = { format: "Text", rows: [row as Row, { name: "echo", event: { action: "echo", value: "next" } }] };
      await differential(run, (micro, reference, name) => {
        assert.deepEqual(reference.posts, [], "the Node client posts nothing");
        assert.equal(reference.ended, errorType ? "exit 1" : "signal SIGSEGV");
        assert.equal(micro.ended, "asked for more", name);
        assert.deepEqual(
          micro.posts.map((post) => [post.path, errorType ? (post.body as { errorType?: string }).errorType ?? post.body : post.body]),
          [
            ["/2018-06-01/runtime/invocation/request-1/" + (errorType ? "error" : "response"), errorType ?? "fine"],
            ["/2018-06-01/runtime/invocation/request-2/response", "next"],
          ],
          name,
        );
      });
    });
  }
});

test("@aws-lambda-powertools/logger in a built bootstrap: its own JSON lines come out whole, with the invocation's context", async (t) => {
  const executable = await bootstrap("test/fixtures/parity/powertools.ts", "x86_64", ["--name", "parity-powertools"]);
  let nexts = 0;
  const fake = await fakeRuntimeApi(t, (request) => {
    if (request.method === "POST") return accepted;
    return ++nexts === 1 ? event("pt-1", { item: "x" }, { "lambda-runtime-invoked-function-arn": "arn:aws:lambda:eu-central-1:012345678912:function:parity" }) : { status: 500, body: "done" };
  });
  const exit = await runToExit([executable], { AWS_LAMBDA_RUNTIME_API: fake.address, AWS_LAMBDA_FUNCTION_NAME: "parity", AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128" });
  assert.equal(fake.requests.find((r) => r.url.endsWith("/pt-1/response"))?.body, '"logged"');
  // Powertools writes through a Console of its own (INFO to stdout, ERROR to stderr), not the patched one.
  const records = `${exit.stdout}\n${exit.stderr}`
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const info = records.find((record) => record.message === "handled an item");
  assert.ok(info, exit.stdout);
  assert.equal(info.level, "INFO");
  assert.equal(info.item, "x");
  assert.equal(info.service, "parity");
  assert.equal(info.function_request_id, "pt-1");
  assert.equal(info.function_name, "parity");
  const error = records.find((record) => record.message === "and reported a problem");
  assert.equal(error?.level, "ERROR");
  assert.equal((error?.error as { name?: string; message?: string } | undefined)?.name, "TypeError");
  assert.equal((error?.error as { message?: string }).message, "a powertools error");
});
