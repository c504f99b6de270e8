// `micro-lambda COMMAND ...`: the command line a user's project runs with npx. Each command is a module of
// its own, loaded only when it runs; this file dispatches and turns failures into messages and exit codes.
import { UsageError } from "./args.ts";

const usage = `usage: micro-lambda COMMAND [ARGS...]

commands:
  build [ENTRY] [options]   bundle and compile ENTRY into dist/NAME/ARCH/{bootstrap,function.zip}
  invoke [options] FUNCTION run a bootstrap or a main file once with an event, print the result
  serve [options] FUNCTION  serve the Invoke API (as aws-lambda-rie does) on 127.0.0.1:9000
  watch ENTRY [options]     serve ENTRY from source; a saved change is picked up on the next invoke
  new NAME [--template T]   write a new project: function, streaming, extension, telemetry or proxy
  deploy NAME [options]     create or update the Lambda function (or layer) from what build made

micro-lambda COMMAND --help prints a command's options.`;

interface Command {
  usage: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  build: async () => {
    const m = await import("./build.ts");
    return { usage: m.buildUsage, run: m.build };
  },
  invoke: async () => {
    const m = await import("./emulate.ts");
    return { usage: m.invokeUsage, run: m.invoke };
  },
  serve: async () => {
    const m = await import("./emulate.ts");
    return { usage: m.serveUsage, run: m.serve };
  },
  watch: async () => {
    const m = await import("./watch.ts");
    return { usage: m.watchUsage, run: m.watch };
  },
  new: async () => {
    const m = await import("./new.ts");
    return { usage: m.newUsage, run: m.create };
  },
  deploy: async () => {
    const m = await import("./deploy.ts");
    return { usage: m.deployUsage, run: m.deploy };
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    const { packageRoot } = await import("./args.ts");
    const { readFileSync } = await import("node:fs");
    console.log(JSON.parse(readFileSync(`${packageRoot()}/package.json`, "utf8")).version);
    return 0;
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    console.error(`micro-lambda: unknown command ${JSON.stringify(name)}\n\n${usage}`);
    return 2;
  }
  const command = await load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`micro-lambda ${name}: ${error.message}\n\n${command.usage}`);
      return 2;
    }
    console.error(`micro-lambda ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
