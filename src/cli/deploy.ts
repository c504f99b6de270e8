// `micro-lambda deploy`: from what `micro-lambda build` left in dist/ to a Lambda function (created or updated,
// with a function URL when asked) or, with --extension, to a layer per architecture. This file reads the command
// line, checks the build before any AWS call, and prints what was done; deploy/ holds the AWS side.
import { projectRoot, UsageError } from "./args.ts";
import type { Aws } from "./deploy/aws.ts";
import { arches, buildCommand, builtArches, megabytes, readBuildOutput, type Arch, type BuildOutput } from "./deploy/build-output.ts";

export const deployUsage = `usage: micro-lambda deploy NAME [options]

Creates or updates the Lambda function NAME from dist/NAME/ARCH/function.zip, what \`micro-lambda build\` made:
runtime provided.al2023 (provided.al2 for an --al2 build), handler bootstrap, the zip's architecture. Code whose
SHA-256 Lambda already holds is not uploaded again; only settings that differ are changed.
With --extension, publishes dist/NAME/ARCH/extension.zip as the layer NAME-ARCH, one per architecture.

options:
  --arch ARCH          x86_64 or arm64 (all: both, with --extension); default: what dist/NAME holds, if one
  --function-name F    the function's name (default NAME)
  --role ARN           execution role; default: micro-lambda-execution, created on first use with
                       AWSLambdaBasicExecutionRole. An existing function keeps its role unless --role is given
  --memory MB          memory, 128 to 10240 (new functions: 128)
  --timeout S          timeout in seconds, 1 to 900 (new functions: 3)
  --env K=V            an environment variable, repeatable; the list given is the function's whole environment
  --layer ARN          a layer version, repeatable (at most 5); the list given is the function's layers
  --url                create or keep a function URL, public (AuthType NONE) unless --url-auth iam
  --streaming          with --url: InvokeMode RESPONSE_STREAM; the function must use streamifyResponse
  --url-auth AUTH      with --url: none (default) or iam (callers sign their requests, AWS_IAM)
  --extension          publish extension.zip as a layer per architecture instead
  --layer-name L       with --extension: the layers are L-ARCH (default NAME-ARCH)
  --s3-bucket B        a bucket in the same region, for zips over 50 MB (Lambda takes no more in a request)
  --region R           default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region
  --profile P          a profile from ~/.aws/config (default: AWS_PROFILE, else default)
  --dry-run            read what is deployed and say what would change; change nothing
  --verbose            print every AWS request (operation and host) on stderr

Credentials: the default chain, as the AWS CLI resolves it. AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_LAMBDA, _IAM, _S3)
sends the requests elsewhere, e.g. to an emulator.`;

interface Options {
  name: string;
  arch?: Arch | "all";
  functionName?: string;
  role?: string;
  memory?: number;
  timeout?: number;
  environment?: Record<string, string>;
  layers?: string[];
  url: boolean;
  streaming: boolean;
  urlAuth: "NONE" | "AWS_IAM";
  extension: boolean;
  layerName?: string;
  s3Bucket?: string;
  region?: string;
  profile?: string;
  dryRun: boolean;
  verbose: boolean;
}

const plainName = /^[A-Za-z0-9._-]+$/;

function parse(argv: string[]): Options {
  const options: Options = { name: "", url: false, streaming: false, urlAuth: "NONE", extension: false, dryRun: false, verbose: false };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    given.add(arg);
    switch (arg) {
      case "--arch": {
        const arch = value();
        if (arch !== "x86_64" && arch !== "arm64" && arch !== "all") throw new UsageError(`--arch ${arch}: use x86_64, arm64 or all`);
        options.arch = arch;
        break;
      }
      case "--function-name":
        options.functionName = value();
        break;
      case "--role":
        options.role = value();
        if (!options.role.startsWith("arn:")) throw new UsageError(`--role ${options.role}: give the role's ARN (arn:aws:iam::ACCOUNT:role/NAME)`);
        break;
      case "--memory":
        options.memory = integer(arg, value(), 128, 10240);
        break;
      case "--timeout":
        options.timeout = integer(arg, value(), 1, 900);
        break;
      case "--env": {
        const pair = value();
        const at = pair.indexOf("=");
        if (at < 1) throw new UsageError(`--env ${pair}: write NAME=VALUE`);
        (options.environment ??= {})[pair.slice(0, at)] = pair.slice(at + 1);
        break;
      }
      case "--layer":
        (options.layers ??= []).push(value());
        if (options.layers.length > 5) throw new UsageError("--layer: a function takes at most 5 layers");
        break;
      case "--url-auth": {
        const auth = value();
        if (auth !== "none" && auth !== "iam") throw new UsageError(`--url-auth ${auth}: use none or iam`);
        options.urlAuth = auth === "iam" ? "AWS_IAM" : "NONE";
        break;
      }
      case "--layer-name":
        options.layerName = value();
        if (!plainName.test(options.layerName)) throw new UsageError(`--layer-name ${options.layerName}: use letters, digits, '.', '_' and '-'`);
        break;
      case "--s3-bucket":
        options.s3Bucket = value();
        break;
      case "--region":
        options.region = value();
        break;
      case "--profile":
        options.profile = value();
        break;
      case "--url":
      case "--streaming":
      case "--extension":
      case "--dry-run":
      case "--verbose": {
        const key = ({ "--url": "url", "--streaming": "streaming", "--extension": "extension", "--dry-run": "dryRun", "--verbose": "verbose" } as const)[arg];
        options[key] = true;
        break;
      }
      default:
        if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        if (options.name) throw new UsageError(`one NAME at a time: ${options.name}, ${arg}`);
        if (!plainName.test(arg) || arg === "." || arg === "..") throw new UsageError(`${JSON.stringify(arg)}: NAME is the name given to build (dist/NAME), letters, digits, '.', '_' and '-'`);
        options.name = arg;
    }
  }
  if (!options.name) throw new UsageError("which build? give its NAME (dist/NAME)");
  for (const flag of ["--streaming", "--url-auth"]) if (given.has(flag) && !options.url) throw new UsageError(`${flag} goes with --url`);
  if (options.extension) {
    const functionOnly = ["--function-name", "--role", "--memory", "--timeout", "--env", "--layer", "--url"].filter((flag) => given.has(flag));
    if (functionOnly.length > 0) throw new UsageError(`${functionOnly.join(", ")}: for functions, not with --extension (a layer has no such setting)`);
  } else if (given.has("--layer-name")) {
    throw new UsageError("--layer-name goes with --extension");
  }
  return options;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`${flag} ${text}: a whole number from ${min} to ${max}`);
  return value;
}

export async function deploy(argv: string[]): Promise<number> {
  const options = parse(argv);
  const project = projectRoot();
  if (!project) throw new UsageError(`no package.json in ${process.cwd()} or above: run deploy inside your project, where build put dist/`);
  const kind = options.extension ? "extension" : "function";

  // Everything about the build is checked before the first AWS call.
  const builds = chooseArches(project, options, kind).map((arch) => readBuildOutput(project, options.name, arch, kind));
  for (const build of builds) checkBuild(build, options);

  // Loaded here so that --help and usage errors do not load the AWS SDK.
  const { connect, describeFailure } = await import("./deploy/aws.ts");
  try {
    const aws = await connect(options);
    if (options.extension) await deployLayers(aws, builds, options);
    else await deployOneFunction(aws, builds[0]!, options);
    return 0;
  } catch (error) {
    throw new Error(describeFailure(error));
  }
}

async function deployLayers(aws: Aws, builds: BuildOutput[], options: Options): Promise<void> {
  const { deployLayer } = await import("./deploy/layer.ts");
  for (const build of builds) {
    const result = await deployLayer(aws, build, `${options.layerName ?? options.name}-${build.arch}`, options);
    const action = options.dryRun && result.action === "published" ? "would publish a new version" : result.action;
    console.log(`${result.layerName}: ${action}${result.arn ? ` ${result.arn}` : ""} (${build.arch}, code ${megabytes(result.codeSize)})`);
  }
}

async function deployOneFunction(aws: Aws, build: BuildOutput, options: Options): Promise<void> {
  const { deployFunction } = await import("./deploy/function.ts");
  const name = options.functionName ?? options.name;
  const result = await deployFunction(aws, build, {
    ...options,
    functionName: name,
    url: options.url ? { auth: options.urlAuth, invokeMode: options.streaming ? "RESPONSE_STREAM" : "BUFFERED" } : undefined,
  });
  const what = `${build.arch}, ${result.runtime}, code ${megabytes(result.codeSize)}`;
  if (options.dryRun) {
    const plan = { created: "would be created", updated: `would change: ${result.changes.join("; ")}`, unchanged: "unchanged" }[result.action];
    console.log(`${name}: ${plan} (${what}) [dry run: nothing changed]`);
  } else {
    const done = { created: "created", updated: `updated ${result.changes.join("; ")}`, unchanged: "unchanged: the same code (SHA-256) and settings are deployed" }[result.action];
    console.log(`${name}: ${done} (${what})`);
  }
  if (result.arn) console.log(`  function  ${result.arn}`);
  if (result.role) console.log(`  role      ${result.role.arn ?? result.role.name} (${result.role.created ? (options.dryRun ? "would be created" : "created") : "reused"})`);
  if (result.url) {
    const auth = result.url.auth === "NONE" ? "public" : "AWS_IAM";
    const action = options.dryRun && result.url.action !== "unchanged" ? `would be ${result.url.action}` : result.url.action;
    console.log(`  url       ${result.url.url ?? "(none yet)"} (${auth}, ${result.url.invokeMode}; ${action})`);
  }
}

/** The architectures to deploy: --arch, else the one dist/NAME holds. A function runs on one architecture. */
function chooseArches(project: string, options: Options, kind: BuildOutput["kind"]): Arch[] {
  if (options.arch === "all") {
    if (kind === "function") throw new UsageError("--arch all: a function runs on one architecture: choose x86_64 or arm64 (all is for --extension layers)");
    return [...arches];
  }
  if (options.arch) return [options.arch];
  const built = builtArches(project, options.name, kind);
  if (built.length === 0) throw new Error(`dist/${options.name} holds no ${kind === "function" ? "function.zip" : "extension.zip"}: build it first: ${buildCommand(project, options.name, kind)}`);
  if (built.length > 1 && kind === "function") throw new UsageError(`dist/${options.name} holds x86_64 and arm64 builds: choose one with --arch`);
  return built;
}

/** What cannot be deployed as asked, said before anything is deployed; what deserves a word, warned about. */
function checkBuild(build: BuildOutput, options: Options): void {
  if (build.al2 && build.kind === "function") {
    console.error(
      `micro-lambda deploy: warning: ${build.path} is an --al2 build: runtime provided.al2, for which Lambda no longer ` +
        `accepts new functions or updates (deprecated 2026-07-31). Build without --al2 for provided.al2023.`,
    );
  }
  if (options.url && options.streaming && build.streaming !== true) {
    const why =
      build.streaming === undefined
        ? `cannot tell whether it streams: dist/${build.name}/${build.arch}/sea/bundle.cjs, which would say, is missing (build it again)`
        : "does not stream its response (its bundle does not use streamifyResponse)";
    throw new Error(`--streaming: ${build.name} ${why}. Wrap the handler in streamifyResponse (README: Response streaming), or drop --streaming for a BUFFERED URL`);
  }
  if (options.url && !options.streaming && build.streaming === true) {
    console.error(`micro-lambda deploy: note: ${build.name} streams its response (streamifyResponse), but its URL will be BUFFERED: callers get nothing until it ends. Add --streaming for RESPONSE_STREAM`);
  }
}
