// Evicts files from the page cache and counts what of them is cached, through page-cache.c (compiled once with the
// machine's cc into node_modules/.cache/micro-lambda/bench/): a new Lambda sandbox starts with none of the
// function's files in memory, and this is how the bench starts a process that way without dropping every cache
// on the machine.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { root } from "./builds.ts";

const source = fileURLToPath(new URL("./page-cache.c", import.meta.url));
const cacheDir = join(root, "node_modules/.cache/micro-lambda/bench");

/** One file as page-cache.c saw it. */
export interface Cached {
  path: string;
  size: number;
  /** Bytes of the file in the page cache. */
  cached: number;
}

let compiled: Promise<string> | undefined;

/**
 * The helper's path, compiled on first use (its name holds a hash of the source, so an edit recompiles it), and
 * again if it went away meanwhile (`npm ci`, which .ci/setup runs when the lockfile changed, empties node_modules).
 */
export async function pageCacheTool(): Promise<string> {
  if (compiled && !existsSync(await compiled.catch(() => ""))) compiled = undefined;
  compiled ??= compile();
  return compiled;
}

async function compile(): Promise<string> {
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 12);
  const tool = join(cacheDir, `page-cache-${hash}`);
  if (existsSync(tool)) return tool;
  mkdirSync(cacheDir, { recursive: true });
  const partial = `${tool}.${process.pid}`;
  await run(process.env.CC ?? "cc", ["-O2", "-Wall", "-o", partial, source]).catch((error: Error) => {
    throw new Error(`cannot compile test/bench/lib/page-cache.c, which the cold page cache figures need (a C compiler: apt-get install gcc): ${error.message}`);
  });
  renameSync(partial, tool);
  return tool;
}

/** Drops `files` from the page cache; resolves with what is still cached of each (pages other processes map stay). */
export async function evict(files: string[]): Promise<Cached[]> {
  return parse(await run(await pageCacheTool(), ["evict", ...files]));
}

/** What of `files` is in the page cache. */
export async function cached(files: string[]): Promise<Cached[]> {
  return parse(await run(await pageCacheTool(), ["resident", ...files]));
}

/** What of `file` is in the page cache, page by page ('1' cached, '0' not; page i holds bytes [4096 i, 4096 (i + 1))). */
export async function cachedPages(file: string): Promise<Cached & { pages: string }> {
  const [summary, pages = ""] = (await run(await pageCacheTool(), ["pages", file])).split("\n");
  return { ...parse(summary)[0], pages };
}

export function totalCached(files: Cached[]): number {
  return files.reduce((sum, file) => sum + file.cached, 0);
}

/** "CACHED SIZE PATH" lines; an "error ERRNO PATH" line fails the whole call, naming the file. */
export function parse(output: string): Cached[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const match = /^(\d+) (\d+) (.+)$/.exec(line);
      if (!match) throw new Error(`page-cache: ${line}`);
      return { cached: Number(match[1]), size: Number(match[2]), path: match[3] };
    });
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.slice(0, 3).join(" ")}${args.length > 3 ? " …" : ""}: ${`${stdout}${stderr}`.trim().slice(-800) || error.message}`));
      else resolve(stdout);
    });
  });
}
