// `micro-lambda build`: checks the command line, then runs build.sh (the build engine, at the package's root)
// in the user's project, with the tools and the cache it should use.
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { packageRoot, projectRoot, UsageError } from "./args.ts";

export const buildUsage = `usage: micro-lambda build [ENTRY] [options]

Bundles ENTRY (default: src/main.ts, else main.ts) with esbuild and compiles it into one stripped Node
executable, per architecture: dist/NAME/ARCH/bootstrap and dist/NAME/ARCH/function.zip, in the project
(the nearest folder upward with a package.json).

options:
  --name NAME           output folder; default: ENTRY's folder for a main.ts or index.ts, else ENTRY's stem
  --arch ARCH           x86_64, arm64 or all (default all)
  --node VERSION        exact Node version of the bootstrap (default: build.sh's pinned one)
  --snapshot            run the function's init at build time and ship a V8 startup snapshot of it
  --no-code-cache       leave V8's code cache out of the executable
  --al2                 ship glibc with the bootstrap, for provided.al2
  --extension           build a Lambda extension: dist/NAME/ARCH/extension.zip, a layer
  --exec-wrapper FILE   with --extension: put FILE at the layer's root, for AWS_LAMBDA_EXEC_WRAPPER
  --verbose             show what the tools print in full

environment: MICRO_LAMBDA_CACHE (where Node binaries are cached; default node_modules/.cache/micro-lambda,
or $XDG_CACHE_HOME/micro-lambda), ZIP_LEVEL, SOURCE_DATE_EPOCH.`;

const valueFlags = new Set(["--name", "--arch", "--node", "--exec-wrapper"]);
const switches = new Set(["--snapshot", "--no-code-cache", "--al2", "--extension", "--verbose"]);
const plainName = /^[A-Za-z0-9._-]+$/;

export async function build(argv: string[]): Promise<number> {
  if (process.platform !== "linux") {
    console.error(
      `micro-lambda build: this machine runs ${process.platform}; a bootstrap is made by running the Linux Node it ships, ` +
        `so build on Linux: a Linux container (docker run -v "$PWD":/app -w /app node:24 npx micro-lambda build) or a Linux CI runner.`,
    );
    return 1;
  }
  const project = projectRoot();
  if (!project) throw new UsageError(`no package.json in ${process.cwd()} or above: run build inside your project (npm init -y makes one)`);

  const args: string[] = [];
  let entry: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (valueFlags.has(arg)) {
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      if (arg === "--name" && (!plainName.test(value) || value === "." || value === "..")) {
        throw new UsageError(`--name ${JSON.stringify(value)}: use letters, digits, '.', '_' and '-' (a folder name, not a path)`);
      }
      if (arg === "--arch" && !["x86_64", "arm64", "all"].includes(value)) throw new UsageError(`--arch ${value}: use x86_64, arm64 or all`);
      if (arg === "--exec-wrapper" && !existsSync(value)) throw new UsageError(`--exec-wrapper ${value}: no such file`);
      args.push(arg, arg === "--exec-wrapper" ? resolve(value) : value);
    } else if (switches.has(arg)) args.push(arg);
    else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    else if (entry !== undefined) throw new UsageError(`one entry at a time: ${entry}, ${arg}`);
    else entry = arg;
  }
  entry ??= ["src/main.ts", "main.ts"].map((file) => join(project, file)).find((file) => existsSync(file));
  if (entry === undefined) throw new UsageError("no ENTRY given, and neither src/main.ts nor main.ts exists in the project");
  if (!existsSync(entry) || !statSync(entry).isFile()) throw new UsageError(`${entry}: no such file`);

  const root = packageRoot();
  const require = createRequire(join(root, "package.json"));
  const env = {
    ...process.env,
    MICRO_LAMBDA_PROJECT: project,
    ESBUILD: process.env.ESBUILD ?? join(dirname(require.resolve("esbuild/package.json")), "bin/esbuild"),
    POSTJECT: process.env.POSTJECT ?? join(dirname(require.resolve("postject/package.json")), "dist/cli.js"),
  };
  const script = join(root, "build.sh");
  const child = spawn("bash", [script, resolve(entry), ...args], { stdio: "inherit", env, cwd: project });
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
