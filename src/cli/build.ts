// `micro-lambda build`: checks the command line, then runs build.sh (the build engine, at the package's root)
// in the user's project, with the tools and the cache it should use.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, resolve } from "node:path";
import { packageRoot, projectRoot, UsageError } from "./args.ts";

export const buildUsage = `usage: micro-lambda build [ENTRY] [options]

Bundles ENTRY (default: src/main.ts, else main.ts) with esbuild and compiles it into one stripped Node
executable, per architecture: dist/NAME/ARCH/bootstrap and dist/NAME/ARCH/function.zip, in the project
(the nearest folder upward with a package.json).

options:
  --name NAME           output folder (and an extension's name); default: the package's name for the
                        project's own main.ts or index.ts (at its root or in src/), ENTRY's folder for
                        another main.ts or index.ts, else ENTRY's file name without its extension
  --arch ARCH           x86_64, arm64 or all (default all)
  --node VERSION        exact Node version of the bootstrap (default: build.sh's pinned one)
  --snapshot            run the function's init at build time and ship a V8 startup snapshot of it
  --no-code-cache       leave V8's code cache out of the executable
  --al2                 ship glibc with the bootstrap, for provided.al2
  --extension           build a Lambda extension: dist/NAME/ARCH/extension.zip, a layer
  --exec-wrapper FILE   with --extension: put FILE at the layer's root, for AWS_LAMBDA_EXEC_WRAPPER
  --verbose             show what the tools print in full

A project's package.json may give arguments every build starts with (the command line overrides them):
  "micro-lambda": { "build": ["--extension", "--arch", "arm64"] }

environment: MICRO_LAMBDA_CACHE (where Node binaries are cached; default node_modules/.cache/micro-lambda,
or $XDG_CACHE_HOME/micro-lambda), ZIP_LEVEL, SOURCE_DATE_EPOCH.`;

const valueFlags = new Set(["--name", "--arch", "--node", "--exec-wrapper"]);
const switches = new Set(["--snapshot", "--no-code-cache", "--al2", "--extension", "--verbose"]);
const plainName = /^[A-Za-z0-9._-]+$/;

/**
 * Why this machine cannot build, or undefined when it can: a bootstrap is made by running the Linux Node it
 * ships (natively, or the other architecture under qemu-user), so the build runs on x86_64 or arm64 Linux.
 */
export function hostProblem(platform: string = process.platform, arch: string = process.arch): string | undefined {
  if (platform === "linux" && (arch === "x64" || arch === "arm64")) return undefined;
  return (
    `this machine runs ${platform} on ${arch}, and a bootstrap is made by running the Linux Node it ships: build on x86_64 or arm64 Linux, ` +
    `in a Linux container (docker run --rm -v "$PWD":/app -w /app node:24 npx micro-lambda build) or on a Linux CI runner`
  );
}

/** A build's command line, checked: the entry (if given), the value flags (the last one given wins) and the switches. */
interface Request {
  entry?: string;
  values: Map<string, string>;
  switches: Set<string>;
}

/** Reads `argv` into `request`; paths in it are relative to `base`, and `where` says where it came from, in messages. */
function parse(argv: string[], request: Request, base: string, where: string): void {
  let entry: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (valueFlags.has(arg)) {
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value${where}`);
      if (arg === "--name" && (!plainName.test(value) || value === "." || value === "..")) {
        throw new UsageError(`--name ${JSON.stringify(value)}${where}: use letters, digits, '.', '_' and '-' (a folder name, not a path)`);
      }
      if (arg === "--arch" && !["x86_64", "arm64", "all"].includes(value)) throw new UsageError(`--arch ${value}${where}: use x86_64, arm64 or all`);
      if (arg === "--exec-wrapper" && !existsSync(resolve(base, value))) throw new UsageError(`--exec-wrapper ${value}${where}: no such file`);
      request.values.set(arg, arg === "--exec-wrapper" ? resolve(base, value) : value);
    } else if (switches.has(arg)) request.switches.add(arg);
    else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}${where}`);
    else if (entry !== undefined) throw new UsageError(`one entry at a time: ${entry}, ${arg}${where}`);
    else request.entry = entry = resolve(base, arg);
  }
}

/** The arguments a project asks every build to start with: package.json's "micro-lambda": { "build": [...] }. */
function projectDefaults(manifest: { "micro-lambda"?: { build?: unknown } }): string[] {
  const defaults = manifest["micro-lambda"]?.build ?? [];
  if (!Array.isArray(defaults) || !defaults.every((arg) => typeof arg === "string")) {
    throw new UsageError(`package.json: "micro-lambda": { "build" } must be a list of arguments, e.g. ["--extension"]`);
  }
  return defaults;
}

export async function build(argv: string[]): Promise<number> {
  const problem = hostProblem();
  if (problem) {
    console.error(`micro-lambda build: ${problem}`);
    return 1;
  }
  const project = projectRoot();
  if (!project) throw new UsageError(`no package.json in ${process.cwd()} or above: run build inside your project (npm init -y makes one)`);
  const manifest = JSON.parse(readFileSync(join(project, "package.json"), "utf8"));

  // The project's defaults first, relative to the project; then the command line, which overrides them.
  const request: Request = { values: new Map(), switches: new Set() };
  parse(projectDefaults(manifest), request, project, ` (package.json's "micro-lambda" build arguments)`);
  parse(argv, request, process.cwd(), "");
  const entry = request.entry ?? ["src/main.ts", "main.ts"].map((file) => join(project, file)).find((file) => existsSync(file));
  if (entry === undefined) throw new UsageError("no ENTRY given, and neither src/main.ts nor main.ts exists in the project");
  if (!existsSync(entry) || !statSync(entry).isFile()) throw new UsageError(`${relative(process.cwd(), entry)}: no such file`);
  // The project's own main file (main.ts or index.ts at its root or in src/) is named after the project, not "src".
  if (!request.values.has("--name") && /^(main|index)\.[cm]?[tj]sx?$/.test(basename(entry)) && [project, join(project, "src")].includes(dirname(entry))) {
    const name = String(manifest.name ?? "").replace(/^@[^/]*\//, "");
    if (plainName.test(name)) request.values.set("--name", name);
  }
  const args = [...[...request.values].flat(), ...request.switches];

  const root = packageRoot();
  const require = createRequire(join(root, "package.json"));
  const env = {
    ...process.env,
    MICRO_LAMBDA_PROJECT: project,
    ESBUILD: process.env.ESBUILD ?? join(dirname(require.resolve("esbuild/package.json")), "bin/esbuild"),
    POSTJECT: process.env.POSTJECT ?? join(dirname(require.resolve("postject/package.json")), "dist/cli.js"),
  };
  const script = join(root, "build.sh");
  const child = spawn("bash", [script, entry, ...args], { stdio: "inherit", env, cwd: project });
  return new Promise((done, fail) => {
    child.once("error", (error: NodeJS.ErrnoException) =>
      fail(error.code === "ENOENT" ? new Error("bash not found: build.sh needs bash (apt-get install bash)") : error),
    );
    child.once("exit", (code, signal) => done(code ?? (signal ? 128 + 2 : 1)));
  }).then((code) => {
    if (code === 0) console.error(`micro-lambda build: output in ${relative(process.cwd(), join(project, "dist")) || "."}/`);
    return code as number;
  });
}
