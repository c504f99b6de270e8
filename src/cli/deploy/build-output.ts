// What `micro-lambda build` left in dist/NAME/ARCH, as deploy needs to know it: the zip and its SHA-256, the CPU
// its executable was compiled for, whether it ships its own glibc (an --al2 build), and whether the function streams.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { readStart, zipEntries, type ZipEntry } from "./zip.ts";

/** CPU architectures, spelled as Lambda spells them. */
export type Arch = "x86_64" | "arm64";
export const arches: readonly Arch[] = ["x86_64", "arm64"];

export interface BuildOutput {
  name: string;
  arch: Arch;
  /** A function (function.zip, bootstrap at its root) or an extension (extension.zip, extensions/NAME: a layer). */
  kind: "function" | "extension";
  /** The zip's path from the current directory, for messages. */
  path: string;
  zip: Buffer;
  /** SHA-256 of the zip, base64: what Lambda reports as CodeSha256 for the code it holds. */
  sha256: string;
  /** glibc ships in lib/ beside the executable: built with --al2, for the provided.al2 runtime. */
  al2: boolean;
  /** The function uses streamifyResponse; undefined when the bundle that would tell is missing. */
  streaming: boolean | undefined;
}

/** ELF e_machine values (the System V ABI's processor supplements). */
const elfMachines: Record<number, Arch> = { 62: "x86_64", 183: "arm64" };

/** The build of NAME for ARCH in PROJECT/dist, checked: a missing or wrong build throws a message that says which build command to run. */
export function readBuildOutput(project: string, name: string, arch: Arch, kind: BuildOutput["kind"]): BuildOutput {
  const dir = join(project, "dist", name, arch);
  const zipName = kind === "function" ? "function.zip" : "extension.zip";
  const path = relative(process.cwd(), join(dir, zipName)) || zipName;
  const rebuild = buildCommand(project, name, kind, arch);
  if (!existsSync(join(dir, zipName))) {
    const other = kind === "function" ? "extension.zip" : "function.zip";
    if (existsSync(join(dir, other))) {
      const hint = kind === "function" ? "deploy it as a layer with --extension" : "deploy it without --extension";
      throw new Error(`${path} not found, but ${other} is there: dist/${name}/${arch} holds ${kind === "function" ? "an extension" : "a function"}: ${hint}, or build it again: ${rebuild}`);
    }
    const built = builtArches(project, name);
    const seen = built.length > 0 ? ` (dist/${name} holds ${built.join(" and ")} only)` : "";
    throw new Error(`${path} not found${seen}: build it first: ${rebuild}`);
  }

  const zip = readFileSync(join(dir, zipName));
  let entries: ZipEntry[];
  try {
    entries = zipEntries(zip);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}: build it again: ${rebuild}`);
  }
  // Lambda runs /var/task/bootstrap for a function, and every file in /opt/extensions/ for an extension.
  const executable =
    kind === "function" ? entries.find((entry) => entry.name === "bootstrap") : entries.find((entry) => /^extensions\/[^/]+$/.test(entry.name));
  if (!executable) throw new Error(`${path} holds no ${kind === "function" ? "bootstrap at its root" : "extensions/NAME"}: build it again: ${rebuild}`);
  if ((executable.mode & 0o111) === 0) throw new Error(`${path}: ${executable.name} is not executable (no exec bit in the zip): build it again: ${rebuild}`);
  const header = readStart(zip, executable, 20);
  const compiledFor = header.subarray(0, 4).toString("latin1") === "\x7fELF" ? elfMachines[header.readUInt16LE(18)] : undefined;
  if (compiledFor !== arch) {
    const what = compiledFor ? `an ${compiledFor} executable` : "no Linux executable for x86_64 or arm64";
    throw new Error(`${path}: ${executable.name} is ${what}, not ${arch}: Lambda would fail to start it (Runtime.InvalidEntrypoint). Build it again: ${rebuild}`);
  }

  const bundle = join(dir, "sea", "bundle.cjs");
  return {
    name,
    arch,
    kind,
    path,
    zip,
    sha256: createHash("sha256").update(zip).digest("base64"),
    al2: entries.some((entry) => entry.name.startsWith("lib/ld-linux")),
    streaming: existsSync(bundle) ? streams(readFileSync(bundle, "utf8")) : undefined,
  };
}

/** Sizes as build.sh prints them: decimal megabytes. */
export function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** The architectures dist/NAME holds a build for: of `kind`, or of either kind. */
export function builtArches(project: string, name: string, kind?: BuildOutput["kind"]): Arch[] {
  const zips = kind === undefined ? ["function.zip", "extension.zip"] : [kind === "function" ? "function.zip" : "extension.zip"];
  return arches.filter((arch) => zips.some((zip) => existsSync(join(project, "dist", name, arch, zip))));
}

/**
 * Whether a bundle defines micro-lambda's streamifyResponse. esbuild drops what nothing uses and build.sh keeps
 * names (--keep-names, no identifier minification), so the function is in the bundle exactly when the function
 * file uses it, which is what marks a streaming handler (src/runtime/streaming.ts).
 */
function streams(bundle: string): boolean {
  return /\bfunction streamifyResponse\(/.test(bundle);
}

/** The command that builds NAME, for messages; ENTRY is the project's likeliest main file for NAME. */
export function buildCommand(project: string, name: string, kind: BuildOutput["kind"], arch?: Arch): string {
  const candidates = [`src/${name}/main.ts`, `${name}/main.ts`, `src/${name}/index.ts`, `src/${name}.ts`, `${name}.ts`, `examples/${name}/main.ts`];
  const entry = candidates.find((file) => existsSync(join(project, file))) ?? "ENTRY";
  return `npx micro-lambda build ${entry} --name ${name}${arch ? ` --arch ${arch}` : ""}${kind === "extension" ? " --extension" : ""}`;
}
