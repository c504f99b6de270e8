// Property-based tests of the HTTP client's reader, over real TCP: any valid answer, however the bytes are split
// into packets, reads back as the reply it encodes; any answer spoiled by one of a set of corruptions is a
// MalformedReplyError, never a hang and never a wrong reply. Fixed seed and run count: CI sees the same cases.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import fc from "fast-check";
import { httpClient, type Reply } from "../src/wire/http.ts";

const SEED = 20_260_213;
const RUNS = 150;
/** Each case's deadline: an answer that hangs the reader fails its case (and fast-check shrinks it), rather than the whole file. */
const CASE_DEADLINE_MS = 10_000;

interface Answer {
  http10: boolean;
  status: number;
  reason: string;
  headers: [string, string][];
  body: Buffer;
  framing: "length" | "chunked" | "close";
  /** Where the chunked body is cut into chunks. */
  cuts: number[];
  extensions: boolean;
  trailers: [string, string][];
}

const framingNames = new Set(["content-length", "transfer-encoding", "connection", "trailer"]);
const tokenArb = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/).filter((name) => !framingNames.has(name.toLowerCase()));
/** A visible character: VCHAR or obs-text (bytes 0x80-0xFF, which a reader takes as latin1). */
const visible = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((code) => String.fromCharCode(code));
const valueArb = fc.oneof(
  fc.constant(""),
  visible,
  fc.tuple(visible, fc.string({ unit: fc.oneof(visible, fc.constantFrom(" ", "\t")), maxLength: 20 }), visible).map(([a, b, c]) => a + b + c),
);
const fieldArb = fc.tuple(tokenArb, valueArb);

const answerArb: fc.Arbitrary<Answer> = fc
  .record({
    http10: fc.boolean(),
    status: fc.integer({ min: 200, max: 599 }).filter((status) => status !== 204 && status !== 304),
    reason: fc.string({ unit: fc.oneof(visible, fc.constant(" ")), maxLength: 20 }),
    headers: fc.array(fieldArb, { maxLength: 6 }),
    body: fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
    framing: fc.constantFrom("length", "chunked", "close"),
    cuts: fc.array(fc.nat({ max: 400 }), { maxLength: 5 }),
    extensions: fc.boolean(),
    trailers: fc.array(fieldArb, { maxLength: 3 }),
  })
  .map((answer) => (answer.http10 && answer.framing === "chunked" ? { ...answer, framing: "length" as const } : answer));

/** The corruptions: each breaks a rule RFC 9112 makes strict. */
const corruptions = [
  "Content-Length +N",
  "Content-Length 0xN",
  "Content-Length Ne0",
  "Content-Length empty",
  "two Content-Lengths that differ",
  "chunk size 0xN",
  "a chunk not followed by CRLF",
  "LF-only line endings",
  "a bare CR in a value",
  "a space in a header name",
  "a space before the colon",
  "NUL in a value",
  "Transfer-Encoding and Content-Length",
  "an HTTP/2 status line",
] as const;
type Corruption = (typeof corruptions)[number];

/** The answer's bytes, spoiled by `corruption` if one is given. */
function serialise(answer: Answer, corruption?: Corruption): Buffer {
  const framing = corruption?.includes("chunk") ? "chunked" : corruption?.includes("Content-Length") ? "length" : answer.framing;
  const body = corruption === "a chunk not followed by CRLF" && answer.body.length === 0 ? Buffer.from("x") : answer.body;
  const version = answer.http10 && framing !== "chunked" ? "1.0" : "1.1";
  let head = `HTTP/${corruption === "an HTTP/2 status line" ? "2" : version} ${answer.status} ${answer.reason}\r\n`;
  for (const [name, value] of answer.headers) head += `${name}: ${value}\r\n`;
  const length = String(body.length);
  const lengthHeader: Partial<Record<Corruption, string>> = {
    "Content-Length +N": `+${length}`,
    "Content-Length 0xN": `0x${body.length.toString(16)}`,
    "Content-Length Ne0": `${length}e0`,
    "Content-Length empty": "",
    "two Content-Lengths that differ": `${length}\r\nContent-Length: ${body.length + 1}`,
  };
  if (framing === "length") head += `Content-Length: ${corruption ? (lengthHeader[corruption] ?? length) : length}\r\n`;
  if (framing === "chunked") head += "Transfer-Encoding: chunked\r\n";
  if (corruption === "Transfer-Encoding and Content-Length") head += `Transfer-Encoding: chunked\r\nContent-Length: ${length}\r\n`;
  if (corruption === "a bare CR in a value") head += "X-Spoiled: a\rb\r\n";
  if (corruption === "a space in a header name") head += "X Spoiled: yes\r\n";
  if (corruption === "a space before the colon") head += "X-Spoiled : yes\r\n";
  if (corruption === "NUL in a value") head += "X-Spoiled: a\0b\r\n";
  head += "\r\n";
  if (corruption === "LF-only line endings") head = head.replaceAll("\r\n", "\n");
  if (framing !== "chunked") return Buffer.concat([Buffer.from(head, "latin1"), body]);

  const parts: Buffer[] = [Buffer.from(head, "latin1")];
  const cuts = [...new Set(answer.cuts.map((cut) => cut % (body.length + 1)))].sort((a, b) => a - b);
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    if (cut <= at) continue;
    const size = cut - at;
    const sizeText = corruption === "chunk size 0xN" && at === 0 ? `0x${size.toString(16)}` : size.toString(16);
    parts.push(Buffer.from(`${sizeText}${answer.extensions ? ';name="va lue"' : ""}\r\n`), body.subarray(at, cut));
    parts.push(Buffer.from(corruption === "a chunk not followed by CRLF" && at === 0 ? "XY" : "\r\n"));
    at = cut;
  }
  let trailers = `0${answer.extensions ? " ;last" : ""}\r\n`;
  for (const [name, value] of answer.trailers) trailers += `${name}: ${value}\r\n`;
  parts.push(Buffer.from(`${trailers}\r\n`, "latin1"));
  return Buffer.concat(parts);
}

/** The reply the answer encodes: names lower-cased, repeats joined with ", ", trailers dropped. */
function expected(answer: Answer): Reply {
  const headers: Record<string, string> = {};
  const fields: [string, string][] = [...answer.headers];
  if (answer.framing === "length") fields.push(["Content-Length", String(answer.body.length)]);
  if (answer.framing === "chunked") fields.push(["Transfer-Encoding", "chunked"]);
  for (const [name, value] of fields) {
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return { status: answer.status, headers, body: answer.body };
}

/** A TCP server that answers `GET /N` with the bytes of case N, written in the pieces given, a turn of the event loop apart. */
async function caseServer(t: TestContext) {
  const cases = new Map<number, { pieces: Buffer[]; close: boolean }>();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", () => {});
    let head = "";
    socket.on("data", async (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const answer = cases.get(Number(/^GET \/(\d+) /.exec(head)![1]))!;
      head = "";
      for (const piece of answer.pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (answer.close) socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  let next = 0;
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    /** Registers an answer and returns its path. */
    add(bytes: Buffer, splits: number[], close: boolean): string {
      const at = [...new Set(splits.map((split) => split % (bytes.length + 1)))].sort((a, b) => a - b);
      const pieces = [0, ...at].map((start, i) => bytes.subarray(start, [...at, bytes.length][i])).filter((piece) => piece.length > 0);
      cases.set(next, { pieces, close });
      return `/${next++}`;
    },
  };
}

const splitsArb = fc.array(fc.nat(), { maxLength: 8 });

test("any valid answer, split into packets anywhere, reads back as the reply it encodes", { timeout: 120_000 }, async (t) => {
  const server = await caseServer(t);
  await fc.assert(
    fc.asyncProperty(answerArb, splitsArb, async (answer, splits) => {
      const path = server.add(serialise(answer), splits, answer.framing === "close" || answer.http10);
      const client = httpClient(server.address);
      try {
        const reply = await client.request("GET", path);
        assert.deepEqual({ ...reply, headers: { ...reply.headers } }, expected(answer));
      } finally {
        client.close();
      }
    }),
    { seed: SEED, numRuns: RUNS, timeout: CASE_DEADLINE_MS },
  );
});

test("any corruption of a valid answer is a MalformedReplyError, split anywhere, never a hang nor a reply", { timeout: 120_000 }, async (t) => {
  const server = await caseServer(t);
  await fc.assert(
    fc.asyncProperty(answerArb, fc.constantFrom(...corruptions), splitsArb, async (answer, corruption, splits) => {
      // Kept open after the bytes: a reader that waited for more would hang, and fail its case's deadline.
      const path = server.add(serialise(answer, corruption), splits, false);
      const client = httpClient(server.address);
      try {
        await assert.rejects(client.request("GET", path), (error: Error) => error.name === "MalformedReplyError");
      } finally {
        client.close();
      }
    }),
    { seed: SEED, numRuns: RUNS, timeout: CASE_DEADLINE_MS },
  );
});

test("a reply read through the same connection after each answer: keep-alive answers in a row, each split anywhere", { timeout: 60_000 }, async (t) => {
  const server = await caseServer(t);
  const client = httpClient(server.address);
  t.after(() => client.close());
  await fc.assert(
    fc.asyncProperty(answerArb.filter((answer) => answer.framing !== "close" && !answer.http10), splitsArb, async (answer, splits) => {
      const reply = await client.request("GET", server.add(serialise(answer), splits, false));
      assert.deepEqual({ ...reply, headers: { ...reply.headers } }, expected(answer));
    }),
    { seed: SEED, numRuns: 60, timeout: CASE_DEADLINE_MS },
  );
});
