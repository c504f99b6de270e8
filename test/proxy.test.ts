// The Runtime API proxy: byte-exact forwarding against a fake upstream and a fake runtime, streaming pass-through,
// failures (upstream down, hooks that throw), and real functions behind one proxy and behind two chained ones.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { test, type TestContext } from "node:test";
import { proxyErrorTypes, runtimeApiProxy, type ProxiedAnswer, type ProxiedEvent, type ProxyOptions, type RuntimeApiProxy } from "../src/proxy/index.ts";
import { arches, bootstrap, build, buildSh, command, hostArch, type Arch } from "./bootstraps.ts";
import { runToExit, startEmulator, tsxCommand } from "./helpers.ts";

const NEXT = "/2018-06-01/runtime/invocation/next";

// ---- fakes ------------------------------------------------------------------------------------------------

/** A proxy on 127.0.0.1:0 whose log lines are kept; closed when the test ends. */
async function startProxy(t: TestContext, options: ProxyOptions & { upstream: string }): Promise<RuntimeApiProxy & { logs: string[] }> {
  const logs: string[] = [];
  const proxy = await runtimeApiProxy({ port: 0, log: (line) => logs.push(line), ...options });
  t.after(() => proxy.close());
  return Object.assign(proxy, { logs });
}

interface Arrived {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
  rawTrailers: string[];
  /** Each chunk as it arrived, with `performance.now()`. */
  chunks: { at: number; bytes: number }[];
}

/** What an upstream answers: status line, raw header list, body, trailers. "hang" never answers; "drop" closes the connection. */
type UpstreamAnswer = { status: number; message?: string; headers: string[]; body?: Buffer | string; trailers?: [string, string][] } | "hang" | "drop";

/** A fake upstream Runtime API that records every request exactly as it arrived (raw headers, chunks, trailers). */
async function fakeUpstream(t: TestContext, answer: (arrived: Arrived, res: ServerResponse) => UpstreamAnswer) {
  const arrived: Arrived[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const record: Arrived = { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), rawTrailers: [], chunks: [] };
    arrived.push(record);
    const parts: Buffer[] = [];
    req.on("data", (chunk: Buffer) => {
      record.chunks.push({ at: performance.now(), bytes: chunk.length });
      parts.push(chunk);
      for (const wake of waiters.splice(0)) wake();
    });
    req.on("end", () => {
      record.body = Buffer.concat(parts);
      record.rawTrailers = req.rawTrailers;
      const reply = answer(record, res);
      if (reply === "hang") return;
      if (reply === "drop") return void req.socket.destroy();
      res.sendDate = false;
      res.writeHead(reply.status, reply.message, reply.headers);
      if (reply.trailers) res.addTrailers(reply.trailers);
      res.end(reply.body);
    });
  });
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    arrived,
    /** Resolves once `bytes` body bytes in all have arrived; rejects after `ms`. */
    received(bytes: () => number, ms: number, what: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what} did not reach the upstream within ${ms} ms`)), ms);
        const check = () => {
          if (bytes() >= 0 && total(arrived) >= bytes()) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

function total(arrived: Arrived[]): number {
  return arrived.reduce((sum, record) => sum + record.chunks.reduce((s, c) => s + c.bytes, 0), 0);
}

interface Received {
  status: number;
  message: string;
  rawHeaders: string[];
  body: Buffer;
  rawTrailers: string[];
}

/** A fake runtime's call: raw header list (spelled as given), optional body; resolves with what came back, exactly. */
function call(agent: Agent, address: string, method: string, path: string, headers: string[], body?: Buffer | string): Promise<Received> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, agent, headers: ["Host", address, ...headers] }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (chunk: Buffer) => parts.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode!, message: res.statusMessage!, rawHeaders: res.rawHeaders, body: Buffer.concat(parts), rawTrailers: res.rawTrailers }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function pairsOf(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** A raw header list without the headers each connection sets for itself. */
function withoutHop(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!["host", "connection", "keep-alive"].includes(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function agent(t: TestContext): Agent {
  const keepAlive = new Agent({ keepAlive: true });
  t.after(() => keepAlive.destroy());
  return keepAlive;
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves as `promise` does, or rejects after 5 s: a missing event fails the test instead of hanging it. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing after 5 s`)), 5000).unref())]);
}

const everyByte = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256));
const errorJson = '{"errorType":"Function.Oops","errorMessage":"x","stackTrace":["a"]}';
const accepted = '{"status":"OK"}';
const forbidden = '{"errorType":"InvalidStateTransition","errorMessage":"init is over"}';

/** A header list ending with the body's Content-Length. */
function sized(list: string[], body: string): string[] {
  return [...list, "Content-Length", String(Buffer.byteLength(body))];
}

// ---- byte-exact forwarding ----------------------------------------------------------------------------------

/** One Runtime API call of each kind the proxy knows, and some it does not, with what the fake upstream answers. */
const calls: { name: string; method: string; path: string; headers: string[]; body?: Buffer | string; answer: Exclude<UpstreamAnswer, "hang" | "drop"> }[] = [
  {
    name: "GET /next",
    method: "GET",
    path: NEXT,
    headers: ["User-Agent", "fake-runtime/1.0", "Accept", "*/*"],
    answer: {
      status: 200,
      message: "OK",
      headers: [
        "Content-Type", "application/json",
        "Lambda-Runtime-Aws-Request-Id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
        "Lambda-Runtime-Deadline-Ms", "1542409706888",
        "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime",
        "Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        "Lambda-Runtime-Client-Context", '{"client":{"installationId":"i"},"env":{"locale":"fr"}}',
        "Lambda-Runtime-Cognito-Identity", '{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}',
        "Lambda-Runtime-Aws-Tenant-Id", "tenant-42",
        "Lambda-Runtime-Invocation-Id", "0f4e2d1c-aaaa-bbbb-cccc-123456789abc",
        "X-Repeat", "one",
        "x-repeat", "two",
        "Content-Length", String(everyByte.length),
      ],
      body: everyByte,
    },
  },
  {
    name: "POST /response",
    method: "POST",
    path: "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response",
    headers: ["Content-Type", "application/octet-stream", "Lambda-Runtime-Invocation-Id", "0f4e2d1c-aaaa-bbbb-cccc-123456789abc", "X-Repeat", "a", "x-repeat", "b", "Content-Length", String(everyByte.length)],
    body: everyByte,
    answer: { status: 202, message: "Accepted", headers: sized(["Content-Type", "application/json"], accepted), body: accepted },
  },
  {
    name: "POST /error",
    method: "POST",
    path: "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/error",
    headers: sized(["Content-Type", "application/vnd.aws.lambda.error+json", "Lambda-Runtime-Function-Error-Type", "Function.Oops", "Lambda-Runtime-Invocation-Id", "0f4e2d1c"], errorJson),
    body: errorJson,
    answer: { status: 202, message: "Accepted", headers: sized(["Content-Type", "application/json"], accepted), body: accepted },
  },
  {
    name: "POST /init/error (answered 403)",
    method: "POST",
    path: "/2018-06-01/runtime/init/error",
    headers: sized(["Content-Type", "application/vnd.aws.lambda.error+json", "Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError"], errorJson),
    body: errorJson,
    answer: { status: 403, message: "Forbidden", headers: sized(["Content-Type", "application/json"], forbidden), body: forbidden },
  },
  {
    name: "POST /response answered 413",
    method: "POST",
    path: "/2018-06-01/runtime/invocation/too-big/response",
    headers: ["Content-Length", "3"],
    body: "big",
    answer: { status: 413, message: "Payload Too Large", headers: ["Content-Length", "0"] },
  },
  {
    name: "GET /next answered 500",
    method: "GET",
    path: NEXT,
    headers: [],
    answer: { status: 500, message: "Internal Server Error", headers: sized(["Content-Type", "text/plain"], "broken"), body: "broken" },
  },
  {
    name: "GET /next answered chunked, with a trailer",
    method: "GET",
    path: NEXT,
    headers: [],
    answer: { status: 200, message: "OK", headers: ["Lambda-Runtime-Aws-Request-Id", "chunky", "Transfer-Encoding", "chunked", "Trailer", "X-Event-Sum"], body: everyByte, trailers: [["X-Event-Sum", "7"]] },
  },
  {
    name: "an unknown path, chunked both ways, trailers both ways",
    method: "PUT",
    path: "/2099-01-01/something/new?x=1&y=%20",
    headers: ["Transfer-Encoding", "chunked", "Trailer", "X-Checksum", "Lambda-Runtime-Future-Header", "yes"],
    body: everyByte,
    answer: { status: 299, message: "Odd But Fine", headers: ["Transfer-Encoding", "chunked", "Trailer", "X-Sum", "Lambda-Runtime-Other", "1"], body: "ok", trailers: [["X-Sum", "42"]] },
  },
];

for (const mode of ["without hooks (piped)", "with hooks that change nothing (read, shown, sent on)"] as const) {
  test(`byte-exact ${mode}: every call and every answer arrive as they would directly, every header, status and byte`, async (t) => {
    let current = calls[0]!;
    const upstream = await fakeUpstream(t, () => current.answer);
    const shown: string[] = [];
    const hooks: ProxyOptions =
      mode === "without hooks (piped)"
        ? {}
        : {
            onEvent: (event) => void shown.push(`event ${event.requestId}`),
            onResponse: (answer) => void shown.push(`response ${answer.requestId}`),
            onError: (answer) => void shown.push(`error ${answer.requestId}`),
          };
    const proxy = await startProxy(t, { upstream: upstream.address, ...hooks });
    const runtime = agent(t);
    for (const each of calls) {
      current = each;
      const direct = await call(runtime, upstream.address, each.method, each.path, each.headers, each.body);
      const directArrived = upstream.arrived.at(-1)!;
      const via = await call(runtime, proxy.address, each.method, each.path, each.headers, each.body);
      const viaArrived = upstream.arrived.at(-1)!;
      assert.notEqual(viaArrived, directArrived, `${each.name}: the proxy sent nothing upstream`);
      // What the upstream got.
      assert.equal(viaArrived.method, directArrived.method, each.name);
      assert.equal(viaArrived.url, directArrived.url, each.name);
      assert.deepEqual(withoutHop(viaArrived.rawHeaders), withoutHop(directArrived.rawHeaders), `${each.name}: request headers`);
      assert.ok(viaArrived.body.equals(directArrived.body), `${each.name}: request body`);
      assert.deepEqual(viaArrived.rawTrailers, directArrived.rawTrailers, `${each.name}: request trailers`);
      // What the runtime got back.
      assert.equal(via.status, direct.status, each.name);
      assert.equal(via.message, direct.message, each.name);
      assert.deepEqual(withoutHop(via.rawHeaders), withoutHop(direct.rawHeaders), `${each.name}: answer headers`);
      assert.ok(via.body.equals(direct.body), `${each.name}: answer body`);
      assert.deepEqual(via.rawTrailers, direct.rawTrailers, `${each.name}: answer trailers`);
    }
    // The answers really were what the table says (the comparison above is not between two empty things).
    assert.equal(upstream.arrived.length, calls.length * 2);
    assert.deepEqual(withoutHop(upstream.arrived[1]!.rawHeaders), ["User-Agent", "fake-runtime/1.0", "Accept", "*/*"]);
    if (mode !== "without hooks (piped)") {
      assert.deepEqual(shown, ["event 8476a536-e9f4-11e8-9739-2dfe598c3fcd", "response 8476a536-e9f4-11e8-9739-2dfe598c3fcd", "error 8476a536-e9f4-11e8-9739-2dfe598c3fcd", "response too-big", "event chunky"]);
    }
    assert.deepEqual(proxy.logs, []);
  });
}

for (const mode of ["without hooks", "with an onResponse hook that changes nothing"] as const) {
  test(`byte-exact (${mode}): trailers a runtime sends on a chunked, buffered /response reach the upstream`, async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: ["Content-Length", "0"] }));
  const shown: ProxiedAnswer[] = [];
  const proxy = await startProxy(t, { upstream: upstream.address, ...(mode === "without hooks" ? {} : { onResponse: (answer: ProxiedAnswer) => void shown.push(answer) }) });
  const received = await new Promise<number>((resolve, reject) => {
    const [host, port] = proxy.address.split(":");
    const req = request({ host, port: Number(port), method: "POST", path: "/2018-06-01/runtime/invocation/r/response", headers: ["Host", proxy.address, "Transfer-Encoding", "chunked", "Trailer", "X-Checksum"] }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    req.write("part one;");
    req.addTrailers([["X-Checksum", "abc123"]]);
    req.end("part two");
  });
  assert.equal(received, 202);
  assert.equal(upstream.arrived[0]!.body.toString(), "part one;part two");
  assert.deepEqual(upstream.arrived[0]!.rawTrailers, ["X-Checksum", "abc123"]);
  assert.deepEqual(withoutHop(upstream.arrived[0]!.rawHeaders), ["Transfer-Encoding", "chunked", "Trailer", "X-Checksum"]);
  assert.deepEqual(shown.map((answer) => answer.body?.toString()), mode === "without hooks" ? [] : ["part one;part two"]);
  });
}

// ---- streaming ------------------------------------------------------------------------------------------------

const streamingHeaders = [
  "Content-Type", "application/vnd.awslambda.http-integration-response",
  "Lambda-Runtime-Function-Response-Mode", "streaming",
  "Transfer-Encoding", "chunked",
  "Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
  "Lambda-Runtime-Invocation-Id", "0f4e2d1c-aaaa-bbbb-cccc-123456789abc",
];

/** A fake runtime's streamed POST /response: the request, and the answer to come. */
function streamedPost(address: string, requestId: string) {
  const [host, port] = address.split(":");
  let req!: ReturnType<typeof request>;
  const answer = new Promise<Received>((resolve, reject) => {
    req = request({ host, port: Number(port), method: "POST", path: `/2018-06-01/runtime/invocation/${requestId}/response`, headers: ["Host", address, ...streamingHeaders] }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (chunk: Buffer) => parts.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, message: res.statusMessage!, rawHeaders: res.rawHeaders, body: Buffer.concat(parts), rawTrailers: res.rawTrailers }));
    });
    req.on("error", reject);
  });
  return { req, answer };
}

for (const mode of ["without hooks", "with an onResponse hook"] as const) {
  test(`a streamed response passes through as it is written (${mode}): each chunk reaches the upstream before the next is sent; headers, bytes and trailers intact`, async (t) => {
    const upstream = await fakeUpstream(t, () => ({ status: 202, message: "Accepted", headers: sized(["Content-Type", "application/json"], accepted), body: accepted }));
    const audited: ProxiedAnswer[] = [];
    const proxy = await startProxy(t, { upstream: upstream.address, ...(mode === "with an onResponse hook" ? { onResponse: (answer: ProxiedAnswer) => void audited.push(answer) } : {}) });
    const prelude = JSON.stringify({ statusCode: 200, headers: { "content-type": "text/plain" } }) + "\0".repeat(8);
    const chunks = [Buffer.from(prelude), Buffer.from("first line\n"), Buffer.from("second line\n"), Buffer.alloc(200_000, 0xab), Buffer.from("last")];
    const errorBody = Buffer.from(JSON.stringify({ errorType: "Function.StreamBroke", errorMessage: "gave up after the last chunk", trace: [] })).toString("base64");
    const trailers: [string, string][] = [["Lambda-Runtime-Function-Error-Type", "Function.StreamBroke"], ["Lambda-Runtime-Function-Error-Body", errorBody]];

    const { req, answer } = streamedPost(proxy.address, "stream-1");
    const sentAt: number[] = [];
    let sent = 0;
    for (const [i, chunk] of chunks.entries()) {
      sentAt.push(performance.now());
      req.write(chunk);
      sent += chunk.length;
      // The next chunk is written only once this one is upstream: a proxy that held the body would stall here.
      await upstream.received(() => sent, 5000, `chunk ${i} (${sent} bytes in all)`);
    }
    req.addTrailers(trailers);
    req.end();
    const received = await answer;

    const arrived = upstream.arrived[0]!;
    assert.equal(upstream.arrived.length, 1);
    assert.ok(arrived.body.equals(Buffer.concat(chunks)), "the streamed bytes, in order");
    assert.deepEqual(arrived.rawTrailers, trailers.flat());
    assert.deepEqual(withoutHop(arrived.rawHeaders), streamingHeaders);
    // Chunk timing: each chunk's last byte arrived upstream before the runtime wrote the following chunk.
    let cumulative = 0;
    for (const [i, chunk] of chunks.entries()) {
      cumulative += chunk.length;
      let bytes = 0;
      const arrival = arrived.chunks.find((c) => (bytes += c.bytes) >= cumulative)!;
      if (i + 1 < chunks.length) assert.ok(arrival.at < sentAt[i + 1]!, `chunk ${i} arrived upstream before chunk ${i + 1} was written`);
    }
    assert.equal(received.status, 202);
    assert.equal(received.body.toString(), accepted);
    if (mode === "with an onResponse hook") {
      for (let i = 0; i < 100 && audited.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(audited.length, 1);
      assert.equal(audited[0]!.streamed, true);
      assert.equal(audited[0]!.body, undefined);
      assert.equal(audited[0]!.size, sent);
      assert.equal(audited[0]!.requestId, "stream-1");
    }
  });
}

test("a streamed response larger than the 6 MB buffered limit passes through whole, with backpressure", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  const proxy = await startProxy(t, { upstream: upstream.address, onResponse: () => ({ body: "never used: a stream cannot be rewritten" }) });
  const { req, answer } = streamedPost(proxy.address, "big");
  const sent = createHash("sha256");
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < 128; i++) {
    chunk.fill(i);
    sent.update(chunk);
    if (!req.write(Buffer.from(chunk))) await new Promise((resolve) => req.once("drain", resolve));
  }
  req.end();
  assert.equal((await answer).status, 202);
  assert.equal(upstream.arrived[0]!.body.length, 128 * 64 * 1024);
  assert.equal(createHash("sha256").update(upstream.arrived[0]!.body).digest("hex"), sent.digest("hex"));
});

// ---- failures -------------------------------------------------------------------------------------------------

for (const mode of ["without hooks", "with hooks"] as const) {
  test(`upstream down (${mode}): every call gets a 502 whose body says why, and the proxy logs a line`, async (t) => {
    const port = await closedPort();
    const hooks: ProxyOptions = mode === "with hooks" ? { onEvent: () => {}, onResponse: () => {} } : {};
    const proxy = await startProxy(t, { upstream: `127.0.0.1:${port}`, ...hooks });
    const runtime = agent(t);
    const next = await call(runtime, proxy.address, "GET", NEXT, []);
    assert.equal(next.status, 502);
    const error = JSON.parse(next.body.toString());
    assert.equal(error.errorType, "ProxyUpstreamUnreachable");
    assert.match(error.errorMessage, new RegExp(`GET ${NEXT}: the upstream Runtime API at 127\\.0\\.0\\.1:${port} cannot be reached or broke off: connect ECONNREFUSED`));
    const response = await call(runtime, proxy.address, "POST", "/2018-06-01/runtime/invocation/x/response", ["Content-Length", "5"], "hello");
    assert.equal(response.status, 502);
    assert.match(JSON.parse(response.body.toString()).errorMessage, /POST \/2018-06-01\/runtime\/invocation\/x\/response: .*ECONNREFUSED/);
    assert.equal(proxy.logs.length, 2);
    assert.match(proxy.logs[0]!, /^micro-lambda proxy: GET \/2018-06-01\/runtime\/invocation\/next: the upstream Runtime API at .* cannot be reached/);
  });
}

test("upstream down: a function behind the proxy exits 1 and prints the proxy's 502 answer", async (t) => {
  const port = await closedPort();
  const proxy = await startProxy(t, { upstream: `127.0.0.1:${port}` });
  const exit = await runToExit(await hello(), { AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, MICRO_LAMBDA_RUNTIME_API: proxy.address });
  assert.equal(exit.code, 1);
  assert.match(exit.stderr, /answered 502/);
  assert.match(exit.stderr, new RegExp(`the upstream Runtime API at 127\\.0\\.0\\.1:${port} cannot be reached`));
});

test("upstream drops a waiting /next: the runtime gets a 502, not a hang", async (t) => {
  const upstream = await fakeUpstream(t, () => "drop");
  const proxy = await startProxy(t, { upstream: upstream.address, onEvent: () => {} });
  const next = await call(agent(t), proxy.address, "GET", NEXT, []);
  assert.equal(next.status, 502);
  assert.match(JSON.parse(next.body.toString()).errorMessage, /socket hang up|ECONNRESET/);
  assert.equal(proxy.logs.length, 1);
});

test("upstream breaks off midway through its answer: the runtime's connection breaks too (never a short answer passed off as whole)", async (t) => {
  const upstream = await fakeUpstream(t, (_, res) => {
    res.writeHead(200, ["Lambda-Runtime-Aws-Request-Id", "r1", "Content-Length", "1000"]);
    res.write("only ten b");
    setTimeout(() => res.socket!.destroy(), 20);
    return "hang";
  });
  const proxy = await startProxy(t, { upstream: upstream.address });
  await assert.rejects(call(agent(t), proxy.address, "GET", NEXT, []), /aborted|socket hang up|ECONNRESET/);
  assert.equal(proxy.logs.length, 1);
  assert.match(proxy.logs[0]!, /broke off: aborted/);
});

test("upstream breaks off midway through an event a hook was to read: the runtime gets a 502, as the event never reached it", async (t) => {
  const seen: string[] = [];
  const upstream = await fakeUpstream(t, (_, res) => {
    res.writeHead(200, ["Lambda-Runtime-Aws-Request-Id", "r1", "Content-Length", "1000"]);
    res.write("only ten b");
    setTimeout(() => res.socket!.destroy(), 20);
    return "hang";
  });
  const proxy = await startProxy(t, { upstream: upstream.address, onEvent: (event) => void seen.push(event.requestId) });
  const next = await call(agent(t), proxy.address, "GET", NEXT, []);
  assert.equal(next.status, 502);
  assert.match(JSON.parse(next.body.toString()).errorMessage, /GET \/2018-06-01\/runtime\/invocation\/next: the upstream Runtime API at .* broke off: aborted/);
  assert.deepEqual(seen, []);
  assert.equal(proxy.logs.length, 1);
});

test("a rejected event that cannot be reported upstream (its /error answered 500): the runtime's /next gets a 502 that says so", async (t) => {
  const upstream = await fakeUpstream(t, (arrived) =>
    arrived.method === "GET"
      ? { status: 200, headers: sized(["Lambda-Runtime-Aws-Request-Id", "r1", "Lambda-Runtime-Invocation-Id", "inv-1"], "{}"), body: "{}" }
      : { status: 500, headers: sized([], "sandbox broken"), body: "sandbox broken" },
  );
  const proxy = await startProxy(t, { upstream: upstream.address, onEvent: () => ({ reject: "no" }) });
  const next = await call(agent(t), proxy.address, "GET", NEXT, []);
  assert.equal(next.status, 502);
  assert.match(JSON.parse(next.body.toString()).errorMessage, /POST \/2018-06-01\/runtime\/invocation\/r1\/error answered 500: sandbox broken/);
  // The rejection went upstream as Lambda's error JSON, with the invocation id echoed.
  const reported = upstream.arrived[1]!;
  assert.equal(reported.url, "/2018-06-01/runtime/invocation/r1/error");
  assert.deepEqual(JSON.parse(reported.body.toString()), { errorType: "Runtime.EventRejected", errorMessage: "no", trace: [] });
  const headers = Object.fromEntries(pairsOf(reported.rawHeaders).map(([name, value]) => [name.toLowerCase(), value]));
  assert.equal(headers["lambda-runtime-invocation-id"], "inv-1");
  assert.equal(headers["lambda-runtime-function-error-type"], "Runtime.EventRejected");
  assert.equal(headers["content-type"], "application/vnd.aws.lambda.error+json");
});

test("an onResponse hook that throws on a streamed response is logged; the stream has already gone on whole", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  const proxy = await startProxy(t, {
    upstream: upstream.address,
    onResponse: () => {
      throw new Error("audit store down");
    },
  });
  const { req, answer } = streamedPost(proxy.address, "s1");
  req.write("streamed ");
  req.end("bytes");
  assert.equal((await answer).status, 202);
  assert.equal(upstream.arrived[0]!.body.toString(), "streamed bytes");
  for (let i = 0; i < 100 && proxy.logs.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(proxy.logs, ["micro-lambda proxy: onResponse threw on the streamed response of s1, which had already gone on: Error: audit store down"]);
});

test("the runtime hangs up midway through a response a hook was to read: nothing goes upstream, the hook is not called", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  const shown: ProxiedAnswer[] = [];
  const proxy = await startProxy(t, { upstream: upstream.address, onResponse: (answer) => void shown.push(answer) });
  const [host, port] = proxy.address.split(":");
  const req = request({ host, port: Number(port), method: "POST", path: "/2018-06-01/runtime/invocation/r1/response", headers: ["Host", proxy.address, "Content-Length", "100"] });
  req.on("error", () => {});
  req.write("half of it");
  await new Promise((resolve) => setTimeout(resolve, 50));
  req.destroy();
  // A following call on another connection shows the proxy is still there, and that nothing went up before it.
  const next = await call(agent(t), proxy.address, "POST", "/2018-06-01/runtime/invocation/r2/response", ["Content-Length", "2"], "{}");
  assert.equal(next.status, 202);
  assert.deepEqual(upstream.arrived.map((arrived) => arrived.url), ["/2018-06-01/runtime/invocation/r2/response"]);
  assert.deepEqual(shown.map((answer) => answer.requestId), ["r2"]);
  assert.deepEqual(proxy.logs, []);
});

test("an answer path whose request id is not valid percent-encoding is forwarded untouched, without hooks", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 400, headers: sized([], "bad id"), body: "bad id" }));
  const shown: string[] = [];
  const proxy = await startProxy(t, { upstream: upstream.address, onResponse: (answer) => void shown.push(answer.requestId) });
  const out = await call(agent(t), proxy.address, "POST", "/2018-06-01/runtime/invocation/%E0%A4%A/response", ["Content-Length", "2"], "{}");
  assert.equal(out.status, 400);
  assert.equal(upstream.arrived[0]!.url, "/2018-06-01/runtime/invocation/%E0%A4%A/response");
  assert.deepEqual(shown, []);
});

test("the runtime hangs up while its /next waits: the proxy drops its upstream /next too, so no event goes to nobody", async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  let asked!: () => void;
  const arrived = new Promise<void>((resolve) => (asked = resolve));
  const upstream = await fakeUpstream(t, (_, res) => {
    res.once("close", upstreamClosed);
    asked();
    return "hang";
  });
  const proxy = await startProxy(t, { upstream: upstream.address });
  const [host, port] = proxy.address.split(":");
  const req = request({ host, port: Number(port), path: NEXT, headers: ["Host", proxy.address] });
  req.on("error", () => {});
  req.end();
  await within(arrived, "the upstream /next");
  req.destroy();
  await within(closed, "the upstream /next closing");
  assert.equal(upstream.arrived.length, 1);
  assert.deepEqual(proxy.logs, []); // the proxy's own cancel is not an upstream failure
});

test("keep-alive: a runtime's idle connection stays open as long as its handler runs (past node:http's 5 s default), and the upstream gets one connection", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  let upstreamConnections = 0;
  upstream.server.on("connection", () => upstreamConnections++);
  const proxy = await startProxy(t, { upstream: upstream.address });
  const runtime = agent(t);
  const first = await reusing(runtime, proxy.address);
  // node:http servers close a connection idle for 5 s (keepAliveTimeout), checked about once a second.
  await new Promise((resolve) => setTimeout(resolve, 6500));
  const second = await reusing(runtime, proxy.address);
  assert.deepEqual([first, second], [false, true], "the second call went out on the first one's connection");
  assert.equal(upstreamConnections, 1);
});

/** Posts an answer through `agent`; resolves whether it went out on a connection an earlier call had opened. */
function reusing(agent: Agent, address: string): Promise<boolean> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method: "POST", path: "/2018-06-01/runtime/invocation/r/response", agent, headers: ["Host", address, "Content-Length", "2"] }, (res) => {
      res.resume();
      res.on("end", () => resolve(req.reusedSocket));
    });
    req.on("error", reject);
    req.end("{}");
  });
}

test("configuration mistakes are thrown with what to set: no upstream, a bad port, a proxy that is its own upstream, a port in use", async (t) => {
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  delete process.env.AWS_LAMBDA_RUNTIME_API;
  delete process.env.MICRO_LAMBDA_PROXY_UPSTREAM;
  await assert.rejects(runtimeApiProxy({ port: 0 }), /no upstream Runtime API: Lambda sets AWS_LAMBDA_RUNTIME_API; elsewhere set MICRO_LAMBDA_PROXY_UPSTREAM/);
  await assert.rejects(runtimeApiProxy({ port: 0, upstream: "nonsense" }), /not a host:port address/);
  process.env.MICRO_LAMBDA_PROXY_PORT = "ninety";
  await assert.rejects(runtimeApiProxy({ upstream: "127.0.0.1:9001" }), /MICRO_LAMBDA_PROXY_PORT=ninety: not a port number/);
  const taken = await startProxy(t, { upstream: "127.0.0.1:9001" });
  const port = taken.address.split(":")[1]!;
  process.env.MICRO_LAMBDA_PROXY_PORT = port;
  await assert.rejects(runtimeApiProxy({ upstream: `127.0.0.1:${port}` }), /cannot listen on 127\.0\.0\.1:\d+ \(MICRO_LAMBDA_PROXY_PORT\): .*EADDRINUSE/);
  const free = await closedPort();
  await assert.rejects(runtimeApiProxy({ port: free, upstream: `localhost:${free}` }), /the upstream localhost:\d+ is this proxy itself/);
});

test("configuration from the environment: MICRO_LAMBDA_PROXY_PORT and MICRO_LAMBDA_PROXY_UPSTREAM, else AWS_LAMBDA_RUNTIME_API", async (t) => {
  const saved = { ...process.env };
  t.after(() => {
    process.env = saved;
  });
  const port = await closedPort();
  process.env.MICRO_LAMBDA_PROXY_PORT = String(port);
  process.env.MICRO_LAMBDA_PROXY_UPSTREAM = "127.0.0.1:7001";
  process.env.AWS_LAMBDA_RUNTIME_API = "127.0.0.1:7002";
  const configured = await runtimeApiProxy({ log: () => {} });
  t.after(() => configured.close());
  assert.equal(configured.address, `127.0.0.1:${port}`);
  assert.equal(configured.upstream, "127.0.0.1:7001");
  delete process.env.MICRO_LAMBDA_PROXY_UPSTREAM;
  process.env.MICRO_LAMBDA_PROXY_PORT = "0";
  const lambdas = await runtimeApiProxy({ log: () => {} });
  t.after(() => lambdas.close());
  assert.equal(lambdas.upstream, "127.0.0.1:7002");
});

// ---- real functions behind proxies --------------------------------------------------------------------------

/** The hello example, built, as a command: natively, or under qemu-user for the other architecture. */
const hello = async (arch: Arch = hostArch) => command(await bootstrap("hello", arch), arch);

/** The proxy example, built as a layer with the exec wrapper at its root. */
const proxyLayer = (arch: Arch = hostArch) => build("examples/proxy/main.ts", arch, ["--extension", "--exec-wrapper", "src/proxy/proxy-wrapper.sh", "--name", "proxy"]);

/**
 * The emulator, with the function behind chained proxies, one per `hooks` entry: the function talks to the
 * first (through MICRO_LAMBDA_RUNTIME_API), each proxy's upstream is the next, the last one's is the emulator.
 */
async function behindProxies(t: TestContext, command: string[], ...hooks: ProxyOptions[]) {
  const env: Record<string, string> = {};
  const emulator = await startEmulator(t, { command, env });
  const proxies: (RuntimeApiProxy & { logs: string[] })[] = [];
  let upstream = emulator.address;
  for (const each of [...hooks].reverse()) {
    const proxy = await startProxy(t, { upstream, ...each });
    proxies.unshift(proxy);
    upstream = proxy.address;
  }
  env.MICRO_LAMBDA_RUNTIME_API = upstream; // read when the emulator starts the function, at the first invoke
  return { emulator, proxies };
}

for (const [arch, mode] of [[hostArch, "without hooks"], ...arches.map((arch) => [arch, "with hooks that watch"])] as [Arch, "without hooks" | "with hooks that watch"][]) {
  test(`function → proxy → emulator (${arch} bootstrap, ${mode}): results, errors, every header and the invocation id echo come through`, async (t) => {
    const events: ProxiedEvent[] = [];
    const answers: ProxiedAnswer[] = [];
    const hooks: ProxyOptions = mode === "without hooks" ? {} : { onEvent: (event) => void events.push(event), onResponse: (answer) => void answers.push(answer), onError: (answer) => void answers.push(answer) };
    const { emulator, proxies } = await behindProxies(t, await hello(arch), hooks);
    const ok = await emulator.invoke({ name: "Ada" }, { tenantId: "tenant-7", clientContext: { env: { locale: "fr" } } });
    assert.equal(ok.ok, true, ok.payload.toString());
    assert.deepEqual(ok.result, { message: "Hello, Ada!", requestId: ok.requestId });
    // The function sent back the invocation id it got, which it could only have got through the proxy.
    assert.match(String(ok.answerHeaders?.["lambda-runtime-invocation-id"]), /^[0-9a-f-]{36}$/);
    const malformed = await emulator.invoke(Buffer.from("not json"));
    assert.equal(malformed.ok, false);
    assert.equal(malformed.error?.errorType, "Runtime.MalformedEvent");
    assert.equal(malformed.errorTypeHeader, "Runtime.MalformedEvent");
    const after = await emulator.invoke({ name: "Bo" });
    assert.deepEqual(after.result, { message: "Hello, Bo!", requestId: after.requestId });
    assert.deepEqual(proxies[0]!.logs, []);
    if (mode === "with hooks that watch") {
      assert.deepEqual(events.map((event) => event.body.toString()), ['{"name":"Ada"}', "not json", '{"name":"Bo"}']);
      assert.equal(events[0]!.requestId, ok.requestId);
      assert.equal(events[0]!.headers["lambda-runtime-aws-tenant-id"], "tenant-7");
      assert.equal(events[0]!.headers["lambda-runtime-client-context"], '{"env":{"locale":"fr"}}');
      assert.equal(events[0]!.headers["lambda-runtime-invocation-id"], ok.answerHeaders?.["lambda-runtime-invocation-id"]);
      assert.deepEqual(answers.map((answer) => [answer.kind, answer.requestId === answer.event?.requestId, answer.streamed]), [["response", true, false], ["error", true, false], ["response", true, false]]);
      assert.equal(answers[0]!.size, ok.payload.length);
      assert.ok(answers[0]!.body!.equals(ok.payload));
      assert.ok(answers[0]!.durationMs! >= 0 && answers[0]!.durationMs! < ok.durationMs + 1);
      assert.equal(JSON.parse(answers[1]!.body!.toString()).errorType, "Runtime.MalformedEvent");
    }
  });
}

test("two proxies chained (A's upstream is B): both see every event, and A's rewrite is what B sees and rewrites again", async (t) => {
  const seen: string[] = [];
  const a: ProxyOptions = {
    onEvent: (event) => void seen.push(`A ${event.requestId}`),
    onResponse: (answer) => ({ body: answer.body!.toString().replace("Hello", "Bonjour") }),
  };
  const b: ProxyOptions = {
    onEvent: (event) => void seen.push(`B ${event.requestId}`),
    onResponse: (answer) => ({ body: JSON.stringify({ via: "B", inner: JSON.parse(answer.body!.toString()) }) }),
  };
  const { emulator, proxies } = await behindProxies(t, await hello(), a, b);
  assert.equal(proxies[0]!.upstream, proxies[1]!.address);
  for (const name of ["Ada", "Bo"]) {
    const out = await emulator.invoke({ name });
    assert.deepEqual(out.result, { via: "B", inner: { message: `Bonjour, ${name}!`, requestId: out.requestId } });
    // B, nearer Lambda, gets each event first.
    assert.deepEqual(seen.splice(0), [`B ${out.requestId}`, `A ${out.requestId}`]);
  }
});

test("an event onEvent rejects never reaches the function: the caller gets the rejection, and the next event goes through", async (t) => {
  // A records what the function is handed; B, nearer Lambda, rejects.
  const handed: string[] = [];
  const record: ProxyOptions = { onEvent: (event) => void handed.push(event.body.toString()) };
  const firewall: ProxyOptions = {
    onEvent: (event) => {
      const { name } = JSON.parse(event.body.toString());
      if (name === "Mallory") return { reject: `events naming ${name} are not allowed` };
      if (name === "Eve") return { reject: "no eavesdroppers", errorType: "Function.Forbidden" };
    },
  };
  const { emulator } = await behindProxies(t, await hello(), record, firewall);
  const rejected = await emulator.invoke({ name: "Mallory" });
  assert.equal(rejected.ok, false);
  assert.deepEqual(rejected.error, { errorType: proxyErrorTypes.rejected, errorMessage: "events naming Mallory are not allowed", trace: [] });
  assert.equal(rejected.errorTypeHeader, "Runtime.EventRejected");
  const custom = await emulator.invoke({ name: "Eve" });
  assert.deepEqual(custom.error, { errorType: "Function.Forbidden", errorMessage: "no eavesdroppers", trace: [] });
  const allowed = await emulator.invoke({ name: "Ada" });
  assert.deepEqual(allowed.result, { message: "Hello, Ada!", requestId: allowed.requestId });
  assert.deepEqual(handed, ['{"name":"Ada"}']);
});

test("rewrites: the function gets the rewritten event and headers; the caller gets the rewritten response and error", async (t) => {
  const handed: ProxiedEvent[] = [];
  const record: ProxyOptions = { onEvent: (event) => void handed.push(event) };
  const rewriter: ProxyOptions = {
    onEvent: (event) => ({ body: event.body.toString().replace("Ada", "Grace"), headers: { "Lambda-Runtime-Client-Context": '{"env":{"locale":"en"}}', "X-Added": "1" } }),
    onResponse: (answer) => ({ body: answer.body!.toString().toUpperCase() }),
    onError: (answer) => ({ body: JSON.stringify({ ...JSON.parse(answer.body!.toString()), errorMessage: "[redacted]", trace: [] }) }),
  };
  const { emulator } = await behindProxies(t, await hello(), record, rewriter);
  const out = await emulator.invoke({ name: "Ada" }, { clientContext: { env: { locale: "fr" } } });
  assert.deepEqual(out.result, { MESSAGE: "HELLO, GRACE!", REQUESTID: out.requestId.toUpperCase() });
  assert.equal(handed[0]!.body.toString(), '{"name":"Grace"}');
  assert.equal(handed[0]!.headers["lambda-runtime-client-context"], '{"env":{"locale":"en"}}');
  assert.equal(handed[0]!.headers["x-added"], "1");
  assert.equal(handed[0]!.headers["content-length"], "16");
  assert.equal(handed[0]!.headers["lambda-runtime-aws-request-id"], out.requestId);
  const failed = await emulator.invoke(Buffer.from("not json"));
  assert.deepEqual(failed.error, { errorType: "Runtime.MalformedEvent", errorMessage: "[redacted]", trace: [] });
});

test("a hook that throws fails that invocation (onEvent, onResponse, onError alike) and the next one works", async (t) => {
  const hooks: ProxyOptions = {
    onEvent: (event) => {
      if (event.body.includes("throw in onEvent")) throw new TypeError("cannot read the event");
    },
    onResponse: async (answer) => {
      if (answer.body!.includes("throw in onResponse")) throw new RangeError("audit store is full");
    },
    onError: () => {
      throw "a string, not an Error";
    },
  };
  const { emulator, proxies } = await behindProxies(t, await hello(), hooks);
  const inEvent = await emulator.invoke({ name: "throw in onEvent" });
  assert.deepEqual(inEvent.error, { errorType: "Runtime.ProxyHookError", errorMessage: "the Runtime API proxy's onEvent hook threw TypeError: cannot read the event", trace: [] });
  assert.equal(inEvent.errorTypeHeader, "Runtime.ProxyHookError");
  const fine = await emulator.invoke({ name: "Ada" });
  assert.deepEqual(fine.result, { message: "Hello, Ada!", requestId: fine.requestId });
  const inResponse = await emulator.invoke({ name: "throw in onResponse" });
  assert.deepEqual(inResponse.error, { errorType: "Runtime.ProxyHookError", errorMessage: "the Runtime API proxy's onResponse hook threw RangeError: audit store is full", trace: [] });
  // The function's own answer went nowhere: the invocation id it echoed is on the proxy's /error instead.
  assert.match(String(inResponse.answerHeaders?.["lambda-runtime-invocation-id"]), /^[0-9a-f-]{36}$/);
  const inError = await emulator.invoke(Buffer.from("not json"));
  assert.deepEqual(inError.error, { errorType: "Runtime.ProxyHookError", errorMessage: "the Runtime API proxy's onError hook threw string: a string, not an Error", trace: [] });
  const stillFine = await emulator.invoke({ name: "Bo" });
  assert.deepEqual(stillFine.result, { message: "Hello, Bo!", requestId: stillFine.requestId });
  // One log line per failed invocation, the stack trace with it (it is kept out of what the caller sees).
  assert.equal(proxies[0]!.logs.length, 3);
  assert.match(proxies[0]!.logs[0]!, new RegExp(`^micro-lambda proxy: ${inEvent.requestId}: the Runtime API proxy's onEvent hook threw TypeError: cannot read the event; this invocation fails\\nTypeError: cannot read the event\\n    at `));
});

test("a real streaming function behind the proxy: chunks arrive as written, the prelude intact, an error after the first byte in the trailers", async (t) => {
  const streaming = command(await bootstrap("test/fixtures/streaming/main.ts", hostArch, ["--name", "fixture-streaming"]), hostArch);
  const audited: ProxiedAnswer[] = [];
  const { emulator } = await behindProxies(t, streaming, { onResponse: (answer) => void audited.push(answer) });
  // The function writes its second chunk only once the gate file exists, created here when the first chunk
  // has arrived: a proxy that held the stream would never let this invocation end.
  const scratch = mkdtempSync(join(tmpdir(), "micro-lambda-proxy-stream-"));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const gate = join(scratch, "gate");
  const chunks: string[] = [];
  const gated = await within(
    emulator.invoke(
      { action: "gated", gate },
      {
        onChunk: (chunk) => {
          chunks.push(chunk.toString());
          if (chunks.length === 1) writeFileSync(gate, "");
        },
      },
    ),
    "the gated stream",
  );
  assert.equal(gated.ok, true, JSON.stringify(gated.error));
  assert.equal(gated.streamed, true);
  assert.equal(chunks[0], `first ${gated.requestId};`);
  assert.equal(chunks.join(""), `first ${gated.requestId};second;third`);

  const teapot = await emulator.invoke({ action: "prelude" });
  assert.deepEqual(teapot.head?.prelude, { statusCode: 418, headers: { "Content-Type": "text/plain", "X-Brewed-By": "micro-lambda" }, cookies: ["a=1", "b=2; Secure"] });
  assert.equal(teapot.payload.toString(), "I'm a teapot");

  const failed = await emulator.invoke({ action: "fail-mid" });
  assert.equal(failed.ok, false);
  assert.equal(failed.payload.toString(), "partial;");
  assert.equal(failed.errorTypeHeader, "RangeError");
  assert.equal(failed.error?.errorMessage, "failed after the first byte");

  for (let i = 0; i < 100 && audited.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(
    audited.map((answer) => [answer.requestId, answer.streamed, answer.body, answer.event?.requestId]),
    [gated, teapot, failed].map((out) => [out.requestId, true, undefined, out.requestId]),
  );
  assert.ok(audited[1]!.size > "I'm a teapot".length, "the size counts the prelude too: every byte that passed");
});

test("exec wrapper (managed runtimes): the layer's proxy-wrapper.sh points the runtime's AWS_LAMBDA_RUNTIME_API at the proxy on MICRO_LAMBDA_PROXY_PORT", async (t) => {
  const env: Record<string, string> = {};
  // The wrapper as the layer ships it (/opt/proxy-wrapper.sh), in front of the function's command.
  const wrapper = join((await proxyLayer()).dir, "proxy-wrapper.sh");
  const emulator = await startEmulator(t, { command: [wrapper, ...(await hello())], env });
  const seen: string[] = [];
  const proxy = await startProxy(t, { upstream: emulator.address, onEvent: (event) => void seen.push(event.requestId) });
  env.MICRO_LAMBDA_PROXY_PORT = proxy.address.split(":")[1]!;
  env.MICRO_LAMBDA_RUNTIME_API = ""; // so that only the wrapper's AWS_LAMBDA_RUNTIME_API can lead to the proxy
  const out = await emulator.invoke({ name: "Ada" });
  assert.deepEqual(out.result, { message: "Hello, Ada!", requestId: out.requestId });
  assert.deepEqual(seen, [out.requestId]);
});

// ---- examples/proxy, an extension in the emulator -------------------------------------------------------------

/**
 * The built layer's extensions folder (/opt/extensions). For the other architecture, a folder holding a script of
 * the same name that runs it under qemu-user (the extension registers with its executable's name, "proxy").
 */
async function proxyExtensionDir(t: TestContext, arch: Arch): Promise<string> {
  const { executable } = await proxyLayer(arch);
  if (arch === hostArch) return dirname(executable);
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-proxy-ext-"));
  writeFileSync(join(dir, "proxy"), `#!/bin/sh\nexec ${command(executable, arch).map((word) => `'${word}'`).join(" ")}\n`, { mode: 0o755 });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The function, with examples/proxy as an extension in front of it (MICRO_LAMBDA_RUNTIME_API points the function at it). */
async function withProxyExtension(t: TestContext, env: Record<string, string> = {}, arch: Arch = hostArch) {
  const port = String(await closedPort());
  const output = new PassThrough();
  let log = "";
  output.setEncoding("utf8").on("data", (text: string) => (log += text));
  const emulator = await startEmulator(t, {
    command: await hello(arch),
    extensionsDir: await proxyExtensionDir(t, arch),
    env: { MICRO_LAMBDA_PROXY_PORT: port, MICRO_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`, ...env },
    output,
  });
  const audits = () => log.split("\n").filter((line) => line.startsWith('{"audit"')).map((line) => JSON.parse(line));
  return { emulator, audits, log: () => log };
}

for (const arch of arches) {
  test(`examples/proxy (${arch} layer) in the emulator: started as an extension before the function, every event passes when ALLOWED_EVENTS is unset, one audit line per invocation`, async (t) => {
  const { emulator, audits } = await withProxyExtension(t, {}, arch);
  const ok = await emulator.invoke({ name: "Ada" });
  assert.deepEqual(ok.result, { message: "Hello, Ada!", requestId: ok.requestId });
  const failed = await emulator.invoke(Buffer.from("not json"));
  assert.equal(failed.error?.errorType, "Runtime.MalformedEvent");
  const lines = audits();
  assert.equal(lines.length, 2);
  assert.deepEqual({ ...lines[0], durationMs: typeof lines[0].durationMs }, { audit: "invocation", requestId: ok.requestId, outcome: "response", eventBytes: 14, responseBytes: ok.payload.length, durationMs: "number" });
  assert.ok(lines[0].durationMs >= 0 && lines[0].durationMs <= ok.durationMs);
  assert.equal(lines[1].requestId, failed.requestId);
  assert.equal(lines[1].outcome, "error");
  assert.equal(lines[1].eventBytes, 8);
  assert.equal(lines[1].responseBytes, failed.payload.length);
  });
}

test("examples/proxy is packaged as a layer: extensions/proxy and the exec wrapper at its root, both executable", async () => {
  for (const arch of arches) {
    const listing = execFileSync("unzip", ["-Z", (await proxyLayer(arch)).zip], { encoding: "utf8" });
    assert.match(listing, /^-rwxr-xr-x .* extensions\/proxy$/m, arch);
    assert.match(listing, /^-rwxr-xr-x .* proxy-wrapper\.sh$/m, arch);
  }
});

test("build.sh --exec-wrapper is refused, saying why, without --extension or when the file does not exist", async () => {
  const notALayer = await buildSh(["examples/hello/main.ts", "--exec-wrapper", "src/proxy/proxy-wrapper.sh"]);
  assert.equal(notALayer.code, 1);
  assert.match(notALayer.output, /^build\.sh: --exec-wrapper src\/proxy\/proxy-wrapper\.sh: only a layer \(--extension\) can carry an exec wrapper$/m);
  const missing = await buildSh(["examples/proxy/main.ts", "--extension", "--exec-wrapper", "src/proxy/no-such-wrapper.sh"]);
  assert.equal(missing.code, 1);
  assert.match(missing.output, /^build\.sh: --exec-wrapper src\/proxy\/no-such-wrapper\.sh: no such file$/m);
});

test("examples/proxy: ALLOWED_EVENTS lets matching events through and fails the others before the function sees them", async (t) => {
  const { emulator, audits } = await withProxyExtension(t, { ALLOWED_EVENTS: "source=aws.events, Records.0.eventSource=aws:sqs,ping" });
  const scheduled = await emulator.invoke({ source: "aws.events", name: "cron" });
  assert.deepEqual(scheduled.result, { message: "Hello, cron!", requestId: scheduled.requestId });
  const sqs = await emulator.invoke({ Records: [{ eventSource: "aws:sqs" }], name: "queue" });
  assert.equal(sqs.ok, true);
  const ping = await emulator.invoke({ ping: false });
  assert.equal(ping.ok, true, "a bare path matches any value the field has");
  for (const refused of [{ Records: [{ eventSource: "aws:s3" }] }, { source: "aws.events.fake" }, "a string", [1, 2]]) {
    const out = await emulator.invoke(refused);
    assert.deepEqual(out.error, { errorType: "Runtime.EventRejected", errorMessage: "this event is not in the function's allow-list (ALLOWED_EVENTS)", trace: [] }, JSON.stringify(refused));
  }
  const outcomes = audits().map((line) => line.outcome);
  assert.deepEqual(outcomes, ["response", "response", "response", "rejected", "rejected", "rejected", "rejected"]);
});

test("examples/proxy: a malformed ALLOWED_EVENTS fails init with Extension.ConfigInvalid, and the message says which rule", async (t) => {
  const { emulator } = await withProxyExtension(t, { ALLOWED_EVENTS: "source=aws.events,=oops" });
  const out = await emulator.invoke({});
  assert.equal(out.error?.errorType, "Extension.InitError");
  assert.equal(out.error?.errorMessage, 'extension proxy failed to init: Extension.ConfigInvalid: ALLOWED_EVENTS: "=oops" is not a rule (path or path=value)');
});

test("examples/proxy: a port already taken fails init with Extension.ProxyFailed, naming the port and the variable", async (t) => {
  const taken = await startProxy(t, { upstream: "127.0.0.1:9001" });
  const port = taken.address.split(":")[1]!;
  const { emulator } = await withProxyExtension(t, { MICRO_LAMBDA_PROXY_PORT: port });
  const out = await emulator.invoke({});
  assert.equal(out.error?.errorType, "Extension.InitError");
  assert.match(out.error!.errorMessage, new RegExp(`^extension proxy failed to init: Extension.ProxyFailed: runtimeApiProxy: cannot listen on 127\\.0\\.0\\.1:${port} \\(MICRO_LAMBDA_PROXY_PORT\\): .*EADDRINUSE`));
});

// ---- hardening: what hooks return, sizes, failures nothing else handles ----------------------------------------

test("a hook's return value no HTTP message can carry fails that invocation only, saying what was wrong; the proxy goes on", async (t) => {
  const returns: Record<string, unknown> = {
    "not latin1": { headers: { "X-Greeting": "Zoë 😀" } },
    "CRLF in a value": { headers: { "X-Greeting": "hi\r\nInjected: yes" } },
    "a space in a name": { headers: { "X Greeting": "hi" } },
    "a number for a body": { body: 42 },
    "a framing header": { headers: { "Content-Length": "1" } },
    "an errorType with a line break": { reject: "no", errorType: "Bad\nType" },
    "a string": "rewrite it, please",
  };
  const messages: Record<string, string> = {
    "not latin1": `headers["X-Greeting"] = "Zoë 😀", which no header can carry (latin1 characters only, no line breaks or other control characters)`,
    "CRLF in a value": `headers["X-Greeting"] = "hi\\r\\nInjected: yes", which no header can carry (latin1 characters only, no line breaks or other control characters)`,
    "a space in a name": `a header name "X Greeting" that HTTP does not allow (letters, digits and !#$%&'*+-.^_\`|~ only)`,
    "a number for a body": "body number \"42\", not a string or a Buffer (JSON.stringify it first)",
    "a framing header": "a Content-Length header: the proxy frames the answer itself",
    "an errorType with a line break": `errorType string "Bad\\nType": an error type is a non-empty string of latin1 characters without line breaks (it travels in a header)`,
    "a string": `string "rewrite it, please", not nothing, {body?, headers?} or {reject, errorType?}`,
  };
  const hooks: ProxyOptions = {
    onEvent: (event) => (event.body[0] === 0x7b ? (returns[JSON.parse(event.body.toString()).name] as undefined) : undefined),
    onResponse: (answer) => (answer.body!.includes("object body") ? ({ body: { not: "serialised" } } as unknown as { body: string }) : undefined),
    onError: () => ({ body: [1, 2] }) as unknown as { body: string },
  };
  const { emulator, proxies } = await behindProxies(t, tsxCommand("examples/hello/main.ts"), hooks);
  for (const [name, message] of Object.entries(messages)) {
    const out = await emulator.invoke({ name });
    assert.deepEqual(out.error, { errorType: "Runtime.ProxyHookError", errorMessage: `the Runtime API proxy's onEvent hook returned ${message}`, trace: [] }, name);
    const fine = await emulator.invoke({ name: "Ada" });
    assert.deepEqual(fine.result, { message: "Hello, Ada!", requestId: fine.requestId }, `after ${name}`);
  }
  const objectBody = await emulator.invoke({ name: "object body" });
  assert.deepEqual(objectBody.error, { errorType: "Runtime.ProxyHookError", errorMessage: "the Runtime API proxy's onResponse hook returned body an object, not a string or a Buffer (JSON.stringify it first)", trace: [] });
  const arrayBody = await emulator.invoke(Buffer.from("not json"));
  assert.deepEqual(arrayBody.error, { errorType: "Runtime.ProxyHookError", errorMessage: "the Runtime API proxy's onError hook returned body an array, not a string or a Buffer (JSON.stringify it first)", trace: [] });
  assert.deepEqual(((await emulator.invoke({ name: "Bo" })).result as { message?: string } | undefined)?.message, "Hello, Bo!");
  // One line per failed invocation, each saying which invocation and what the hook returned.
  assert.equal(proxies[0]!.logs.length, Object.keys(messages).length + 2);
  assert.match(proxies[0]!.logs[0]!, /^micro-lambda proxy: [0-9a-f-]{36}: the Runtime API proxy's onEvent hook returned headers\["X-Greeting"\] = "Zoë 😀", .*; this invocation fails$/);
});

const tooLargeAnswer = { errorMessage: "Exceeded maximum allowed payload size (6291556 bytes).", errorType: "RequestEntityTooLarge" };

test("a buffered response over Lambda's 6,291,556 bytes, with hooks: the runtime gets Lambda's 413 before it has sent it all, the invocation fails upstream, nothing is held", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  const shown: ProxiedAnswer[] = [];
  const proxy = await startProxy(t, { upstream: upstream.address, onResponse: (answer) => void shown.push(answer) });
  const [host, port] = proxy.address.split(":");
  const sevenMiB = Buffer.alloc(7 * 1024 * 1024, 0x78);
  // Announced as 300 MiB, or chunked, and only 7 MiB sent: a proxy that waited for the whole body would never answer.
  for (const [id, framing] of [["big-1", ["Content-Length", String(300 * 1024 * 1024)]], ["big-2", ["Transfer-Encoding", "chunked"]]] as const) {
    const req = request({ host, port: Number(port), method: "POST", path: `/2018-06-01/runtime/invocation/${id}/response`, headers: ["Host", proxy.address, "Lambda-Runtime-Invocation-Id", `echo-${id}`, ...framing] });
    req.on("error", () => {});
    const answered = new Promise<IncomingMessage>((resolve) => req.once("response", resolve));
    req.write(sevenMiB);
    const res = await within(answered, `the 413 for ${id}`);
    const parts: Buffer[] = [];
    for await (const part of res) parts.push(part as Buffer);
    req.destroy();
    assert.equal(res.statusCode, 413);
    assert.equal(res.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(Buffer.concat(parts).toString()), tooLargeAnswer);
  }
  await upstream.received(() => 0, 5000, "");
  for (let i = 0; i < 100 && upstream.arrived.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(
    upstream.arrived.map((arrived) => [arrived.url, JSON.parse(arrived.body.toString()), pairsOf(arrived.rawHeaders).find(([name]) => name.toLowerCase() === "lambda-runtime-invocation-id")?.[1]]),
    ["big-1", "big-2"].map((id) => [
      `/2018-06-01/runtime/invocation/${id}/error`,
      { errorType: "Function.ResponseSizeTooLarge", errorMessage: "Response payload size exceeded maximum allowed payload size (6291556 bytes).", trace: [] },
      `echo-${id}`,
    ]),
  );
  assert.equal(shown.length, 0, "the hook does not see an answer that was never read");
  assert.match(proxy.logs[0]!, /^micro-lambda proxy: big-1: the function's response is larger than 6291556 bytes: answered 413, the invocation fails$/);
  // Exactly the limit still goes through, whole, and the hook sees it.
  const limit = Buffer.alloc(6_291_556, 0x79);
  const out = await call(agent(t), proxy.address, "POST", "/2018-06-01/runtime/invocation/just-fits/response", ["Content-Length", String(limit.length)], limit);
  assert.equal(out.status, 202);
  assert.equal(upstream.arrived.at(-1)!.body.length, limit.length);
  assert.equal(shown[0]!.size, limit.length);
});

test("a real function whose response is over the limit, behind a proxy with hooks: the caller gets Function.ResponseSizeTooLarge, the next invocation works", async (t) => {
  const { emulator } = await behindProxies(t, tsxCommand("test/fixtures/behaviour/main.ts"), { onResponse: () => undefined });
  const big = await emulator.invoke({ action: "large" });
  assert.deepEqual(big.error, { errorType: "Function.ResponseSizeTooLarge", errorMessage: "Response payload size exceeded maximum allowed payload size (6291556 bytes).", trace: [] });
  const small = await emulator.invoke({ action: "large", bytes: 10 });
  assert.equal(small.result, "xxxxxxxxxx");
});

test("a failure nothing else handles (here: the proxy's own log callback throws) is a 500 for that request, logged, and the proxy goes on", async (t) => {
  const upstream = await fakeUpstream(t, (arrived) => (arrived.method === "GET" ? { status: 200, headers: sized(["Lambda-Runtime-Aws-Request-Id", "r1"], "{}"), body: "{}" } : { status: 202, headers: sized([], accepted), body: accepted }));
  const printed: string[] = [];
  const original = console.error;
  console.error = (line: string) => void printed.push(line);
  t.after(() => (console.error = original));
  let fail = true;
  const proxy = await runtimeApiProxy({
    port: 0,
    upstream: upstream.address,
    onEvent: () => {
      throw new Error("hook broke");
    },
    log: () => {
      if (fail) throw new Error("the log is full");
    },
  });
  t.after(() => proxy.close());
  const out = await call(agent(t), proxy.address, "GET", NEXT, []);
  assert.equal(out.status, 500);
  assert.deepEqual(JSON.parse(out.body.toString()), { errorType: "ProxyFailed", errorMessage: `GET ${NEXT}: the proxy failed: Error: the log is full` });
  assert.match(printed[0]!, /^micro-lambda proxy: GET \/2018-06-01\/runtime\/invocation\/next: the proxy failed: Error: the log is full\nError: the log is full\n {4}at /);
  // The same from an event listener's work: the upstream is down, and logging the 502 throws.
  const down = await runtimeApiProxy({ port: 0, upstream: `127.0.0.1:${await closedPort()}`, log: () => { if (fail) throw new Error("the log is full"); } });
  t.after(() => down.close());
  const unreachable = await call(agent(t), down.address, "POST", "/2018-06-01/runtime/init/error", ["Content-Length", "2"], "{}");
  assert.equal(unreachable.status, 500);
  assert.equal(JSON.parse(unreachable.body.toString()).errorType, "ProxyFailed");
  fail = false;
  const forwarded = await call(agent(t), proxy.address, "POST", "/2018-06-01/runtime/init/error", ["Content-Length", "2"], "{}");
  assert.equal(forwarded.status, 202, "the proxy still serves");
  assert.equal((await call(agent(t), down.address, "GET", NEXT, [])).status, 502, "and the other one says why again");
});

test("the runtime hangs up mid-upload on a piped call (no hooks) and on a hooked one: the proxy goes on, nothing half-sent passes for whole", async (t) => {
  const upstream = await fakeUpstream(t, () => ({ status: 202, headers: sized([], accepted), body: accepted }));
  for (const hooks of [{}, { onError: () => undefined }] as ProxyOptions[]) {
    const proxy = await startProxy(t, { upstream: upstream.address, ...hooks });
    const [host, port] = proxy.address.split(":");
    const before = upstream.arrived.length;
    for (const path of ["/2018-06-01/runtime/invocation/r1/error", "/2018-06-01/runtime/init/error", "/unknown"]) {
      const req = request({ host, port: Number(port), method: "POST", path, headers: ["Host", proxy.address, "Content-Length", "1000"] });
      req.on("error", () => {});
      req.write("part of it");
      await new Promise((resolve) => setTimeout(resolve, 30));
      req.destroy();
    }
    const out = await call(agent(t), proxy.address, "POST", "/2018-06-01/runtime/invocation/r2/error", ["Content-Length", "2"], "{}");
    assert.equal(out.status, 202);
    // Piped calls reached the upstream as they began, and were broken off there (never completed with 10 bytes of 1000).
    assert.ok(upstream.arrived.slice(before).every((arrived) => arrived.url.endsWith("r2/error") || arrived.body.length === 0 || arrived.body.length === 1000));
    assert.deepEqual(proxy.logs, []);
  }
});

test("found by the property test: a /next sent with a body, and a Trailer header on a message that is not chunked, are answered (they hung, and crashed the proxy)", async (t) => {
  const upstream = await fakeUpstream(t, (arrived) =>
    arrived.method === "GET" ? { status: 200, headers: sized(["Lambda-Runtime-Aws-Request-Id", "r1"], "{}"), body: "{}" } : { status: 202, headers: sized([], accepted), body: accepted },
  );
  const proxy = await startProxy(t, { upstream: upstream.address, onEvent: () => undefined });
  const withBody = await within(call(agent(t), proxy.address, "GET", NEXT, ["Content-Length", "1"], "x"), "a /next with a body");
  assert.equal(withBody.status, 200);
  assert.equal(upstream.arrived[0]!.body.length, 0, "the body is not sent on");
  // node:http's client will not send this message: written raw.
  const [host, port] = proxy.address.split(":");
  const socket = connect(Number(port), host);
  t.after(() => socket.destroy());
  socket.write(`POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: ${proxy.address}\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\n{}`);
  const answer = await within(new Promise<string>((resolve) => socket.once("data", (chunk: Buffer) => resolve(chunk.toString()))), "a Trailer header on a Content-Length body");
  assert.match(answer, /^HTTP\/1\.1 202 Accepted\r\n/);
  assert.deepEqual(withoutHop(upstream.arrived[1]!.rawHeaders), ["Content-Length", "2"]);
  assert.deepEqual(proxy.logs, []);
});
