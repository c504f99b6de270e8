// `micro-lambda deploy` against moto (`moto_server`, a real implementation of the Lambda, IAM and S3 APIs, started
// on 127.0.0.1 for this file): the CLI runs from source in a temporary project whose dist/ holds real builds, and
// every check reads moto's own state with the AWS SDK. (One answer moto cannot give, Lambda's throttling, comes
// from a stand-in server on 127.0.0.1.)
//
// Nothing may reach AWS: the CLI gets fake credentials, AWS_ENDPOINT_URL pointing at moto, no config files and
// no instance metadata, and runs with --verbose, which prints the host of every request it sends (after
// signing, once per attempt); every run asserts that each of them went to moto.
//
// Where moto 5.2.1 differs from Lambda (read from its source, moto/awslambda/models.py):
// - UpdateFunctionCode ignores Architectures: after an arm64 update of an x86_64 function moto still reports x86_64.
// - UpdateFunctionUrlConfig ignores InvokeMode, and GetFunctionUrlConfig says "Buffered" where Lambda says
//   "BUFFERED"; so each URL test creates its URL with the mode it checks.
// - Changes are applied at once: State is Active and LastUpdateStatus Successful (absent right after
//   CreateFunction), so deploy's waiting is exercised only in its first poll.
// - AddPermission accepts a statement id twice (Lambda answers ResourceConflictException).
// - AWS managed policies exist only with MOTO_IAM_LOAD_MANAGED_POLICIES=true, set below.
// - CodeSha256 is computed as Lambda does: SHA-256 of the zip, base64, for ZipFile and S3 uploads alike.
import { CreateBucketCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateAccessKeyCommand, CreateUserCommand, GetRoleCommand, IAMClient, ListAttachedRolePoliciesCommand, ListRolesCommand, PutUserPolicyCommand } from "@aws-sdk/client-iam";
import {
  GetFunctionCommand,
  GetFunctionUrlConfigCommand,
  GetLayerVersionCommand,
  GetPolicyCommand,
  LambdaClient,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
} from "@aws-sdk/client-lambda";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { build, type Arch } from "./bootstraps.ts";
import { root } from "./helpers.ts";

const region = "eu-west-1";
const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
let moto: { endpoint: string; process: ChildProcess };
let project: string;
let lambda: LambdaClient;
let iam: IAMClient;
let s3: S3Client;

/** The real builds the project's dist/ holds, by dist name (what deploy is given). */
const proxyLayer = ["--extension", "--exec-wrapper", "src/proxy/proxy-wrapper.sh", "--name", "proxy"];
const builds: [string, string, Arch, string[]][] = [
  ["hello", "hello", "x86_64", []],
  ["hello", "hello", "arm64", []],
  ["streaming", "streaming", "x86_64", []],
  ["proxy", "examples/proxy/main.ts", "x86_64", proxyLayer],
  ["proxy", "examples/proxy/main.ts", "arm64", proxyLayer],
  ["old", "hello", "x86_64", ["--al2"]],
];

before(async () => {
  // The builds are shared with the other test files (test/bootstraps.ts): in a full run they are made once.
  const [server, ...made] = await Promise.all([startMoto(), ...builds.map(([, entry, arch, flags]) => build(entry, arch, flags))]);
  moto = server;
  project = mkdtempSync(join(tmpdir(), "micro-lambda-deploy-"));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "deploy-test", private: true }));
  builds.forEach(([name, , arch], i) => {
    mkdirSync(join(project, "dist", name), { recursive: true });
    symlinkSync(made[i]!.dir, join(project, "dist", name, arch));
  });
  const client = { endpoint: moto.endpoint, region, credentials, requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 } };
  [lambda, iam, s3] = [new LambdaClient(client), new IAMClient(client), new S3Client(client)];
});

after(() => {
  moto?.process.kill();
  if (project) rmSync(project, { recursive: true, force: true });
});

/** moto_server on 127.0.0.1, on a port the system picks; it prints the address it serves. */
function startMoto(env: Record<string, string> = {}): Promise<{ endpoint: string; process: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", "0"], { env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: "true", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const seen = (text: string) => {
      output += text;
      const address = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (address) resolve({ endpoint: address[1]!, process: child });
    };
    child.stdout.setEncoding("utf8").on("data", seen);
    child.stderr.setEncoding("utf8").on("data", seen);
    child.on("error", (error) => reject(new Error(`moto_server could not start (${error.message}): run .ci/setup, or pip install "moto[server]"`)));
    child.on("exit", (code) => reject(new Error(`moto_server exited (${code}) before serving:\n${output}`)));
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** "Lambda CreateFunction" and so on: the requests the CLI sent, from its --verbose lines. */
  requests: string[];
}

/** `micro-lambda deploy ARGS --verbose` from source, in the project, pointed at moto; asserts that every request went to moto. */
async function deploy(args: string[], env: Record<string, string | undefined> = {}, cwd = project): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^AWS_|_proxy$|_PROXY$/.test(name)));
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), join(root, "src/cli/bin.ts"), "deploy", ...args, "--verbose"], {
    cwd,
    env: {
      ...clean,
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: region,
      AWS_CONFIG_FILE: join(project, "no-such-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(project, "no-such-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      NODE_NO_WARNINGS: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  clearTimeout(timer);
  assert.notEqual(code, null, `deploy ${args.join(" ")} did not end in 120 s:\n${stderr}`);
  const lines = [...stderr.matchAll(/^micro-lambda deploy: (\w+ \w+) → (\S+)$/gm)];
  const endpoint = env.AWS_ENDPOINT_URL ?? moto.endpoint;
  for (const [line, , url] of lines) assert.ok(url!.startsWith(`${endpoint}/`), `a request went elsewhere than moto: ${line}`);
  return { code, stdout, stderr, requests: lines.map((line) => line[1]!) };
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("base64");
}

const zip = (name: string, arch: Arch, file = "function.zip") => join(project, "dist", name, arch, file);

/** dist/NAME/x86_64/function.zip holding a 64-byte "bootstrap": an x86_64 ELF header and nothing else. For failures that need no real code. */
function tinyBuild(name: string): void {
  const dir = join(project, "dist", name, "x86_64");
  mkdirSync(dir, { recursive: true });
  const header = Buffer.alloc(64);
  header.write("\x7fELF\x02\x01\x01", "latin1"); // 64-bit, little-endian, version 1
  header.writeUInt16LE(2, 16); // an executable
  header.writeUInt16LE(62, 18); // x86-64
  writeFileSync(join(dir, "bootstrap"), header, { mode: 0o755 });
  execFileSync("zip", ["-q", "-X", "function.zip", "bootstrap"], { cwd: dir });
}
const getFunction = (name: string) => lambda.send(new GetFunctionCommand({ FunctionName: name }));

describe("a function, from create to update", () => {
  test("create: the x86_64 build becomes function hello on provided.al2023, handler bootstrap, with the default role, created with the basic execution policy", async () => {
    const run = await deploy(["hello", "--arch", "x86_64"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^hello: created \(x86_64, provided\.al2023, code \d+\.\d MB\)$/m);
    assert.match(run.stdout, new RegExp(`^  function  arn:aws:lambda:${region}:\\d{12}:function:hello$`, "m"));
    assert.match(run.stdout, /^  role      arn:aws:iam::\d{12}:role\/micro-lambda-execution \(created\)$/m);

    const { Configuration: config } = await getFunction("hello");
    assert.equal(config?.Runtime, "provided.al2023");
    assert.equal(config?.Handler, "bootstrap");
    assert.deepEqual(config?.Architectures, ["x86_64"]);
    assert.equal(config?.CodeSha256, sha256(zip("hello", "x86_64")));
    assert.equal(config?.CodeSize, readFileSync(zip("hello", "x86_64")).length);
    const role = await iam.send(new GetRoleCommand({ RoleName: "micro-lambda-execution" }));
    assert.equal(config?.Role, role.Role?.Arn);
    assert.match(role.Role?.AssumeRolePolicyDocument ?? "", /lambda\.amazonaws\.com/);
    const attached = await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: "micro-lambda-execution" }));
    assert.deepEqual(attached.AttachedPolicies?.map((policy) => policy.PolicyArn), ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    assert.deepEqual(run.requests.filter((request) => request.startsWith("IAM")), ["IAM GetRole", "IAM CreateRole", "IAM AttachRolePolicy"]);
  });

  test("unchanged: the same zip again uploads nothing and changes nothing", async () => {
    const before = (await getFunction("hello")).Configuration;
    const run = await deploy(["hello", "--arch", "x86_64"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^hello: unchanged: the same code \(SHA-256\) and settings are deployed/m);
    // Only reads: the function's configuration, nothing about roles (an existing function keeps its role).
    assert.deepEqual(run.requests, ["Lambda GetFunctionConfiguration"]);
    assert.equal((await getFunction("hello")).Configuration?.LastModified, before?.LastModified);
  });

  test("--dry-run says what would change and changes nothing", async () => {
    const run = await deploy(["hello", "--arch", "x86_64", "--memory", "256", "--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^hello: would change: memory 128 → 256 MB \(x86_64, .*\) \[dry run: nothing changed\]$/m);
    assert.deepEqual(run.requests, ["Lambda GetFunctionConfiguration"]);
    assert.equal((await getFunction("hello")).Configuration?.MemorySize, 128);
  });

  test("a configuration change updates the configuration only: memory, timeout, environment, layers", async () => {
    const layer = await lambda.send(new PublishLayerVersionCommand({ LayerName: "some-layer", Content: { ZipFile: Buffer.from("a layer") } }));
    const run = await deploy(["hello", "--arch", "x86_64", "--memory", "512", "--timeout", "10", "--env", "STAGE=prod", "--env", "EMPTY=", "--layer", layer.LayerVersionArn!]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^hello: updated memory 128 → 512 MB; timeout 3 → 10 s; environment \\(EMPTY, STAGE\\); layers none → ${layer.LayerVersionArn} \\(`, "m"));
    assert.ok(!run.requests.includes("Lambda UpdateFunctionCode"), run.requests.join(", "));
    let config = (await getFunction("hello")).Configuration;
    assert.equal(config?.MemorySize, 512);
    assert.equal(config?.Timeout, 10);
    assert.deepEqual(config?.Environment?.Variables, { STAGE: "prod", EMPTY: "" });
    assert.deepEqual(config?.Layers?.map((each) => each.Arn), [layer.LayerVersionArn]);

    // The --env list given is the whole environment; settings not given stay as they are.
    const again = await deploy(["hello", "--arch", "x86_64", "--env", "STAGE=dev"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^hello: updated environment \(EMPTY, STAGE\) \(/m);
    config = (await getFunction("hello")).Configuration;
    assert.deepEqual(config?.Environment?.Variables, { STAGE: "dev" });
    assert.equal(config?.MemorySize, 512);
    assert.deepEqual(config?.Layers?.map((each) => each.Arn), [layer.LayerVersionArn]);
  });

  test("update: new code (the arm64 build) is uploaded, the settings stay", async () => {
    const run = await deploy(["hello", "--arch", "arm64"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^hello: updated code and architecture x86_64 → arm64 \(arm64, provided\.al2023, code \d+\.\d MB\)$/m);
    assert.ok(run.requests.includes("Lambda UpdateFunctionCode"));
    const config = (await getFunction("hello")).Configuration;
    assert.equal(config?.CodeSha256, sha256(zip("hello", "arm64")));
    assert.equal(config?.LastUpdateStatus, "Successful");
    assert.equal(config?.MemorySize, 512);
    // Lambda would now report ["arm64"]; moto 5.2.1 ignores UpdateFunctionCode's Architectures (see the top).
  });
});

describe("function URLs", () => {
  test("--url --streaming on a streaming function: a public RESPONSE_STREAM URL with both invoke permissions; again: unchanged", async () => {
    const run = await deploy(["streaming", "--url", "--streaming"]);
    assert.equal(run.code, 0, run.stderr);
    const url = await lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "streaming" }));
    assert.equal(url.InvokeMode, "RESPONSE_STREAM");
    assert.equal(url.AuthType, "NONE");
    assert.ok(run.stdout.includes(`  url       ${url.FunctionUrl} (public, RESPONSE_STREAM; created)`), run.stdout);
    assert.match(run.stdout, /^  role      .*\(reused\)$/m);
    const statements = async () => JSON.parse((await lambda.send(new GetPolicyCommand({ FunctionName: "streaming" }))).Policy!).Statement;
    // Since October 2025 a public URL needs both: lambda:InvokeFunctionUrl and lambda:InvokeFunction via the URL.
    assert.deepEqual(
      (await statements()).map((statement: Record<string, unknown>) => [statement.Sid, statement.Action, statement.Principal]),
      [
        ["micro-lambda-url", "lambda:InvokeFunctionUrl", "*"],
        ["micro-lambda-url-invoke", "lambda:InvokeFunction", "*"],
      ],
    );

    const again = await deploy(["streaming", "--url", "--streaming"]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(again.stdout.includes(`  url       ${url.FunctionUrl} (public, RESPONSE_STREAM; unchanged)`), again.stdout);
    assert.equal((await statements()).length, 2);
    assert.deepEqual(again.requests, ["Lambda GetFunctionConfiguration", "Lambda GetFunctionUrlConfig", "Lambda GetPolicy"]);
  });

  test("--url on a function that does not stream: a BUFFERED URL", async () => {
    const run = await deploy(["hello", "--arch", "arm64", "--url"]);
    assert.equal(run.code, 0, run.stderr);
    const url = await lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "hello" }));
    assert.equal(url.InvokeMode, "BUFFERED");
    assert.ok(run.stdout.includes(`  url       ${url.FunctionUrl} (public, BUFFERED; created)`), run.stdout);
  });

  test("--url --streaming on a function that does not stream is refused before any AWS call", async () => {
    const run = await deploy(["hello", "--arch", "x86_64", "--function-name", "not-streaming", "--url", "--streaming"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--streaming: hello does not stream its response \(its bundle does not use streamifyResponse\)\. Wrap the handler in streamifyResponse/);
    assert.deepEqual(run.requests, []);
    await assert.rejects(getFunction("not-streaming"), { name: "ResourceNotFoundException" });
  });

  test("--url without --streaming on a streaming function: a note, since callers would wait for the end", async () => {
    const run = await deploy(["streaming", "--url", "--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /note: streaming streams its response \(streamifyResponse\), but its URL will be BUFFERED/);
    assert.match(run.stdout, /\(public, BUFFERED; would be updated\)/);
  });

  test("--url-auth iam: the URL becomes AWS_IAM and the public grants go", async () => {
    const run = await deploy(["streaming", "--url", "--streaming", "--url-auth", "iam"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /\(AWS_IAM, RESPONSE_STREAM; updated\)/);
    assert.equal((await lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "streaming" }))).AuthType, "AWS_IAM");
    await assert.rejects(lambda.send(new GetPolicyCommand({ FunctionName: "streaming" })), { name: "ResourceNotFoundException" });
  });
});

test("--extension --arch all: a layer per architecture, compatible with provided.al2023 and the managed runtimes; again: no new version", async () => {
  const run = await deploy(["proxy", "--extension", "--arch", "all"]);
  assert.equal(run.code, 0, run.stderr);
  for (const arch of ["x86_64", "arm64"] as const) {
    const { LayerVersions } = await lambda.send(new ListLayerVersionsCommand({ LayerName: `proxy-${arch}` }));
    assert.equal(LayerVersions?.length, 1);
    const [version] = LayerVersions!;
    assert.deepEqual(version?.CompatibleArchitectures, [arch]);
    assert.ok(version?.CompatibleRuntimes?.includes("provided.al2023") && version.CompatibleRuntimes.includes("nodejs24.x"), String(version?.CompatibleRuntimes));
    assert.match(run.stdout, new RegExp(`^proxy-${arch}: published ${version!.LayerVersionArn} \\(${arch}, code \\d+\\.\\d MB\\)$`, "m"));
    const layer = await lambda.send(new GetLayerVersionCommand({ LayerName: `proxy-${arch}`, VersionNumber: version!.Version }));
    assert.equal(layer.Content?.CodeSha256, sha256(zip("proxy", arch, "extension.zip")));
  }

  const again = await deploy(["proxy", "--extension", "--arch", "all"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^proxy-x86_64: unchanged arn:aws:lambda:.*:layer:proxy-x86_64:1 /m);
  assert.match(again.stdout, /^proxy-arm64: unchanged arn:aws:lambda:.*:layer:proxy-arm64:1 /m);
  assert.ok(!again.requests.includes("Lambda PublishLayerVersion"));

  const renamed = await deploy(["proxy", "--extension", "--arch", "x86_64", "--layer-name", "audit", "--dry-run"]);
  assert.equal(renamed.code, 0, renamed.stderr);
  assert.match(renamed.stdout, /^audit-x86_64: would publish a new version \(x86_64, code \d+\.\d MB\)$/m);
  assert.deepEqual(renamed.requests, ["Lambda ListLayerVersions"]);
});

test("a zip over 50 MB: refused without --s3-bucket, saying so; with it, uploaded to S3 under its SHA-256 and created from there", async (t) => {
  // The real x86_64 bootstrap plus 11 MB of random bytes, stored (not compressed): 51 MB.
  const dir = join(project, "dist", "big", "x86_64");
  mkdirSync(dir, { recursive: true });
  copyFileSync(zip("hello", "x86_64"), join(dir, "function.zip"));
  writeFileSync(join(dir, "padding.bin"), randomBytes(11_000_000));
  execFileSync("zip", ["-0", "-q", "function.zip", "padding.bin"], { cwd: dir });
  t.after(() => rmSync(dirname(dir), { recursive: true, force: true }));
  const bytes = readFileSync(join(dir, "function.zip")).length;
  assert.ok(bytes > 50_000_000, String(bytes));

  const refused = await deploy(["big"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /dist\/big\/x86_64\/function\.zip is 5\d\.\d MB: Lambda takes at most 50\.0 MB in a request, larger zips go through S3: add --s3-bucket BUCKET \(a bucket in eu-west-1 you can write to\)/);
  await assert.rejects(getFunction("big"), { name: "ResourceNotFoundException" });

  await s3.send(new CreateBucketCommand({ Bucket: "deploy-bucket", CreateBucketConfiguration: { LocationConstraint: region } }));
  const run = await deploy(["big", "--s3-bucket", "deploy-bucket"]);
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.requests.includes("S3 PutObject"), run.requests.join(", "));
  const hex = createHash("sha256").update(readFileSync(join(dir, "function.zip"))).digest("hex");
  const object = await s3.send(new HeadObjectCommand({ Bucket: "deploy-bucket", Key: `micro-lambda/big/x86_64/${hex}.zip` }));
  assert.equal(object.ContentLength, bytes);
  const config = (await getFunction("big")).Configuration;
  assert.equal(config?.CodeSha256, sha256(join(dir, "function.zip")));
  assert.equal(config?.CodeSize, bytes);
});

test("an --al2 build: runtime provided.al2, with a warning that Lambda no longer takes it", async () => {
  const run = await deploy(["old"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /warning: dist\/old\/x86_64\/function\.zip is an --al2 build: runtime provided\.al2, for which Lambda no longer accepts new functions or updates/);
  assert.match(run.stdout, /^old: created \(x86_64, provided\.al2, /m);
  assert.equal((await getFunction("old")).Configuration?.Runtime, "provided.al2");
});

test("the default role is created once: later functions reuse it", async () => {
  const roles = await iam.send(new ListRolesCommand({}));
  assert.equal(roles.Roles?.filter((role) => role.RoleName === "micro-lambda-execution").length, 1);
  // hello created it; streaming, big and old reused it.
  for (const name of ["hello", "streaming", "big", "old"]) {
    assert.equal((await getFunction(name)).Configuration?.Role, roles.Roles?.find((role) => role.RoleName === "micro-lambda-execution")?.Arn);
  }
});

test("credentials and region as the AWS CLI finds them: a --profile's files; AWS_DEFAULT_REGION before the profile's region; --region first", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "micro-lambda-aws-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "config"), `[profile dev]\nregion = ${region}\n`);
  writeFileSync(join(dir, "credentials"), `[dev]\naws_access_key_id = ${credentials.accessKeyId}\naws_secret_access_key = ${credentials.secretAccessKey}\n`);
  const profileOnly = {
    AWS_CONFIG_FILE: join(dir, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_REGION: undefined,
  };
  // Function hello exists in eu-west-1 (made above), not in eu-central-1: a dry run tells which region was used.
  const args = ["hello", "--arch", "arm64", "--profile", "dev", "--dry-run"];
  const fromProfile = await deploy(args, profileOnly);
  assert.equal(fromProfile.code, 0, fromProfile.stderr);
  assert.match(fromProfile.stdout, /^hello: (unchanged|would change)/m);
  const fromEnvironment = await deploy(args, { ...profileOnly, AWS_DEFAULT_REGION: "eu-central-1" });
  assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr);
  assert.match(fromEnvironment.stdout, /^hello: would be created/m);
  const fromFlag = await deploy([...args, "--region", region], { ...profileOnly, AWS_DEFAULT_REGION: "eu-central-1" });
  assert.match(fromFlag.stdout, /^hello: (unchanged|would change)/m);
});

describe("failures: a non-zero exit and a message that says what is wrong", () => {
  test("no credentials: the SDK's own message, and what to do; no request leaves", async () => {
    const run = await deploy(["hello", "--arch", "x86_64"], { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: Lambda GetFunctionConfiguration: CredentialsProviderError: Could not load credentials from any providers: give deploy credentials: run `aws configure`/m);
    assert.deepEqual(run.requests, []);
  });

  test("no region anywhere: says where to set one", async () => {
    const run = await deploy(["hello", "--arch", "x86_64"], { AWS_REGION: undefined });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: no AWS region: pass --region, set AWS_REGION, or set one in your profile \(aws configure\)$/m);
  });

  test("access denied (a user allowed lambda:* only, so the default role cannot be made): IAM's own message, and --role as the way out", async (t) => {
    // A second moto that checks signatures and policies after its first 3 requests: those make the user.
    // (moto answers Lambda's own denials in XML, which no Lambda client can read, so the denial tested is IAM's.)
    const strict = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: "3" });
    t.after(() => strict.process.kill());
    const admin = new IAMClient({ endpoint: strict.endpoint, region, credentials });
    await admin.send(new CreateUserCommand({ UserName: "deployer" }));
    const { AccessKey: key } = await admin.send(new CreateAccessKeyCommand({ UserName: "deployer" }));
    const lambdaOnly = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "lambda:*", Resource: "*" }] };
    await admin.send(new PutUserPolicyCommand({ UserName: "deployer", PolicyName: "lambda-only", PolicyDocument: JSON.stringify(lambdaOnly) }));

    const run = await deploy(["hello", "--arch", "x86_64"], { AWS_ENDPOINT_URL: strict.endpoint, AWS_ACCESS_KEY_ID: key!.AccessKeyId, AWS_SECRET_ACCESS_KEY: key!.SecretAccessKey });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: IAM GetRole: AccessDenied: User: arn:aws:iam::\d{12}:user\/deployer is not authorized to perform: iam:GetRole.*: give --role ARN of an existing execution role instead$/m);
    assert.deepEqual(run.requests, ["Lambda GetFunctionConfiguration", "IAM GetRole"]);
  });

  test("throttled: Lambda's own message once the SDK's retries are spent", async (t) => {
    // moto never throttles, so this one answer comes from a stand-in: Lambda's 429 as its API documents it.
    let requests = 0;
    const server = createServer((request, response) => {
      requests++;
      request.resume();
      const body = { Type: "User", message: "Rate exceeded", Reason: "CallerRateLimitExceeded" };
      response.writeHead(429, { "content-type": "application/json", "x-amzn-errortype": "TooManyRequestsException" }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => server.close());
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const run = await deploy(["hello", "--arch", "x86_64"], { AWS_ENDPOINT_URL: endpoint });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: Lambda GetFunctionConfiguration: TooManyRequestsException: Rate exceeded$/m);
    // The SDK's standard retry mode: 3 attempts, as the AWS CLI makes.
    assert.equal(requests, 3);
    assert.deepEqual(run.requests, Array(3).fill("Lambda GetFunctionConfiguration"));
  });

  test("an unknown role: Lambda's own message", async () => {
    tinyBuild("orphan");
    const run = await deploy(["orphan", "--role", "arn:aws:iam::123456789012:role/no-such-role"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: Lambda CreateFunction: InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda\.$/m);
    await assert.rejects(getFunction("orphan"), { name: "ResourceNotFoundException" });
  });

  test("a missing build: says which build command makes it, before any AWS call", async () => {
    mkdirSync(join(project, "src", "ghost"), { recursive: true });
    writeFileSync(join(project, "src", "ghost", "main.ts"), "");
    const run = await deploy(["ghost", "--arch", "arm64"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: dist\/ghost\/arm64\/function\.zip not found: build it first: npx micro-lambda build src\/ghost\/main\.ts --name ghost --arch arm64$/m);
    assert.deepEqual(run.requests, []);

    const other = await deploy(["hello", "--extension", "--arch", "arm64"]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /dist\/hello\/arm64\/extension\.zip not found, but function\.zip is there: dist\/hello\/arm64 holds a function: deploy it without --extension/);
  });

  test("a zip of the wrong architecture (an arm64 bootstrap in dist/NAME/x86_64): refused before any AWS call", async (t) => {
    const dir = join(project, "dist", "mixed", "x86_64");
    mkdirSync(dir, { recursive: true });
    t.after(() => rmSync(dirname(dir), { recursive: true, force: true }));
    copyFileSync(zip("hello", "arm64"), join(dir, "function.zip"));
    const run = await deploy(["mixed"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^micro-lambda deploy: dist\/mixed\/x86_64\/function\.zip: bootstrap is an arm64 executable, not x86_64: Lambda would fail to start it \(Runtime\.InvalidEntrypoint\)\. Build it again: npx micro-lambda build ENTRY --name mixed --arch x86_64$/m);
    assert.deepEqual(run.requests, []);
    await assert.rejects(getFunction("mixed"), { name: "ResourceNotFoundException" });
  });

  test("a command line deploy cannot follow: exit 2 and the usage", async () => {
    for (const [args, message] of [
      [["hello"], "dist/hello holds x86_64 and arm64 builds: choose one with --arch"],
      [["hello", "--arch", "all"], "--arch all: a function runs on one architecture"],
      [["hello", "--arch", "x86_64", "--streaming"], "--streaming goes with --url"],
      [["proxy", "--extension", "--memory", "512"], "--memory: for functions, not with --extension"],
      [["hello", "--memory", "64"], "--memory 64: a whole number from 128 to 10240"],
      [["hello", "--env", "STAGE"], "--env STAGE: write NAME=VALUE"],
      [["hello", "--role", "lambda-basic"], "--role lambda-basic: give the role's ARN"],
      [["hello", "--layer-name", "x"], "--layer-name goes with --extension"],
    ] as const) {
      const run = await deploy([...args]);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.ok(run.stderr.includes(message), run.stderr);
      assert.match(run.stderr, /usage: micro-lambda deploy NAME \[options\]/);
    }
  });
});
