// The corpus of real applications (test/fixtures/corpus/APP: main.ts, events.json): each built with and without --snapshot answers every event the same.
//
// Both builds of every application on x86_64, and the snapshot build of one on arm64 (under qemu-user). Each
// build runs under the emulator against the same local fakes (an HTTP echo service and a fake AWS endpoint), and
// the whole results are compared; only what differs per run (Fastify's `date` header) is masked.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { build, command, type Arch } from "./bootstraps.ts";
import { root, startEmulator } from "./helpers.ts";

const corpus = join(root, "test/fixtures/corpus");
const apps = readdirSync(corpus).sort();

/** What every application must answer, in both builds: a spot check that the comparison is not of two failures. */
const expected: Record<string, (results: unknown[]) => void> = {
  express: (r) => {
    assert.equal(json(r[0]).statusCode, 200);
    assert.deepEqual(JSON.parse(json(r[0]).body), { id: "1", item: "coffee", quantity: 2 });
    assert.equal(json(r[1]).statusCode, 201);
    assert.equal(json(r[3]).statusCode, 200, "API Gateway v1 event");
    assert.equal(json(r[4]).statusCode, 400);
  },
  fastify: (r) => {
    assert.equal(json(r[1]).statusCode, 201);
    assert.match(json(r[2]).body, /FST_ERR_VALIDATION/);
  },
  hono: (r) => assert.equal(JSON.parse(json(r[0]).body).message, "Hello, ada!"),
  "middy-powertools": (r) => {
    assert.equal(json(r[0]).total, 11);
    assert.equal(json(r[0]).httpRequest, "captureHTTPsRequest", "the X-Ray SDK's wrapper is on the real node:http");
    assert.deepEqual(JSON.parse(json(r[0]).echo), { method: "GET", url: "/orders/o-1" });
  },
  "aws-sdk": (r) => {
    assert.equal(json(r[0]).region, "eu-west-3", "the sandbox's region, read after the restore");
    assert.deepEqual(json(r[1]), { buckets: ["photos"], item: { id: "1", total: 12.5 }, queues: ["http://sqs.local/jobs"], secret: "s3cret" });
  },
  axios: (r) => {
    assert.deepEqual(json(r[0]), { status: 200, contentType: "application/json", data: { method: "GET", url: "/orders/1" } });
    assert.equal(json(r[2]).data.url, "/orders/2", "followed the redirect");
    assert.equal(json(r[3]).status, 404);
  },
  zod: (r) => {
    assert.equal(json(r[0]).ok, true);
    assert.equal(json(r[1]).ok, false);
    assert.equal(json(r[3]).ok, false);
  },
};

test("the corpus holds the applications the issue lists, each with events", () => {
  assert.deepEqual(apps, Object.keys(expected).sort());
  for (const app of apps) assert.ok(events(app).length >= 3, app);
});

describe("every corpus application answers the same with and without --snapshot", { concurrency: 2 }, () => {
  for (const app of apps) {
    test(`${app}: x86_64, default build and --snapshot`, async (t) => {
      const [plain, snapshot] = await Promise.all([corpusBuild(app, "x86_64", []), corpusBuild(app, "x86_64", ["--snapshot"])]);
      const fakes = await startFakes(t);
      const fromPlain = await answers(t, app, plain, "x86_64", fakes);
      expected[app]!(fromPlain);
      assert.deepEqual(await answers(t, app, snapshot, "x86_64", fakes), fromPlain);
    });
  }

  test("express: arm64 --snapshot (under qemu) answers as the x86_64 default build", async (t) => {
    const [plain, snapshot] = await Promise.all([corpusBuild("express", "x86_64", []), corpusBuild("express", "arm64", ["--snapshot"])]);
    const fakes = await startFakes(t);
    assert.deepEqual(await answers(t, "express", snapshot, "arm64", fakes), await answers(t, "express", plain, "x86_64", fakes));
  });
});

// ---- helpers ---------------------------------------------------------------------------------------

/** A corpus build, named corpus-APP[-snapshot] in dist/: shared with the benchmark, which reads the same names. */
function corpusBuild(app: string, arch: Arch, flags: string[]): Promise<string> {
  const name = ["corpus", app, ...flags.map((flag) => flag.replace(/^--/, ""))].join("-");
  return build(`test/fixtures/corpus/${app}/main.ts`, arch, [...flags, "--name", name]).then((built) => built.executable);
}

function events(app: string): unknown[] {
  return JSON.parse(readFileSync(join(corpus, app, "events.json"), "utf8"));
}

/** Every event of `app` sent to `executable` under the emulator, in order: each result, or the error, per-run values masked. */
async function answers(t: TestContext, app: string, executable: string, arch: Arch, fakes: Fakes): Promise<unknown[]> {
  const emulator = await startEmulator(t, {
    command: command(executable, arch),
    initTimeoutMs: 60_000,
    timeoutMs: 30_000,
    region: "eu-west-3",
    env: { ECHO_URL: fakes.echo, AWS_ENDPOINT_URL: fakes.aws, AWS_ACCESS_KEY_ID: "AKIDTEST", AWS_SECRET_ACCESS_KEY: "secret" },
  });
  const out: unknown[] = [];
  for (const event of events(app)) {
    const answer = await emulator.invoke(event);
    out.push(answer.ok ? mask(answer.result) : { error: answer.error });
  }
  await emulator.close();
  return out;
}

/** Per-run values: the `date` header of an HTTP response. */
function mask(result: unknown): unknown {
  if (result && typeof result === "object" && "headers" in result && result.headers && typeof result.headers === "object" && "date" in result.headers) {
    return { ...result, headers: { ...result.headers, date: "(masked)" } };
  }
  return result;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function json(value: unknown): any {
  assert.ok(value && typeof value === "object" && !("error" in value), `a result, not ${JSON.stringify(value)}`);
  return value;
}

interface Fakes {
  echo: string;
  aws: string;
}

/** An HTTP echo service and a fake AWS endpoint (S3, DynamoDB, SQS, Secrets Manager) on 127.0.0.1:0, closed when the test ends. */
async function startFakes(t: TestContext): Promise<Fakes> {
  const echo = await listen(t, (req, res, body) => {
    const url = new URL(req.url!, "http://echo");
    if (url.pathname === "/redirect") return void res.writeHead(302, { location: url.searchParams.get("to")! }).end();
    if (url.pathname === "/missing") return void res.writeHead(404, { "content-type": "text/plain" }).end("not here");
    reply(res, "application/json", { method: req.method, url: req.url, ...(body ? { body: JSON.parse(body) } : {}) });
  });
  const aws = await listen(t, (req, res) => {
    const target = String(req.headers["x-amz-target"] ?? "");
    if (target === "DynamoDB_20120810.GetItem") return reply(res, "application/x-amz-json-1.0", { Item: { id: { S: "1" }, total: { N: "12.5" } } });
    if (target === "AmazonSQS.ListQueues") return reply(res, "application/x-amz-json-1.0", { QueueUrls: ["http://sqs.local/jobs"] });
    if (target === "secretsmanager.GetSecretValue") return reply(res, "application/x-amz-json-1.1", { Name: "db", SecretString: "s3cret" });
    res.writeHead(200, { "content-type": "application/xml" });
    res.end('<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets><Bucket><Name>photos</Name></Bucket></Buckets></ListAllMyBucketsResult>');
  });
  return { echo, aws };
}

async function listen(t: TestContext, handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    handle(req, res, body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function reply(res: ServerResponse, type: string, body: unknown): void {
  res.writeHead(200, { "content-type": type }).end(JSON.stringify(body));
}
