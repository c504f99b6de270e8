// What the extension tests share: a generated extensions folder, a file a fixture records into, the emulator's log output.
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
