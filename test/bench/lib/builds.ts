// The bootstraps the bench measures. Built through test/bootstraps.ts (shared, reused while fresh) under the
// bench's own names (dist/bench-*: a test run rebuilding dist/hello cannot swap a binary under a measurement);
// the size section times real builds with `timedBuild`, which always runs build.sh.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { build as sharedBuild, buildSh, type Arch } from "../../bootstraps.ts";

export type { Arch };
export const root = fileURLToPath(new URL("../../..", import.meta.url));

export interface Built {
  /** dist/NAME/ARCH */
  name: string;
  arch: Arch;
  /** The build.sh flags besides --name and --arch. */
  flags: string[];
  dir: string;
  bootstrap: string;
  zip: string;
  /** The esbuild bundle that went into the SEA blob, for `node bundle` runs. */
  bundle: string;
  zipBytes: number;
  /** Everything the zip holds, uncompressed (the bootstrap, and lib/ with --al2). */
  unzippedBytes: number;
}

/** The Node version build.sh ships by default (its DEFAULT_NODE_VERSION). */
export function nodeVersion(): string {
  const match = /^readonly DEFAULT_NODE_VERSION=(\S+)$/m.exec(readFileSync(join(root, "build.sh"), "utf8"));
  if (!match) throw new Error("cannot find DEFAULT_NODE_VERSION in build.sh");
  return match[1];
}

/** The target Node binary build.sh caches (stripped): the same binary the bootstrap is made of. */
export function targetNode(arch: Arch = "x86_64"): string {
  return join(root, "node_modules/.cache/micro-lambda/node", nodeVersion(), arch, "node");
}

/**
 * A byte-identical copy of the target Node binary that only the bench runs. Pages that a process has mapped
 * cannot be evicted from the page cache, and tests elsewhere on the machine run the shared copy: the bench's
 * cold-cache runs need a binary no one else holds.
 */
export function privateNode(arch: Arch = "x86_64"): string {
  const shared = targetNode(arch);
  const copy = join(root, "node_modules/.cache/micro-lambda/bench", `node-${nodeVersion()}-${arch}`);
  if (existsSync(copy) && statSync(copy).size === statSync(shared).size && statSync(copy).mtimeMs >= statSync(shared).mtimeMs) return copy;
  mkdirSync(dirname(copy), { recursive: true });
  const partial = `${copy}.${process.pid}`;
  copyFileSync(shared, partial);
  renameSync(partial, copy);
  return copy;
}

/** `entry` (from the project root) built for `arch` as dist/bench-NAME[-flags]/ARCH, or reused when fresh. */
export async function build(entry: string, name: string, arch: Arch, flags: string[] = []): Promise<Built> {
  const built = await sharedBuild(entry, arch, [...flags, "--name", benchName(name, flags)]);
  return describe(built.name, arch, flags);
}

/** Always runs build.sh (as dist/bench-size-NAME[-flags]/ARCH) and times it: for the build-time figures. */
export async function timedBuild(entry: string, name: string, arch: Arch, flags: string[] = []): Promise<Built & { seconds: number }> {
  const folder = benchName(`size-${name}`, flags);
  rmSync(join(root, "dist", folder, arch), { recursive: true, force: true });
  const started = performance.now();
  const { code, output } = await buildSh([entry, "--name", folder, "--arch", arch, ...flags]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`./build.sh ${entry} --arch ${arch} ${flags.join(" ")} failed (exit ${code}): ${output.trim().slice(-1500)}`);
  return { ...describe(folder, arch, flags), seconds };
}

function benchName(name: string, flags: string[]): string {
  return ["bench", name, ...flags.map((flag) => flag.replace(/^--/, ""))].join("-");
}

function describe(name: string, arch: Arch, flags: string[]): Built {
  const dir = join(root, "dist", name, arch);
  const bundle = ["bundle.cjs", "bundle.js"].map((file) => join(dir, "sea", file)).find((file) => existsSync(file));
  if (!bundle) throw new Error(`${dir}/sea holds no bundle.cjs or bundle.js`);
  const bootstrap = join(dir, "bootstrap");
  const zip = join(dir, "function.zip");
  const unzippedBytes = statSync(bootstrap).size + (existsSync(join(dir, "lib")) ? folderBytes(join(dir, "lib")) : 0);
  return { name, arch, flags, dir, bootstrap, zip, bundle, zipBytes: statSync(zip).size, unzippedBytes };
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}
