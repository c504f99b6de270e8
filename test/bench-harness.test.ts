// The bench's own machinery, checked without timing anything: its fast fake Runtime API against a real function
// and against hand-written requests, the runner's refusal of a section that does not exist, and what the cold
// page cache figures rest on: eviction that really evicts, the /proc readers, the ELF section reader.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import test from "node:test";
import { bytesByPart, readSections, type Section as ElfSection } from "./bench/lib/elf.ts";
import { gist } from "./bench/corpus.ts";
import { startFakeRuntimeApi } from "./bench/lib/fake-runtime-api.ts";
import { cached, evict, parse } from "./bench/lib/page-cache.ts";
import { lambdaEnv } from "./bench/lib/processes.ts";
import { mappedFiles, parseIo, parseMajorFaults, parseMaps, parseSchedstat, presentPages, residentBytesOf, touchedFilePages, viewProcess } from "./bench/lib/proc.ts";
import { root, tsx, tsxCommand } from "./helpers.ts";

test("bench fake Runtime API: serves N events to a real function, times every answer, holds the /next after the last", async (t) => {
  const fake = await startFakeRuntimeApi({ invocations: 50, holdFirst: true });
  t.after(() => fake.close());
  const [command, ...args] = tsxCommand("examples/hello/main.ts");
  const child = spawn(command, args, { env: lambdaEnv(fake.address), stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => child.kill("SIGKILL"));
  await fake.firstNext;
  assert.equal(fake.overheadMs[0], 0, "the first event waits for release()");
  fake.release();
  await fake.done;
  assert.equal(fake.errors, 0);
  assert.deepEqual(fake.initErrors, []);
  assert.ok(fake.overheadMs.every((ms) => ms > 0), "every one of the 50 events was answered");
  assert.ok(fake.turnaroundMs.slice(0, 49).every((ms) => ms > 0), "each answer was followed by a /next");
  assert.equal(child.exitCode, null, "the runtime waits on its held /next");
});

test("bench fake Runtime API: chunked bodies with trailers, Expect: 100-continue, an unknown path", async (t) => {
  const fake = await startFakeRuntimeApi({ invocations: 0 });
  t.after(() => fake.close());
  const [host, port] = fake.address.split(":");
  const socket = connect(Number(port), host);
  t.after(() => socket.destroy());
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  const waitFor = async (what: string, count = 1) => {
    for (let i = 0; i < 200 && text.split(what).length - 1 < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(text.split(what).length - 1, count, `waiting for ${JSON.stringify(what)} in ${JSON.stringify(text)}`);
  };
  await new Promise((resolve) => socket.once("connect", resolve));

  // A chunked init error, split across writes, with a trailer.
  socket.write("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"err");
  socket.write("\r\n3\r\nor\"\r\n");
  socket.write("3\r\n:1}\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.X\r\n\r\n");
  await waitFor("HTTP/1.1 202");
  assert.deepEqual(fake.initErrors, ['{"error":1}']);

  // Expect: 100-continue: the body follows only once the server says so.
  socket.write("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  await waitFor("HTTP/1.1 100 Continue");
  socket.write("null");
  await waitFor("HTTP/1.1 202", 2);
  assert.deepEqual(fake.initErrors, ['{"error":1}', "null"]);

  socket.write("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  await waitFor("HTTP/1.1 404");
});

test("npm run bench -- NAME: an unknown section is refused with the list of sections, exit 2", async () => {
  const child = spawn(tsx, ["test/bench/run.ts", "no-such-section"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 2);
  assert.match(stderr, /no section no-such-section\. Sections: .*cold-start.*warm/);
});

test("bench /proc readers: maps and smaps lines (a path with spaces, a deleted file, anonymous memory), the executable's Rss, major faults, CPU wait, io counters", () => {
  const smaps = [
    "00400000-00746000 r--p 00000000 fe:00 1234                               /opt/my app/bootstrap",
    "Size:               3352 kB",
    "Rss:                2048 kB",
    "Pss:                2048 kB",
    "0074a000-03200000 r-xp 0034a000 fe:00 1234                               /opt/my app/bootstrap",
    "Rss:                 100 kB",
    "06b7d000-06bb6000 rw-p 00000000 00:00 0 ",
    "Rss:                  12 kB",
    "7f0000000000-7f0000200000 r-xp 00000000 fe:00 99                         /usr/lib/x86_64-linux-gnu/libc.so.6",
    "Rss:                 900 kB",
    "7f0000300000-7f0000301000 r--p 00000000 fe:00 77                         /tmp/gone (deleted)",
    "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]",
    "7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]",
  ].join("\n");
  const mappings = parseMaps(smaps);
  assert.equal(mappings.length, 7);
  assert.deepEqual(mappings[1], { start: 0x74a000, end: 0x3200000, perms: "r-xp", offset: 0x34a000, path: "/opt/my app/bootstrap", rss: 100 * 1024 });
  assert.equal(mappings[2].path, "");
  assert.deepEqual(mappedFiles(mappings), ["/opt/my app/bootstrap", "/usr/lib/x86_64-linux-gnu/libc.so.6"]);
  assert.equal(residentBytesOf(mappings, "/opt/my app/bootstrap"), 2148 * 1024);
  assert.equal(residentBytesOf(parseMaps(smaps.replace(/^Rss.*$/gm, "")), "/opt/my app/bootstrap"), 0, "maps (no Rss lines) gives 0");

  assert.equal(parseMajorFaults("4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1673 0 37 0 5 2 0 0 20 0 11 0"), 37);
  assert.throws(() => parseMajorFaults("4242 (x) S 1"), /no major fault count/);

  assert.deepEqual(parseSchedstat("41000000 900000000 57\n"), { onCpuMs: 41, waitMs: 900 });
  assert.throws(() => parseSchedstat(""), /not a schedstat line/);

  const io = parseIo("rchar: 5033\nwchar: 12\nsyscr: 9\nsyscw: 1\nread_bytes: 94601216\nwrite_bytes: 0\ncancelled_write_bytes: 0\n");
  assert.equal(io.read_bytes, 94_601_216);
  assert.equal(io.rchar, 5033);
});

test("bench page cache: an evicted file is read from storage again (read_bytes ≥ its size); a cached one is not", async (t) => {
  // On the disk the builds are on (a tmpfs has no storage to read from).
  const dir = join(root, "node_modules/.cache/micro-lambda/bench");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `evict-test-${process.pid}`);
  const size = 4 << 20;
  writeFileSync(file, randomBytes(size));
  t.after(() => rmSync(file, { force: true }));
  const [written] = await cached([file]);
  assert.equal(written.size, size);

  // A child that reads the file whole, then blocks on stdin, so its counters can be read.
  const readBy = async () => {
    const child = spawn(process.execPath, ["-e", `require("fs").readFileSync(${JSON.stringify(file)}); console.log("read"); require("fs").readSync(0, Buffer.alloc(1))`], { stdio: ["pipe", "pipe", "inherit"] });
    t.after(() => child.kill("SIGKILL"));
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const readBytes = viewProcess(child.pid!).readBytes;
    child.kill("SIGKILL");
    return readBytes;
  };

  const [left] = await evict([file]);
  assert.equal(left.cached, 0, "nothing of the file is cached after evict()");
  assert.ok((await readBy()) >= size, "a process reading the evicted file reads it from storage");
  const [after] = await cached([file]);
  assert.equal(after.cached, size, "reading it brought the whole file back into the cache");
  assert.ok((await readBy()) < size, "read again while cached, it is not read from storage");

  await assert.rejects(evict([file, join(dir, "no-such-file")]), /no-such-file/);
  assert.throws(() => parse("error 13 /some/file"), /page-cache: error 13 \/some\/file/);
});

test("bench pagemap: the pages a live process has in each mapping of its executable are the Rss smaps gives", async (t) => {
  const child = spawn(process.execPath, ["-e", `console.log("up"); require("fs").readSync(0, Buffer.alloc(1))`], { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => child.kill("SIGKILL"));
  await new Promise((resolve) => child.stdout.once("data", resolve));
  // Stopped, so that none of its threads faults a page in between the two reads.
  process.kill(child.pid!, "SIGSTOP");
  const view = viewProcess(child.pid!);
  const ofExecutable = view.mappings.filter((mapping) => mapping.path === view.executable);
  assert.ok(ofExecutable.length >= 2, "the executable is mapped segment by segment");
  for (const mapping of ofExecutable) {
    const present = presentPages(child.pid!, mapping.start, mapping.end).reduce((sum, page) => sum + page, 0);
    assert.equal(present * 4096, mapping.rss, `mapping at 0x${mapping.start.toString(16)} (${mapping.perms})`);
  }
  // By page of the file: each page once, even where V8 maps its builtins a second time.
  const touched = touchedFilePages(child.pid!, view.mappings, view.executable).reduce((sum, page) => sum + page, 0);
  assert.ok(touched > 0 && touched * 4096 <= view.executableRss, `touched ${touched} pages; Rss ${view.executableRss}`);
});

test("bench ELF reader: the sections of a real executable; bytes by part from a page map", () => {
  const sections = readSections(process.execPath);
  const size = statSync(process.execPath).size;
  const text = sections.find((section) => section.name === ".text");
  assert.ok(text && text.size > 1_000_000 && text.offset + text.size <= size, "node's .text is megabytes, inside the file");
  assert.ok(sections.some((section) => section.name === ".rodata"));
  assert.throws(() => readSections(join(root, "package.json")), /not a little-endian ELF64 file/);

  // Four pages: .text on pages 0-1, .rodata on page 2, page 3 belongs to nothing named.
  const fake: ElfSection[] = [
    { name: ".text", offset: 0, size: 8192, type: 1 },
    { name: ".rodata", offset: 8192, size: 100, type: 1 },
  ];
  const parts = bytesByPart(fake, "1011", 4 * 4096);
  assert.deepEqual(parts.get("machine code (.text)"), { size: 8192, marked: 4096 });
  assert.deepEqual(parts.get("read-only data (.rodata: V8's snapshot, ICU data, tables)"), { size: 100, marked: 4096 });
  assert.deepEqual(parts.get("other (data, notes, headers)"), { size: 4 * 4096 - 8292, marked: 4096 });
});

test("bench corpus: a build that failed is summarised by what it said, not by Node's stack or build.sh's progress", () => {
  const output = [
    "./build.sh test/fixtures/corpus/x/main.ts --snapshot failed (exit 1): build.sh: test/fixtures/corpus/x/main.ts → dist/x/{x86_64}",
    "==> [x86_64] SEA blob: snapshot (made by the target Node)",
    "micro-lambda --snapshot: left-pad (node_modules/left-pad/index.js) used node:tls at init, which cannot be deferred",
    " 1: 0xe1d9a8 node::Abort() [/node]",
    "    at Object.<anonymous> (/bundle.cjs:1:1)",
    "",
  ].join("\n");
  const said = gist(output);
  assert.match(said, /left-pad \(node_modules\/left-pad\/index\.js\) used node:tls at init/);
  assert.doesNotMatch(said, /0xe1d9a8|==>|at Object/);
});
