// `micro-lambda new`: writes a project that works at once, from a template in src/cli/templates/: the code in
// src/main.ts, a test that runs it under the emulator, and what `npm install && npm test && npx micro-lambda build` need.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { packageRoot, UsageError } from "./args.ts";

/** One template per kind of thing the README teaches, each mirroring its example. */
export const templates = {
  function: "a function that answers each event (examples/hello)",
  streaming: "a function URL that streams its response (examples/streaming)",
  extension: "a Lambda extension, run beside the function from a layer (examples/sidecar)",
  telemetry: "an extension that forwards the function's logs from the Telemetry API (examples/log-router)",
  proxy: "a Runtime API proxy extension: sees every event and answer, rejects some (examples/proxy)",
} as const;

export const newUsage = `usage: micro-lambda new NAME [--template TEMPLATE] [--micro-lambda-spec SPEC]

Writes a new project in the folder NAME (which must not exist, or be empty): the code in src/main.ts, a test
that runs it under the emulator, and a package.json. Then:
  cd NAME && npm install && npm test && npx micro-lambda build

templates:
${Object.entries(templates).map(([name, what]) => `  ${name.padEnd(11)} ${what}`).join("\n")}

options:
  --template TEMPLATE      default: function
  --micro-lambda-spec SPEC the version of micro-lambda the project depends on (default: ^ this one's version),
                           anything npm install takes; a path to a packed .tgz becomes file:PATH. The
                           environment variable MICRO_LAMBDA_NEW_DEPENDENCY does the same.`;

/** An npm package name that is also a folder name: lowercase, no scope, no path. */
const plainName = /^[a-z0-9][a-z0-9._-]*$/;

export async function create(argv: string[]): Promise<number> {
  let name: string | undefined;
  let template: string = "function";
  let spec = process.env.MICRO_LAMBDA_NEW_DEPENDENCY || undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--template" || arg === "--micro-lambda-spec") {
      const value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      if (arg === "--template") template = value;
      else spec = value;
    } else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    else if (name !== undefined) throw new UsageError(`one NAME at a time: ${name}, ${arg}`);
    else name = arg;
  }
  if (name === undefined) throw new UsageError("no NAME given");
  if (!plainName.test(name) || name.length > 214) {
    throw new UsageError(`${JSON.stringify(name)} is not a plain name: use lowercase letters, digits, '.', '_' and '-' (it names the folder, the npm package and the Lambda function)`);
  }
  if (!Object.hasOwn(templates, template)) throw new UsageError(`--template ${template}: use ${Object.keys(templates).join(", ")}`);
  const target = resolve(name);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new Error(`${name} already exists and is not an empty folder: choose another NAME, or remove it`);
  }

  const root = packageRoot();
  const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Manifest;
  const written = copyTemplate(join(root, "src/cli/templates", template), target, name);
  const manifest = join(target, "package.json");
  writeFileSync(manifest, JSON.stringify(withVersions(JSON.parse(readFileSync(manifest, "utf8")), own, spec), null, 2) + "\n");

  console.log(`micro-lambda new: wrote ${name}/ (${template}): ${written.join(", ")}

  cd ${name}
  npm install
  npm test                  # runs src/main.ts under the emulator
  npx micro-lambda build    # dist/${name}/{x86_64,arm64}/${template === "function" || template === "streaming" ? "function" : "extension"}.zip`);
  return 0;
}

interface Manifest {
  version: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** Copies a template folder, putting the project's name where the template says {{name}}. npm leaves out a `.gitignore`, so templates call it `gitignore`. */
function copyTemplate(from: string, to: string, name: string, written: string[] = [], prefix = ""): string[] {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const file = entry.name === "gitignore" ? ".gitignore" : entry.name;
    if (entry.isDirectory()) {
      copyTemplate(source, join(to, file), name, written, `${prefix}${file}/`);
      continue;
    }
    writeFileSync(join(to, file), readFileSync(source, "utf8").replaceAll("{{name}}", name));
    // An exec wrapper goes into the layer as it is: it must be executable.
    if (file.endsWith(".sh")) chmodSync(join(to, file), 0o755);
    written.push(prefix + file);
  }
  return written;
}

/**
 * Fills the versions a template leaves empty: micro-lambda's own (`^VERSION`, or `spec`), and for the tools its
 * tests use (tsx, typescript, @types/node) the exact versions micro-lambda itself is tested with.
 */
function withVersions(manifest: Manifest, own: Manifest, spec: string | undefined): Manifest {
  const known = { ...own.devDependencies, ...own.dependencies };
  for (const deps of [manifest.dependencies, manifest.devDependencies]) {
    for (const [dependency, version] of Object.entries(deps ?? {})) {
      if (version !== "") continue;
      if (dependency === "micro-lambda") deps![dependency] = dependencySpec(spec, own.version);
      else if (known[dependency]) deps![dependency] = known[dependency];
      else throw new Error(`the template names ${dependency} without a version, and micro-lambda has none to give`);
    }
  }
  return manifest;
}

function dependencySpec(spec: string | undefined, version: string): string {
  if (spec === undefined) return `^${version}`;
  // A packed tarball (npm pack's output): npm and pnpm both take file: with an absolute path.
  if (spec.endsWith(".tgz") && !spec.includes(":")) return `file:${resolve(spec)}`;
  return spec;
}
