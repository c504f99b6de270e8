// The CLI from source (src/cli/bin.ts under tsx), as a user runs it: what each wrong command line prints and
// exits with, a build from a project outside this repository, invoke with the event on stdin, `new`, and
// `watch` serving real HTTP invokes while its source file is edited.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { hostProblem } from "../src/cli/build.ts";
import { root } from "./helpers.ts";

const bin = join(root, "src/cli/bin.ts");
/** tsx's loader by URL: `--import tsx` would be looked for from the working directory, a temporary project here. */
const tsx = import.meta.resolve("tsx");
const runtime = join(root, "src/runtime/index.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `micro-lambda ARGS...` from source, in `cwd`, until it exits. */
function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsx, bin, ...args], { cwd: options.cwd ?? root, env: options.env ?? process.env, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    child.stdin.end(options.input ?? "");
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A temporary project: a package.json and the files given, removed when the test ends. */
function project(t: TestContext, files: Record<string, string>, manifest: object = { name: "cli-test", private: true }): string {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-cli-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "package.json"), JSON.stringify(manifest));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

/** A function that greets, importing the runtime from this repository's src/ (a temporary project has no node_modules). */
const greeter = (greeting: string) => `import { lambda } from ${JSON.stringify(runtime)};\nlambda(async (event: { name?: string }) => ({ message: "${greeting}, " + (event.name ?? "world") }));\n`;

test("an unknown command prints the usage and exits 2", async () => {
  const run = await cli(["frobnicate"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /micro-lambda: unknown command "frobnicate"/);
  assert.match(run.stderr, /usage: micro-lambda COMMAND/);
});

test("no command prints the usage and exits 2; --help exits 0; --version prints the package's version", async () => {
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(none.stdout, /commands:\n {2}build/);
  assert.equal((await cli(["--help"])).code, 0);
  const version = await cli(["--version"]);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
  const help = await cli(["watch", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: micro-lambda watch ENTRY \[options\]/);
});

test("an unknown option names it, prints the command's usage, and exits 2", async () => {
  for (const command of ["build", "invoke", "serve", "watch", "new"]) {
    const run = await cli([command, "--frobnicate"]);
    assert.equal(run.code, 2, command);
    assert.match(run.stderr, new RegExp(`micro-lambda ${command}: unknown option --frobnicate\\n\\nusage: micro-lambda ${command}`));
  }
});

test("an entry that does not exist: no such file, exit 2 (build, invoke, serve, watch)", async (t) => {
  const dir = project(t, {});
  for (const command of ["build", "invoke", "serve", "watch"]) {
    const run = await cli([command, "src/missing.ts"], { cwd: dir });
    assert.equal(run.code, 2, command);
    assert.match(run.stderr, new RegExp(`micro-lambda ${command}: src/missing.ts: no such file`));
  }
  const none = await cli(["build"], { cwd: dir });
  assert.match(none.stderr, /no ENTRY given, and neither src\/main.ts nor main.ts exists in the project/);
});

test("build outside any project says to run it inside one, exit 2", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-no-project-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "main.ts"), greeter("Hello"));
  const run = await cli(["build", "main.ts"], { cwd: dir });
  assert.equal(run.code, 2);
  assert.match(run.stderr, /micro-lambda build: no package.json in .* or above: run build inside your project \(npm init -y makes one\)/);
});

test("a --name that is not a plain name is refused before anything is built", async (t) => {
  const dir = project(t, { "main.ts": greeter("Hello") });
  for (const name of ["..", ".", "a/b", "../escape", "a b"]) {
    const run = await cli(["build", "main.ts", "--name", name], { cwd: dir });
    assert.equal(run.code, 2, name);
    assert.match(run.stderr, /--name .*: use letters, digits, '\.', '_' and '-' \(a folder name, not a path\)/);
  }
  const arch = await cli(["build", "main.ts", "--arch", "sparc"], { cwd: dir });
  assert.match(arch.stderr, /--arch sparc: use x86_64, arm64 or all/);
  const bad = project(t, { "main.ts": greeter("Hello") }, { name: "bad-config", "micro-lambda": { build: "--extension" } });
  const config = await cli(["build"], { cwd: bad });
  assert.equal(config.code, 2);
  assert.match(config.stderr, /package.json: "micro-lambda": \{ "build" \} must be a list of arguments/);
  assert.equal(existsSync(join(dir, "dist")), false, "nothing was built");
});

test("a missing Debian tool is named with the package that provides it", async (t) => {
  const dir = project(t, { "main.ts": greeter("Hello") });
  // A PATH with what runs the CLI and starts build.sh, and no zip.
  const bin = mkdtempSync(join(tmpdir(), "micro-lambda-path-"));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  for (const tool of ["node", "npm", "bash", "dirname", "basename", "realpath", "uname"]) {
    const found = ["/usr/local/bin", "/usr/bin", "/bin"].map((folder) => join(folder, tool)).find((path) => existsSync(path));
    symlinkSync(tool === "node" ? process.execPath : found!, join(bin, tool));
  }
  const run = await cli(["build", "main.ts", "--arch", "x86_64"], { cwd: dir, env: { ...process.env, PATH: bin } });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /build.sh: zip not found: apt-get install zip/);
});

test("a host that is not x86_64 or arm64 Linux is told, in one line, to build in a Linux container or on a Linux CI runner", () => {
  assert.equal(hostProblem("linux", "x64"), undefined);
  assert.equal(hostProblem("linux", "arm64"), undefined);
  for (const [platform, arch] of [["darwin", "arm64"], ["win32", "x64"], ["linux", "ppc64"]]) {
    const problem = hostProblem(platform, arch)!;
    assert.match(problem, new RegExp(`this machine runs ${platform} on ${arch}`));
    assert.match(problem, /build on x86_64 or arm64 Linux, in a Linux container \(docker run .* npx micro-lambda build\) or on a Linux CI runner/);
    assert.doesNotMatch(problem, /\n/);
  }
});

test("build in a project outside this repository: dist/ is the project's, named after the package, with package.json's build arguments", async (t) => {
  const dir = project(t, { "src/main.ts": greeter("Hello") }, { name: "@me/greeter", private: true, "micro-lambda": { build: ["--arch", "x86_64"] } });
  const run = await cli(["build"], { cwd: join(dir, "src"), env: { ...process.env, MICRO_LAMBDA_CACHE: join(root, "node_modules/.cache/micro-lambda"), ZIP_LEVEL: "1" } });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(readdirSync(join(dir, "dist")), ["greeter"]);
  assert.deepEqual(readdirSync(join(dir, "dist/greeter")), ["x86_64"], "package.json's --arch x86_64");
  assert.ok(existsSync(join(dir, "dist/greeter/x86_64/function.zip")));
  const invoked = await cli(["invoke", "--event", "-", "dist/greeter/x86_64/bootstrap"], { cwd: dir, input: '{"name":"stdin"}' });
  assert.equal(invoked.code, 0, invoked.stderr);
  assert.deepEqual(JSON.parse(invoked.stdout), { message: "Hello, stdin" });
});

test("invoke: an event that is not JSON is a usage error; a function error exits 1 with the error JSON", async (t) => {
  const dir = project(t, { "main.ts": `import { lambda } from ${JSON.stringify(runtime)};\nlambda(async () => { throw new TypeError("no"); });\n` });
  const bad = await cli(["invoke", "--event", "{nope", "main.ts"], { cwd: dir });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--event needs JSON/);
  const failed = await cli(["invoke", "main.ts"], { cwd: dir });
  assert.equal(failed.code, 1);
  assert.equal(JSON.parse(failed.stdout).errorType, "TypeError");
});

test("new: refuses a NAME that is not a plain name, an unknown template, and a folder that is not empty", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-new-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ["..", "a/b", "My-Fn", "-x", "@scope/fn"]) {
    const run = await cli(["new", name], { cwd: dir });
    assert.equal(run.code, 2, name);
    assert.match(run.stderr, name.startsWith("-") ? /unknown option -x/ : /is not a plain name: use lowercase letters/);
  }
  assert.match((await cli(["new", "fn", "--template", "lambda"], { cwd: dir })).stderr, /--template lambda: use function, streaming, extension, telemetry, proxy/);
  mkdirSync(join(dir, "taken"));
  writeFileSync(join(dir, "taken/keep.txt"), "mine");
  const taken = await cli(["new", "taken"], { cwd: dir });
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, /micro-lambda new: taken already exists and is not an empty folder/);
  assert.deepEqual(readdirSync(join(dir, "taken")), ["keep.txt"]);
  assert.deepEqual(readdirSync(dir), ["taken"], "nothing else was written");
});

test("new: writes the template with the project's name, and micro-lambda's version or the spec given", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-new-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  mkdirSync(join(dir, "empty-is-fine"));
  const run = await cli(["new", "empty-is-fine", "--template", "proxy"], { cwd: dir });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /cd empty-is-fine\n {2}npm install\n {2}npm test/);
  const written = join(dir, "empty-is-fine");
  assert.deepEqual(readdirSync(written).sort(), [".gitignore", "README.md", "package.json", "proxy-wrapper.sh", "src", "test", "tsconfig.json"]);
  const manifest = JSON.parse(readFileSync(join(written, "package.json"), "utf8"));
  assert.equal(manifest.name, "empty-is-fine");
  assert.deepEqual(manifest.devDependencies, { "@types/node": own.devDependencies["@types/node"], "micro-lambda": `^${own.version}`, tsx: own.dependencies.tsx, typescript: own.devDependencies.typescript });
  assert.deepEqual(manifest["micro-lambda"], { build: ["--extension", "--exec-wrapper", "proxy-wrapper.sh"] });
  assert.match(readFileSync(join(written, "src/main.ts"), "utf8"), /audit: "empty-is-fine"/);

  const spec = await cli(["new", "from-tarball"], { cwd: dir, env: { ...process.env, MICRO_LAMBDA_NEW_DEPENDENCY: "../micro-lambda-1.2.3.tgz" } });
  assert.equal(spec.code, 0, spec.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir, "from-tarball/package.json"), "utf8")).devDependencies["micro-lambda"], `file:${join(dir, "..", "micro-lambda-1.2.3.tgz")}`);
  const flag = await cli(["new", "from-flag", "--micro-lambda-spec", "2.0.0-beta.1"], { cwd: dir });
  assert.equal(JSON.parse(readFileSync(join(dir, "from-flag/package.json"), "utf8")).devDependencies["micro-lambda"], "2.0.0-beta.1");
});

test("watch: wrong command lines are usage errors", async (t) => {
  const dir = project(t, { "main.ts": greeter("Hello"), bootstrap: "" });
  const built = await cli(["watch", "./bootstrap"], { cwd: dir });
  assert.equal(built.code, 2);
  assert.match(built.stderr, /watch runs a main file from source \(.ts or .js\); to serve a built bootstrap, use serve/);
  const two = await cli(["watch", "main.ts", "--port", "0", "other.ts"], { cwd: dir });
  assert.equal(two.code, 2);
  assert.match(two.stderr, /other.ts: no such file/);
  writeFileSync(join(dir, "other.ts"), greeter("Hi"));
  const both = await cli(["watch", "main.ts", "--port", "0", "other.ts"], { cwd: dir });
  assert.equal(both.code, 2);
  assert.match(both.stderr, /one ENTRY at a time: main.ts, .*other.ts/);
});

/** `micro-lambda watch ARGS...` running in `dir`: what it prints can be waited for, and SIGTERM stops it. */
function watchProcess(t: TestContext, dir: string, args: string[]): { printed(pattern: RegExp): Promise<RegExpMatchArray>; stop(): Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", tsx, bin, "watch", ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  t.after(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  return {
    /** Waits until watch has printed `pattern`; what it printed up to there is then consumed. */
    async printed(pattern) {
      for (;;) {
        const match = stderr.match(pattern);
        if (match) {
          stderr = stderr.slice(match.index! + match[0].length);
          return match;
        }
        const more = await Promise.race([once(child.stderr, "data").then(() => true), exited.then(() => false)]);
        if (!more) throw new Error(`watch exited before printing ${pattern}:\n${stderr}`);
      }
    },
    stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

/** Invokes through the Invoke API, as curl does. */
function invokeOverHttp(url: string, event: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/2015-03-31/functions/function/invocations`, { method: "POST" }, async (res) => {
      let body = "";
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode!, body: JSON.parse(body) });
    });
    req.on("error", reject);
    req.end(JSON.stringify(event));
  });
}

test("watch: serves the entry from source; a saved change, in it or in a file it imports, is what the next invoke runs", async (t) => {
  const dir = project(t, {
    "src/main.ts": `import { greeting } from "./greeting.ts";\nimport { lambda } from ${JSON.stringify(runtime)};\nlambda(async (event: { name?: string }) => ({ message: greeting + ", " + event.name }));\n`,
    "src/greeting.ts": `export const greeting = "Hello";\n`,
  });
  const watching = watchProcess(t, dir, ["src/main.ts", "--port", "0"]);
  const printed = watching.printed;
  const [, url] = await printed(/invoke with: curl -d '\{\}' (http:\/\/127\.0\.0\.1:\d+)\//);
  assert.deepEqual(await invokeOverHttp(url!, { name: "first" }), { status: 200, body: { message: "Hello, first" } });

  writeFileSync(join(dir, "src/main.ts"), greeter("Howdy"));
  await printed(/src\/main.ts changed: restarted; the next invoke runs the new code/);
  assert.deepEqual(await invokeOverHttp(url!, { name: "second" }), { status: 200, body: { message: "Howdy, second" } });

  writeFileSync(join(dir, "src/main.ts"), `import { greeting } from "./greeting.ts";\nimport { lambda } from ${JSON.stringify(runtime)};\nlambda(async (event: { name?: string }) => ({ message: greeting + ", " + event.name }));\n`);
  await printed(/src\/main.ts changed: restarted/);
  writeFileSync(join(dir, "src/greeting.ts"), `export const greeting = "Bonjour";\n`);
  await printed(/src\/greeting.ts changed: restarted/);
  assert.deepEqual(await invokeOverHttp(url!, { name: "third" }), { status: 200, body: { message: "Bonjour, third" } });

  assert.equal(await watching.stop(), 0);
});

test("watch --extensions: the extensions restart with the function, when their source changes or the folder does", async (t) => {
  const extensionKit = join(root, "src/extension/index.ts");
  const sidecar = (version: string) => `import { extension } from ${JSON.stringify(extensionKit)};\nconsole.log("sidecar ${version} started");\nextension({ onShutdown() {} });\n`;
  const dir = project(t, { "src/main.ts": greeter("Hello"), "sidecar/sidecar.ts": sidecar("v1") });
  // An extension registers under its executable's name: the folder holds `sidecar`, which runs sidecar/sidecar.ts.
  mkdirSync(join(dir, "extensions"));
  writeFileSync(join(dir, "extensions/sidecar"), `#!/bin/sh\nexec '${process.execPath}' --import '${tsx}' '${join(dir, "sidecar/sidecar.ts")}'\n`, { mode: 0o755 });
  const watching = watchProcess(t, dir, ["src/main.ts", "--port", "0", "--extensions", "extensions"]);
  const [, url] = await watching.printed(/invoke with: curl -d '\{\}' (http:\/\/127\.0\.0\.1:\d+)\//);
  assert.deepEqual(await invokeOverHttp(url!, { name: "one" }), { status: 200, body: { message: "Hello, one" } });
  await watching.printed(/sidecar v1 started/);

  writeFileSync(join(dir, "sidecar/sidecar.ts"), sidecar("v2"));
  await watching.printed(/sidecar\/sidecar.ts changed: restarted/);
  assert.deepEqual(await invokeOverHttp(url!, { name: "two" }), { status: 200, body: { message: "Hello, two" } });
  await watching.printed(/sidecar v2 started/);

  writeFileSync(join(dir, "extensions/sidecar"), `#!/bin/sh\nexec '${process.execPath}' --import '${tsx}' '${join(dir, "sidecar/sidecar.ts")}' # rebuilt\n`);
  await watching.printed(/extensions\/sidecar changed: restarted/);
  assert.deepEqual(await invokeOverHttp(url!, { name: "three" }), { status: 200, body: { message: "Hello, three" } });
  await watching.printed(/sidecar v2 started/);
  assert.equal(await watching.stop(), 0);
});
