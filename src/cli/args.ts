// What every CLI command shares: its usage error, where the package and the user's project are, and how a
// function given on the command line becomes a command to run.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** A wrong command line: the CLI prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The folder of micro-lambda's own package.json: the repository, or node_modules/micro-lambda. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "micro-lambda") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find micro-lambda's package.json above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** The user's project: the nearest folder upward from `from` that has a package.json, or undefined. */
export function projectRoot(from = process.cwd()): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** tsx's loader, as a URL `node --import` takes: a source file runs on the host's Node, compiled as it loads. */
export function tsxLoader(): string {
  return import.meta.resolve("tsx");
}

const sourceFile = /\.(c|m)?(t|j)sx?$/;

/**
 * The first word of a function's command: a TypeScript or JavaScript main file runs under tsx on this
 * machine's Node; a path (a built bootstrap) is executed as it is; a bare word is a command on PATH.
 */
export function functionCommand(word: string): string[] {
  const isPath = word.includes("/") || sourceFile.test(word);
  if (isPath && !existsSync(word)) throw new UsageError(`${word}: no such file`);
  if (sourceFile.test(word)) return [process.execPath, "--import", tsxLoader(), resolve(word)];
  return [isPath ? resolve(word) : word];
}
