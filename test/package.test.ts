// The real journey: micro-lambda packed with `npm pack`, installed from the tarball into fresh projects outside
// this repository (ESM with npm, CommonJS with pnpm), each with an npm dependency of its own; built there with
// `npx micro-lambda build`, invoked, tested from plain `node` with the Emulator, type-checked by the project's own
// tsc; and every `micro-lambda new` template's own `npm test` and build.
//
// One tarball and one Node download cache (this repository's) serve every project; installs prefer npm's cache.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { root } from "./helpers.ts";

/** pnpm, pinned: the version the CommonJS project is installed with. */
const PNPM = "pnpm@10.34.8";
const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const work = mkdtempSync(join(tmpdir(), "micro-lambda-package-"));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * The environment a user's shell would have: none of the npm_* variables `npm test` sets for this repository
 * (they would point npm at it), no coverage collection, and no NODE_TEST_CONTEXT (with it, a project's own
 * `node --test` would report to this test runner instead of printing); the Node cache shared, zips at level 1.
 */
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|INIT_CWD$|NODE_V8_COVERAGE$|NODE_TEST_CONTEXT$)/i.test(name))),
  MICRO_LAMBDA_CACHE: join(root, "node_modules/.cache/micro-lambda"),
  ZIP_LEVEL: "1",
};

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a command in `cwd` as a user would in a shell; rejects with everything it printed when it fails. */
function sh(cwd: string, command: string, extra: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile("sh", ["-c", command], { cwd, env: { ...env, ...extra }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} (in ${cwd}) failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Runs `make` the first time it is asked for, and hands every caller the same promise. */
function shared<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

const tarball = shared(async () => {
  const dir = join(work, "pack");
  mkdirSync(dir);
  await sh(root, `npm pack --silent --pack-destination '${dir}'`);
  const [file] = readdirSync(dir);
  return join(dir, file!);
});

/** A fresh project folder with these files. */
function writeProject(name: string, files: Record<string, string | object>): string {
  const dir = join(work, name);
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), typeof content === "string" ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

/** A file that uses every entry point's types; `@ts-expect-error` lines fail the check if the types were `any`. */
const typesCheck = `import { lambda, type Context } from "micro-lambda";
import { Emulator, type InvokeResult } from "micro-lambda/emulator";
import { extension, type InvokeEvent } from "micro-lambda/extension";
import { subscribeTelemetry, type TelemetryEvent } from "micro-lambda/telemetry";
import { runtimeApiProxy, type ProxiedEvent } from "micro-lambda/proxy";

lambda(async (event: { name: string }, context: Context) => ({ hello: event.name, id: context.awsRequestId }));
// @ts-expect-error: Context has no such field
lambda(async (_event: unknown, context: Context) => context.noSuchField);
export async function check(): Promise<void> {
  const emulator = await Emulator.start({ command: ["bootstrap"] });
  const result: InvokeResult = await emulator.invoke({});
  // @ts-expect-error: invoke() resolves to an InvokeResult, whose ok is a boolean
  const wrong: string = result.ok;
  void [wrong, extension, subscribeTelemetry, runtimeApiProxy];
  const types: [InvokeEvent?, TelemetryEvent?, ProxiedEvent?] = [];
  void types;
}
`;
const tsconfig = (module: string, moduleResolution: string) => ({
  compilerOptions: { module, moduleResolution, target: "es2022", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
  files: ["types-check.ts"],
});

/** The ESM project: "type": "module", installed with npm, depending on ms. */
const esmProject = shared(async () => {
  const dir = writeProject("esm-app", {
    "package.json": { name: "esm-app", version: "1.0.0", private: true, type: "module", dependencies: { ms: "2.1.3" } },
    "src/main.ts": `import ms from "ms";\nimport { lambda } from "micro-lambda";\n\nlambda(async (event: { wait?: string }) => ({ ms: ms(event.wait ?? "1m") }));\n`,
    "types-check.ts": typesCheck,
    "tsconfig.nodenext.json": tsconfig("nodenext", "nodenext"),
    "tsconfig.bundler.json": tsconfig("preserve", "bundler"),
    // Plain node, no tsx: the compiled exports, with import and with require.
    "test/import.test.mjs": `import assert from "node:assert/strict";\nimport { test } from "node:test";\nimport { Emulator } from "micro-lambda/emulator";\n\ntest("import", async () => {\n  const emulator = await Emulator.start({ command: ["dist/esm-app/x86_64/bootstrap"] });\n  const result = await emulator.invoke({ wait: "2s" });\n  await emulator.close();\n  assert.deepEqual(result.result, { ms: 2000 });\n});\n`,
    "test/require.test.cjs": `const assert = require("node:assert/strict");\nconst { test } = require("node:test");\nconst { Emulator } = require("micro-lambda/emulator");\n\ntest("require", async () => {\n  const emulator = await Emulator.start({ command: ["dist/esm-app/x86_64/bootstrap"] });\n  const result = await emulator.invoke({ wait: "3s" });\n  await emulator.close();\n  assert.deepEqual(result.result, { ms: 3000 });\n});\n`,
  });
  await sh(dir, `npm install --prefer-offline --no-audit --no-fund --loglevel=error --save-dev '${await tarball()}' typescript@${own.devDependencies.typescript} @types/node@${own.devDependencies["@types/node"]}`);
  return dir;
});

/** The CommonJS project: no "type", installed with pnpm, depending on ms. */
const cjsProject = shared(async () => {
  const dir = writeProject("cjs-app", {
    "package.json": { name: "cjs-app", version: "1.0.0", private: true, dependencies: { ms: "2.1.3" } },
    "src/handler.ts": `import ms = require("ms");\nimport { lambda } from "micro-lambda";\n\nlambda(async (event: { wait?: string }) => ({ ms: ms(event.wait ?? "1m"), arch: process.arch }));\n`,
    "types-check.ts": typesCheck,
    "tsconfig.nodenext.json": tsconfig("nodenext", "nodenext"),
    "tsconfig.bundler.json": tsconfig("preserve", "bundler"),
    "test/require.test.js": `const assert = require("node:assert/strict");\nconst { test } = require("node:test");\nconst { Emulator } = require("micro-lambda/emulator");\n\ntest("require, arm64 under qemu", async () => {\n  const emulator = await Emulator.start({ command: ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", "dist/cjs-fn/arm64/bootstrap"], initTimeoutMs: 30000 });\n  const result = await emulator.invoke({ wait: "1h" });\n  await emulator.close();\n  assert.deepEqual(result.result, { ms: 3600000, arch: "arm64" });\n});\n`,
  });
  await sh(dir, `npx --yes ${PNPM} add --prefer-offline --save-dev 'file:${await tarball()}' typescript@${own.devDependencies.typescript} @types/node@${own.devDependencies["@types/node"]}`);
  return dir;
});

test("the tarball holds the compiled entry points, build.sh and src/, and no tests, fixtures or build output", async () => {
  const { stdout } = await sh(work, `tar -tzf '${await tarball()}'`);
  const files = stdout.trim().split("\n").map((line) => line.replace(/^package\//, ""));
  for (const file of ["package.json", "README.md", "build.sh", "lib/esm/cli/bin.js", "src/proxy/proxy-wrapper.sh", "src/cli/templates/function/test/main.test.ts"]) {
    assert.ok(files.includes(file), `${file} is in the tarball`);
  }
  assert.ok(files.some((file) => file.startsWith("src/snapshot/")), "src/snapshot/, which build.sh --snapshot uses");
  for (const exported of Object.values(own.exports as Record<string, string | Record<string, { types: string; default: string }>>)) {
    if (typeof exported === "string") continue;
    for (const { types, default: js } of Object.values(exported)) assert.ok(files.includes(types.slice(2)) && files.includes(js.slice(2)), `${js} and ${types}`);
  }
  assert.deepEqual(files.filter((file) => /^(test|dist|examples|\.ci|node_modules)\/|fixtures/.test(file)), []);
});

test("ESM project, npm: npx micro-lambda build writes the zip into the project's own dist/, and invoke runs it", async () => {
  const dir = await esmProject();
  const built = await sh(dir, "npx micro-lambda build --arch x86_64");
  assert.match(built.stderr, /micro-lambda build: output in dist\//);
  assert.ok(existsSync(join(dir, "dist/esm-app/x86_64/function.zip")), "dist/esm-app/x86_64/function.zip, named after the package");
  assert.equal(existsSync(join(dir, "node_modules/micro-lambda/dist")), false, "nothing is written inside the package");
  assert.equal(existsSync(join(dir, "node_modules/micro-lambda/node_modules/.cache")), false);
  const invoked = await sh(dir, `npx micro-lambda invoke --event '{"wait":"2h"}' dist/esm-app/x86_64/bootstrap`);
  assert.deepEqual(JSON.parse(invoked.stdout), { ms: 7_200_000 });
  const fromStdin = await sh(dir, `echo '{"wait":"1d"}' | npx micro-lambda invoke --event - dist/esm-app/x86_64/bootstrap`);
  assert.deepEqual(JSON.parse(fromStdin.stdout), { ms: 86_400_000 });
});

test("ESM project: the Emulator from plain node tests, with import and with require", async () => {
  const dir = await esmProject();
  assert.ok(existsSync(join(dir, "dist/esm-app/x86_64/bootstrap")), "built by the test before");
  const run = await sh(dir, "node --test test/import.test.mjs test/require.test.cjs");
  assert.match(run.stdout, /# pass 2\n# fail 0/);
});

test("ESM project: the user's tsc type-checks every entry point with moduleResolution nodenext and bundler", async () => {
  const dir = await esmProject();
  await sh(dir, "npx tsc -p tsconfig.nodenext.json && npx tsc -p tsconfig.bundler.json");
});

test("CommonJS project, pnpm: build for arm64, invoke under qemu, the Emulator with require, and tsc", async () => {
  const dir = await cjsProject();
  await sh(dir, "npx micro-lambda build src/handler.ts --name cjs-fn --arch arm64");
  assert.deepEqual(readdirSync(join(dir, "dist")), ["cjs-fn"]);
  assert.ok(existsSync(join(dir, "dist/cjs-fn/arm64/function.zip")));
  const invoked = await sh(dir, `npx micro-lambda invoke --event '{"wait":"5m"}' -- qemu-aarch64-static -L /usr/aarch64-linux-gnu dist/cjs-fn/arm64/bootstrap`);
  assert.deepEqual(JSON.parse(invoked.stdout), { ms: 300_000, arch: "arm64" });
  const run = await sh(dir, "node --test test/require.test.js");
  assert.match(run.stdout, /# pass 1\n# fail 0/);
  await sh(dir, "npx tsc -p tsconfig.nodenext.json && npx tsc -p tsconfig.bundler.json");
});

// Two at a time: an install mostly waits on the disk while a build uses the CPU. (The templates' own tsc runs in
// this repository's typecheck, against the same types.)
describe("every template of micro-lambda new", { concurrency: 2 }, () => {
  for (const template of ["function", "streaming", "extension", "telemetry", "proxy"]) {
    test(`new --template ${template}: npm install, npm test, npx micro-lambda build, and the test again on what was built`, async () => {
      const installed = await esmProject(); // its micro-lambda writes the project, as npx micro-lambda new would
      const name = `new-${template}`;
      await sh(work, `node '${join(installed, "node_modules/micro-lambda/lib/esm/cli/bin.js")}' new ${name} --template ${template}`, { MICRO_LAMBDA_NEW_DEPENDENCY: await tarball() });
      const dir = join(work, name);
      await sh(dir, "npm install --prefer-offline --no-audit --no-fund --loglevel=error");
      assert.match((await sh(dir, "npm test")).stdout, /# fail 0/);
      await sh(dir, "npx micro-lambda build --arch x86_64");
      const executable = ["function", "streaming"].includes(template) ? `dist/${name}/x86_64/bootstrap` : `dist/${name}/x86_64/extensions/${name}`;
      assert.ok(existsSync(join(dir, executable)), executable);
      assert.match((await sh(dir, "npm test", { BOOTSTRAP: executable })).stdout, /# fail 0/);
    });
  }
});
