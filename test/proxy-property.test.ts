// Property-based tests of the Runtime API proxy's request handling, over real HTTP: arbitrary methods, paths,
// headers and bodies, sent whole or broken off midway, with hooks that return arbitrary values. Every request that
// is sent whole gets an HTTP answer, and the proxy (in this process: a crash fails the file) never goes down.
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import fc from "fast-check";
import { runtimeApiProxy, type ProxyOptions } from "../src/proxy/index.ts";

const SEED = 20_260_213;
const RUNS = 200;
/** Each case's deadline: a request the proxy never answers fails its case (shrunk by fast-check), not the whole file. */
const CASE_DEADLINE_MS = 10_000;
const NEXT = "/2018-06-01/runtime/invocation/next";

/** A fake upstream Runtime API: an event for every /next, 202 for everything else (once the body has arrived). */
async function upstream(t: TestContext): Promise<string> {
  let count = 0;
  const server = createHttpServer(async (req, res) => {
    try {
      for await (const _ of req);
    } catch {
      return; // the proxy broke the call off, as the runtime had hung up
    }
    if (req.method === "GET" && req.url === NEXT) {
      return void res.writeHead(200, { "Lambda-Runtime-Aws-Request-Id": `r-${count++}`, "Lambda-Runtime-Deadline-Ms": String(Date.now() + 60_000) }).end('{"name":"Ada"}');
    }
    res.writeHead(202, { "content-type": "application/json" }).end('{"status":"OK"}');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Case {
  hooked: boolean;
  method: string;
  path: string;
  headers: [string, string][];
  body: Buffer;
  framing: "length" | "chunked" | "none";
  /** Hang up halfway through the body instead of sending it whole. */
  hangUp: boolean;
  /** What each hook returns this time (once; after that, nothing). */
  decision: unknown;
  throws: boolean;
}

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,16}$/);
const latin1 = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((code) => code !== 0x7f).map((code) => String.fromCharCode(code)), maxLength: 30 });
const anyText = fc.string({ unit: "binary", maxLength: 20 });
const requestId = fc.oneof(fc.constantFrom("r-1", "%ZZ", "%E0%A4%A", "a%2Fb", "%F0%9F%98%80", "..", "%00"), fc.stringMatching(/^[A-Za-z0-9%._~-]{1,20}$/));

const caseArb: fc.Arbitrary<Case> = fc.record({
  hooked: fc.boolean(),
  // Mostly the method the path is called with (GET /next, POST the others), else one node:http's parser knows
  // (it answers 400 to the others itself), now and then any token.
  method: fc.oneof(
    { weight: 4, arbitrary: fc.constant("") },
    { weight: 2, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH") },
    { weight: 1, arbitrary: token },
  ),
  path: fc.oneof(
    fc.constant(NEXT),
    requestId.chain((id) => fc.constantFrom(`/2018-06-01/runtime/invocation/${id}/response`, `/2018-06-01/runtime/invocation/${id}/error`)),
    fc.constant("/2018-06-01/runtime/init/error"),
    fc.stringMatching(/^\/[!-~]{0,40}$/),
  ),
  headers: fc.array(
    fc.oneof(
      fc.tuple(token, latin1),
      fc.constantFrom<[string, string]>(
        ["Lambda-Runtime-Function-Response-Mode", "streaming"],
        ["Lambda-Runtime-Invocation-Id", "0f4e2d1c"],
        ["Lambda-Runtime-Function-Error-Type", "Function.Oops"],
        ["Expect", "100-continue"],
        ["Trailer", "X-Sum"],
        ["Content-Type", "application/json"],
      ),
    ),
    { maxLength: 5 },
  ),
  body: fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes)),
  framing: fc.constantFrom("length", "chunked", "none"),
  hangUp: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  decision: fc.oneof(
    fc.anything(),
    fc.record({ body: fc.oneof(fc.string(), fc.anything()) }, { requiredKeys: [] }),
    fc.record({ headers: fc.dictionary(fc.oneof(token, anyText), fc.oneof(latin1, anyText, fc.anything())) }),
    fc.record({ reject: fc.anything(), errorType: fc.oneof(token, anyText, fc.anything()) }, { requiredKeys: ["reject"] }),
  ),
  throws: fc.boolean(),
});

/** The bytes of the request, and where to break off if it hangs up. */
function bytesOf(request: Case, address: string): { whole: Buffer; cut: number } {
  const method = request.method || (request.path === NEXT ? "GET" : "POST");
  let head = `${method} ${request.path} HTTP/1.1\r\nHost: ${address}\r\n`;
  for (const [name, value] of request.headers) head += `${name}: ${value}\r\n`;
  let body = request.body;
  if (request.framing === "length") head += `Content-Length: ${body.length}\r\n`;
  if (request.framing === "chunked") {
    head += "Transfer-Encoding: chunked\r\n";
    const chunk = body.length > 0 ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n")] : [];
    body = Buffer.concat([...chunk, Buffer.from("0\r\n\r\n")]);
  }
  if (request.framing === "none") body = Buffer.alloc(0);
  const headBytes = Buffer.from(`${head}\r\n`, "latin1");
  return { whole: Buffer.concat([headBytes, body]), cut: headBytes.length + (body.length >> 1) };
}

/** Sends the request on a fresh connection; resolves with the first status line of the answer, or "" if none came before the proxy closed it. */
function send(address: string, bytes: Buffer, hangUpAt: number | undefined): Promise<string> {
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), host);
    let answer = "";
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n")) {
        socket.destroy();
        resolve(answer.slice(0, answer.indexOf("\r\n")));
      }
    });
    socket.on("close", () => resolve(answer));
    if (hangUpAt === undefined) return void socket.write(bytes);
    socket.write(bytes.subarray(0, hangUpAt), () => setImmediate(() => socket.destroy()));
    socket.on("close", () => resolve(""));
    socket.on("error", reject);
  });
}

test("whatever a runtime sends and whatever a hook returns, every request sent whole gets an HTTP answer, and the proxy stays up", { timeout: 180_000 }, async (t) => {
  const address = await upstream(t);
  let current: Case | undefined;
  const once = <T>(read: (c: Case) => T): T | undefined => {
    const value = current && read(current);
    current = undefined;
    return value;
  };
  const hook = () => {
    const decided = once((c) => c);
    if (decided?.throws) throw decided.decision;
    return decided?.decision as undefined;
  };
  const logs: string[] = [];
  const statuses = new Map<string, number>();
  const hooks: ProxyOptions = { onEvent: hook, onResponse: hook, onError: hook };
  const hooked = await runtimeApiProxy({ port: 0, upstream: address, log: (line) => logs.push(line), ...hooks });
  const piped = await runtimeApiProxy({ port: 0, upstream: address, log: (line) => logs.push(line) });
  t.after(() => Promise.all([hooked.close(), piped.close()]));

  await fc.assert(
    fc.asyncProperty(caseArb, async (request) => {
      current = request;
      const proxy = request.hooked ? hooked : piped;
      const { whole, cut } = bytesOf(request, proxy.address);
      const statusLine = await send(proxy.address, whole, request.hangUp ? cut : undefined);
      if (!request.hangUp) assert.match(statusLine, /^HTTP\/1\.1 \d{3} /, "a request sent whole gets an answer");
      statuses.set(statusLine.slice(9, 12), (statuses.get(statusLine.slice(9, 12)) ?? 0) + 1);
    }),
    { seed: SEED, numRuns: RUNS, timeout: CASE_DEADLINE_MS },
  );

  // The cases reached every part: events delivered, answers accepted, hooks' odd returns and throws turned into failures.
  assert.ok((statuses.get("200") ?? 0) > 0 && (statuses.get("202") ?? 0) > 0, JSON.stringify([...statuses]));
  assert.ok(logs.some((line) => /hook returned/.test(line)) && logs.some((line) => /hook threw/.test(line)));
  // Still up, both of them, and still forwarding.
  for (const proxy of [hooked, piped]) {
    current = undefined;
    assert.match(await send(proxy.address, Buffer.from(`GET ${NEXT} HTTP/1.1\r\nHost: x\r\n\r\n`), undefined), /^HTTP\/1\.1 200 /);
  }
});
