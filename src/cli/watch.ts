// `micro-lambda watch`: serves a function from source behind the emulator, as `serve` does, and restarts its
// sandbox when a source file of the project changes, as `cargo lambda watch` does: a saved change is picked up
// on the next invoke.
import { readdirSync, statSync, watch as watchFolder, type FSWatcher } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { Emulator } from "../emulator/index.ts";
import { projectRoot, UsageError } from "./args.ts";
import { parseEmulatorArgs } from "./emulate.ts";

export const watchUsage = `usage: micro-lambda watch ENTRY [options]

Runs ENTRY, a TypeScript or JavaScript main file, under tsx behind the emulator, and serves Lambda's Invoke API
as \`serve\` does. When a source file of the project changes (anything but node_modules/, dist/ and dot folders),
or a file in the --extensions folder, the sandbox restarts, its extensions with it: the next invoke runs the
code as it is then.
  curl -d '{"name":"you"}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations

options: every option of serve (micro-lambda serve --help): --port (default 9000), --host, --timeout,
--memory, --env NAME=VALUE, and --extensions DIR, a folder of extension executables (built ones, or scripts
that run them from source), restarted with the function.`;

/** Folders that are not the project's source: installed packages, build output, and dot folders (.git, caches). */
const ignored = (name: string) => name === "node_modules" || name === "dist" || name.startsWith(".");
/** What can change what the function does: code, and JSON it imports (package.json and tsconfig.json included). */
const sourceFile = /\.([cm]?[tj]sx?|json)$/;

export async function watch(argv: string[]): Promise<number> {
  let { options } = parseEmulatorArgs(argv, "serve");
  // functionCommand made [node, --import, tsx, ENTRY] of a main file; anything else is not one.
  if (options.command[0] !== process.execPath) throw new UsageError(`watch runs a main file from source (.ts or .js); to serve a built bootstrap, use serve`);
  const after = options.command.length - 4;
  if (after > 0) {
    // What follows ENTRY is options too (watch passes no arguments to the function): read them as if before it.
    const at = argv.length - after - 1;
    ({ options } = parseEmulatorArgs([...argv.slice(0, at), ...argv.slice(at + 1), argv[at]!], "serve"));
    if (options.command.length > 4) throw new UsageError(`one ENTRY at a time: ${argv[at]}, ${options.command[3]}`);
  }
  const entry = options.command[3]!;
  const root = projectRoot(dirname(entry)) ?? dirname(entry);
  const emulator = await Emulator.start(options);
  console.error(
    `micro-lambda watch: ${relative(process.cwd(), entry)} from source, watching ${relative(process.cwd(), root) || "."}/ for changes\n` +
      `  invoke with: curl -d '{}' ${emulator.url}/2015-03-31/functions/function/invocations`,
  );

  // Editors save in bursts of events (truncate, write, rename): restart once a burst has settled, one restart at a time.
  let settling: NodeJS.Timeout | undefined;
  let restarting = Promise.resolve();
  const changed = (file: string) => {
    clearTimeout(settling);
    settling = setTimeout(() => {
      restarting = restarting.then(async () => {
        await emulator.restart();
        console.error(`micro-lambda watch: ${relative(process.cwd(), file)} changed: restarted; the next invoke runs the new code`);
      });
    }, 100);
  };
  const watchers = watchTree(root, changed);
  if (options.extensionsDir) watchers.push(watchFolder(options.extensionsDir, (_event, name) => changed(join(options.extensionsDir!, name ?? ""))));

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const watcher of watchers) watcher.close();
      void emulator.close().then(() => process.exit(0));
    });
  }
  return new Promise(() => {});
}

/**
 * Watches `root` and every folder below it that is not ignored, one fs.watch per folder (on Linux, a recursive
 * fs.watch would walk node_modules too); folders that appear later are added.
 */
function watchTree(root: string, changed: (file: string) => void): FSWatcher[] {
  const watchers: FSWatcher[] = [];
  const watched = new Set<string>();
  const add = (dir: string) => {
    watched.add(dir);
    const watcher = watchFolder(dir, (_event, name) => {
      if (name === null) return changed(dir);
      const path = join(dir, name);
      if (sourceFile.test(name)) return changed(path);
      if (!ignored(name) && !watched.has(path) && statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
        add(path);
        changed(path); // a folder moved in may hold code already
      }
    });
    // A folder that is removed ends its watcher with an error on some systems: nothing is left to watch there.
    watcher.on("error", () => watcher.close());
    watchers.push(watcher);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !ignored(entry.name)) add(join(dir, entry.name));
    }
  };
  add(resolve(root));
  return watchers;
}
