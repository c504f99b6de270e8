// Built bootstraps for the tests: each (entry, arch, flags) is built by build.sh once and shared by every test file, and rebuilt only when an input changed.
//
// Builds are slow (10-15 s each), and node:test runs test files in parallel processes, so a build is
// (1) memoized in this process, (2) skipped when dist/ already holds it, built with the same arguments
// after the last change to any input, and (3) guarded by a lock directory so that two processes never
// build the same output at once (the second waits, then finds it fresh).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { root } from "./helpers.ts";

/** CPU architectures, spelled as Lambda spells them. */
export type Arch = "x86_64" | "arm64";
export const arches: Arch[] = ["x86_64", "arm64"];
export const hostArch: Arch = process.arch === "arm64" ? "arm64" : "x86_64";

export interface Built {
  /** The name build.sh was given: the output is dist/NAME/ARCH. */
  name: string;
  arch: Arch;
  /** dist/NAME/ARCH, absolute. */
  dir: string;
  /** The bootstrap (or, with --extension, extensions/NAME), absolute. */
  executable: string;
  /** function.zip (or extension.zip), absolute. */
  zip: string;
  /** What build.sh printed, or "" when the build was reused. */
  log: string;
}

/**
 * Builds `entry` for `arch` with build.sh (or reuses the build) and resolves to the executable's absolute path.
 * `entry` is an example's name (`"hello"` → examples/hello/main.ts) or a main file's path from the project root.
 */
export async function bootstrap(entry: string, arch: Arch, flags: string[] = []): Promise<string> {
  return (await build(entry, arch, flags)).executable;
}

/** The command that runs a built executable: itself on its own architecture, under qemu-user on the other. */
export function command(executable: string, arch: Arch): string[] {
  if (arch === hostArch) return [executable];
  const triple = arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [`qemu-${triple.split("-")[0]}-static`, "-L", `/usr/${triple}`, executable];
}

const builds = new Map<string, Promise<Built>>();

/** Like `bootstrap`, with everything about the build. The dist name is the entry's folder plus the flags (`heavy-init-snapshot`) unless `--name` is among them. */
export function build(entry: string, arch: Arch, flags: string[] = []): Promise<Built> {
  const main = entry.includes("/") ? entry : `examples/${entry}/main.ts`;
  const key = JSON.stringify([main, arch, flags]);
  let built = builds.get(key);
  if (!built) {
    built = buildOnce(main, arch, flags);
    builds.set(key, built);
  }
  return built;
}

async function buildOnce(main: string, arch: Arch, flags: string[]): Promise<Built> {
  const nameAt = flags.indexOf("--name");
  const name = nameAt >= 0 ? flags[nameAt + 1]! : [basename(dirname(main)), ...flags.map((flag) => flag.replace(/^--/, ""))].join("-");
  const args = [join(root, main), "--arch", arch, ...(nameAt >= 0 ? [] : ["--name", name]), ...flags];
  const extension = flags.includes("--extension");
  const dir = join(root, "dist", name, arch);
  const built: Built = {
    name,
    arch,
    dir,
    executable: join(dir, extension ? `extensions/${name}` : "bootstrap"),
    zip: join(dir, extension ? "extension.zip" : "function.zip"),
    log: "",
  };
  const stamp = join(dir, ".build-args");
  const inputs = [join(root, "src"), join(root, dirname(main)), ...["build.sh", "package-lock.json", "tsconfig.json"].map((file) => join(root, file))];
  const description = JSON.stringify([main, ...args.slice(1)]);
  const fresh = () => readOr(stamp) === description && mtime(built.zip) > newest(inputs);

  return withLock(`${name}-${arch}`, async () => {
    if (fresh()) return built;
    rmSync(stamp, { force: true });
    const { code, output } = await buildSh(args);
    if (code !== 0) throw new Error(`./build.sh ${[main, ...args.slice(1)].join(" ")} failed (exit ${code}):\n${output}`);
    writeFileSync(stamp, description);
    return { ...built, log: output };
  });
}

/** Runs build.sh (this project's, or `script`) with `args`; stdout and stderr together, as a person would see them. */
export function buildSh(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; script?: string } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const script = options.script ?? join(root, "build.sh");
    const child = spawn("bash", [script, ...args], { cwd: options.cwd ?? root, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (output += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** Runs `work` while holding the lock dist/.locks/NAME (see `holdingLock`). */
function withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
  return holdingLock(join(root, "dist", ".locks", name), work);
}

/**
 * Runs `work` while holding the lock `lock`: a directory holding the owner's pid, created whole by renaming a
 * prepared one (atomic: the rename fails when the lock exists). A lock whose owner died is taken over.
 */
export async function holdingLock<T>(lock: string, work: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(lock), { recursive: true });
  const mine = mkdtempSync(`${lock}.`);
  writeFileSync(join(mine, "pid"), String(process.pid));
  for (;;) {
    try {
      renameSync(mine, lock);
      break;
    } catch (error) {
      if (!["EEXIST", "ENOTEMPTY"].includes((error as NodeJS.ErrnoException).code!)) throw error;
      const owner = Number(readOr(join(lock, "pid")));
      if (owner && !alive(owner)) rmSync(lock, { recursive: true, force: true });
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readOr(file: string, otherwise = ""): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return otherwise;
  }
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** The latest modification time of the files (and, recursively, folders) given. */
function newest(paths: string[]): number {
  let latest = 0;
  for (const path of paths) {
    const stats = statSync(path, { throwIfNoEntry: false });
    if (!stats) continue;
    latest = Math.max(latest, stats.mtimeMs);
    if (stats.isDirectory()) latest = Math.max(latest, newest(readdirSync(path).map((entry) => join(path, entry))));
  }
  return latest;
}
