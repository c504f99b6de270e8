// What the extension tests share: a generated extensions folder, a file a fixture records into, the emulator's log output.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { TestContext } from "node:test";
import { root, tsx } from "./helpers.ts";

/** A temporary extensions folder holding, for each fixture name, an executable of that name that runs test/fixtures/extensions/NAME.ts. */
export function extensionsDir(t: TestContext, names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-extensions-"));
  for (const name of names) {
    writeFileSync(join(dir, name), `#!/bin/sh\nexec "${tsx}" "${join(root, "test/fixtures/extensions", `${name}.ts`)}"\n`, { mode: 0o755 });
  }
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A file for a fixture to record into, and a reader of its JSON lines. */
export function recordFile(t: TestContext): { path: string; read(): any[] } {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-record-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "record.jsonl");
  return {
    path,
    read: () => (existsSync(path) ? readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((line) => JSON.parse(line)) : []),
  };
}

/** The emulator's log output (what CloudWatch Logs would hold), collected. */
export function logOutput(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  let text = "";
  stream.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  return { stream, text: () => text };
}

/** A temporary extensions folder with one executable per entry: NAME runs COMMAND (a built extension under qemu, say). */
export function extensionsFolder(t: TestContext, extensions: Record<string, string[]>): string {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-extensions-"));
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  for (const [name, command] of Object.entries(extensions)) writeFileSync(join(dir, name), `#!/bin/sh\nexec ${command.map(quote).join(" ")}\n`, { mode: 0o755 });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export type Arch = "x86_64" | "arm64";

/** The command that runs a built executable of `arch` here: natively, or under qemu-user for arm64. */
export function archCommand(path: string, arch: Arch): string[] {
  return arch === "arm64" ? ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", path] : [path];
}

const builds = new Map<string, Promise<string>>();
let buildQueue: Promise<unknown> = Promise.resolve();

/**
 * Builds ENTRY with build.sh once per process (one build at a time: the machine has 2 cores) and resolves with
 * dist/NAME/ARCH: `bootstrap` in it for a function, `extensions/NAME` for an extension.
 */
export function built(entry: string, name: string, arch: Arch, extension = false): Promise<string> {
  const key = `${name}/${arch}`;
  let build = builds.get(key);
  if (!build) {
    const args = [entry, "--name", name, "--arch", arch, ...(extension ? ["--extension"] : [])];
    build = buildQueue.then(
      () =>
        new Promise<string>((resolve, reject) => {
          execFile(join(root, "build.sh"), args, { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
            if (error) reject(new Error(`./build.sh ${args.join(" ")} failed:\n${stdout}\n${stderr}`));
            else resolve(join(root, "dist", name, arch));
          });
        }),
    );
    buildQueue = build.catch(() => {});
    builds.set(key, build);
  }
  return build;
}
