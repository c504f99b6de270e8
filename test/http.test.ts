// The HTTP client every part of micro-lambda speaks through, against raw TCP servers that answer with exact bytes.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { httpClient } from "../src/wire/http.ts";

/** A TCP server on 127.0.0.1:0; `answer` gets each connection and the bytes of each request head. */
async function rawServer(t: TestContext, answer: (socket: Socket, request: string) => void): Promise<{ address: string; connections: number }> {
  const state = { address: "", connections: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    let pending = "";
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => {
      pending += text;
      for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
        const head = pending.slice(0, end + 4);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < head.length + length) return;
        pending = pending.slice(head.length + length);
        answer(socket, head);
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return state;
}

test("Content-Length answers, on one keep-alive connection; the request carries Host and Content-Length", async (t) => {
  const heads: string[] = [];
  const server = await rawServer(t, (socket, head) => {
    heads.push(head);
    socket.write("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nX-Twice: a\r\nX-Twice: b\r\nContent-Length: 2\r\n\r\nok");
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  for (let i = 0; i < 3; i++) {
    const reply = await client.request("POST", "/path", { "x-one": "1" }, "héllo");
    assert.equal(reply.status, 202);
    assert.equal(reply.body.toString(), "ok");
    assert.equal(reply.headers["content-type"], "application/json");
    assert.equal(reply.headers["x-twice"], "a, b");
  }
  assert.equal(server.connections, 1);
  assert.equal(heads[0], `POST /path HTTP/1.1\r\nHost: ${server.address}\r\nx-one: 1\r\nContent-Length: 6\r\n\r\n`);
});

test("chunked answers, with chunk extensions and trailers, split across packets at awkward places", async (t) => {
  const server = await rawServer(t, (socket) => {
    const bytes = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n";
    let at = 0;
    const drip = () => {
      if (at >= bytes.length) return;
      socket.write(bytes.slice(at, at + 3));
      at += 3;
      setImmediate(drip);
    };
    drip();
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  const reply = await client.request("GET", "/");
  assert.equal(reply.body.toString(), "hello world");
  assert.equal((await client.request("GET", "/")).body.toString(), "hello world", "the connection is reusable after trailers");
});

test("a 6 MB body in many packets arrives whole; 100 Continue is skipped; 204 has no body", async (t) => {
  const big = Buffer.alloc(6 * 1024 * 1024, 0x61);
  const server = await rawServer(t, (socket, head) => {
    if (head.startsWith("GET /big")) {
      socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
      for (let at = 0; at < big.length; at += 65536) socket.write(big.subarray(at, at + 65536));
    } else socket.write("HTTP/1.1 204 No Content\r\n\r\n");
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  const reply = await client.request("GET", "/big");
  assert.equal(reply.body.length, big.length);
  assert.ok(reply.body.equals(big));
  const empty = await client.request("GET", "/empty");
  assert.equal(empty.status, 204);
  assert.equal(empty.body.length, 0);
});

test("an answer framed by closing the connection; Connection: close is honoured", async (t) => {
  const server = await rawServer(t, (socket, head) => {
    if (head.startsWith("GET /until-close")) socket.end("HTTP/1.1 200 OK\r\n\r\nall of it");
    else socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye");
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  assert.equal((await client.request("GET", "/until-close")).body.toString(), "all of it");
  assert.equal((await client.request("GET", "/close")).body.toString(), "bye");
  assert.equal((await client.request("GET", "/close")).body.toString(), "bye");
  assert.equal(server.connections, 3, "a closed connection is not reused");
});

test("failures reject with a clear reason: not HTTP, a connection closed mid-answer, bytes nobody asked for, nothing listening", async (t) => {
  const server = await rawServer(t, (socket, head) => {
    if (head.startsWith("GET /garbage")) socket.write("SMTP ready\r\n\r\n");
    else if (head.startsWith("GET /short")) socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    else if (head.startsWith("GET /bad-length")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    else if (head.startsWith("GET /bad-chunk")) socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    else if (head.startsWith("GET /twice")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\n");
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  await assert.rejects(client.request("GET", "/garbage"), /MalformedReplyError: not an HTTP\/1\.1 status line: "SMTP ready"/);
  await assert.rejects(client.request("GET", "/short"), /the connection closed before the answer was complete/);
  await assert.rejects(client.request("GET", "/bad-length"), /MalformedReplyError: bad Content-Length: "-1"/);
  await assert.rejects(client.request("GET", "/bad-chunk"), /bad chunk size: "zz"/);
  await assert.rejects(client.request("GET", "/twice"), /the server sent more than one answer/);
  await assert.rejects(httpClient("127.0.0.1:1").request("GET", "/"), /connect ECONNREFUSED 127\.0\.0\.1:1/);
});

test("a header value with a line break is refused before anything is sent", async (t) => {
  const server = await rawServer(t, (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  const client = httpClient(server.address);
  t.after(() => client.close());
  assert.throws(() => client.request("GET", "/", { "x-evil": "a\r\nInjected: yes" }), /header "x-evil" has a line break in its value/);
  assert.equal(server.connections, 0);
});

test("addresses: host:port and bracketed IPv6; anything else is refused", () => {
  assert.throws(() => httpClient("no-port"), /not a host:port address: "no-port"/);
  assert.throws(() => httpClient("127.0.0.1:99999"), /not a host:port address/);
  assert.equal(httpClient("[::1]:9001").host, "::1");
});

test("a connection the server is closing is never reused: HTTP/1.0 without keep-alive, Connection: Close in any case, a list with close", async (t) => {
  const answers: Record<string, string> = {
    "/http10": "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/close-capitalised": "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok",
    "/keep-alive-close": "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok",
    "/http10-keep-alive": "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
  };
  // The server does not close the connections itself (Python's http.server does, a moment later): a client that
  // reused one would be answered here, and only the count of connections shows the mistake.
  const server = await rawServer(t, (socket, head) => socket.write(answers[head.split(" ")[1]!]!));
  for (const [path, reused] of [["/http10", false], ["/close-capitalised", false], ["/keep-alive-close", false], ["/http10-keep-alive", true]] as const) {
    const client = httpClient(server.address);
    t.after(() => client.close());
    const before = server.connections;
    for (let i = 0; i < 3; i++) assert.equal((await client.request("POST", path, {}, "x")).body.toString(), "ok");
    assert.equal(server.connections - before, reused ? 1 : 3, `${path}: ${reused ? "one connection" : "a connection per request"}`);
  }
});

test("a request on a pooled connection the server closed, unanswered, is sent once more on a fresh one; never twice, never after part of an answer", async (t) => {
  // Each connection answers its first request; a second one on the same connection is dropped unread, as by a
  // server closing an idle connection just as the request arrives.
  let partial = false;
  let dropAll = false;
  const server = await rawServer(t, (socket, head) => {
    const served = ((socket as Socket & { served?: number }).served ??= 0);
    (socket as Socket & { served?: number }).served = served + 1;
    if (served > 0) return void (partial ? socket.end("HTTP/1.1 200 OK\r\n") : socket.destroy());
    if (dropAll) return void socket.destroy();
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${head.length}\r\n\r\n${head}`);
  });
  const client = httpClient(server.address);
  t.after(() => client.close());
  assert.equal((await client.request("POST", "/1", {}, "a")).status, 200);
  const retried = await client.request("POST", "/2", {}, "b");
  assert.match(retried.body.toString(), /^POST \/2 HTTP\/1\.1/, "the answer to the retried request");
  assert.equal(server.connections, 2);
  // The retry is itself dropped: the request fails, and is not sent a third time.
  dropAll = true;
  await assert.rejects(client.request("POST", "/3", {}, "c"), /the connection closed before the answer was complete|ECONNRESET/);
  assert.equal(server.connections, 3);
  // A fresh connection dropped: the server may have acted on the request, so it is not repeated.
  await assert.rejects(httpClient(server.address).request("POST", "/fresh-dropped", {}, "d"), /the connection closed before the answer was complete|ECONNRESET/);
  assert.equal(server.connections, 4);
  // Part of the answer came: not retried either.
  dropAll = false;
  partial = true;
  const again = httpClient(server.address);
  t.after(() => again.close());
  await again.request("POST", "/5", {}, "e");
  await assert.rejects(again.request("POST", "/6", {}, "f"), /the connection closed before the answer was complete/);
  assert.equal(server.connections, 5);
});

test("what HTTP/1.1 forbids is a clear MalformedReplyError, never a misframed body nor a hang", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["Content-Length +2", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", /bad Content-Length: "\+2"/],
    ["Content-Length 0x2", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", /bad Content-Length: "0x2"/],
    ["Content-Length 2e0", "HTTP/1.1 200 OK\r\nContent-Length: 2e0\r\n\r\nok", /bad Content-Length: "2e0"/],
    ["Content-Length empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", /bad Content-Length: ""/],
    ["two Content-Lengths that differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", /bad Content-Length: "2, 3"/],
    ["chunk size 0x2", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n", /bad chunk size: "0x2"/],
    ["a chunk not followed by CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY0\r\n\r\n", /a chunk of 2 bytes is not followed by CRLF/],
    ["LF-only line endings", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", /a line that ends in LF without CR/],
    ["a bare CR", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", /a bare CR in "X-A: a\\rb"/],
    ["a header name with a space", "HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\nok", /not an HTTP header line: "Content Length: 2"/],
    ["whitespace before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", /not an HTTP header line/],
    ["NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok", /a control character in the value of X-A/],
    ["chunked and Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n", /both Transfer-Encoding and Content-Length/],
    ["a coding it cannot read", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", /this client reads only "chunked"/],
    ["HTTP/1.0 chunked", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", /an HTTP\/1\.0 answer with Transfer-Encoding/],
    ["101 unasked", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", /101 Switching Protocols, though no upgrade was asked for/],
    ["a head without end", `HTTP/1.1 200 OK\r\n${"X-Long: y\r\n".repeat(7000)}`, /an HTTP head longer than 64 KiB/],
  ];
  const server = await rawServer(t, (socket, head) => socket.write(cases[Number(head.split(" ")[1]!.slice(1))]![1]));
  for (const [index, [what, , message]] of cases.entries()) {
    const client = httpClient(server.address);
    t.after(() => client.close());
    await assert.rejects(client.request("GET", `/${index}`), (error: Error) => {
      assert.equal(error.name, "MalformedReplyError", what);
      assert.match(error.message, message, what);
      return true;
    });
  }
});

test("lenient where RFC 9112 asks it: equal repeated Content-Lengths, an obsolete line folding, empty list elements, a 204 with a Content-Length", async (t) => {
  const answers = [
    "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nX-Folded: one\r\n \t two\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked\r\nConnection: ,keep-alive,\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n",
  ];
  let at = 0;
  const server = await rawServer(t, (socket) => socket.write(answers[at++] ?? ""));
  const client = httpClient(server.address);
  t.after(() => client.close());
  assert.equal((await client.request("GET", "/")).body.toString(), "ok");
  const folded = await client.request("GET", "/");
  assert.equal(folded.headers["x-folded"], "one two");
  assert.equal((await client.request("GET", "/")).body.toString(), "ok");
  const empty = await client.request("GET", "/");
  assert.equal(empty.status, 204);
  assert.equal(empty.body.length, 0);
});
