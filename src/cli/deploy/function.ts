// A Lambda function from a build, idempotently: created when absent; otherwise its code is uploaded only when
// the zip's SHA-256 differs from what Lambda holds, and only the settings that differ are changed. Lambda applies
// each change asynchronously and refuses the next one until it is done, so every change is waited for.
import {
  AddPermissionCommand,
  CreateFunctionCommand,
  CreateFunctionUrlConfigCommand,
  GetFunctionConfigurationCommand,
  GetFunctionUrlConfigCommand,
  GetPolicyCommand,
  RemovePermissionCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  UpdateFunctionUrlConfigCommand,
  type FunctionConfiguration,
  type FunctionUrlAuthType,
  type InvokeMode,
  type LambdaClient,
} from "@aws-sdk/client-lambda";
import type { Aws } from "./aws.ts";
import type { BuildOutput } from "./build-output.ts";
import { codeFor } from "./code.ts";
import { defaultRole, type Role } from "./role.ts";

/** What the command line asks for. Settings left undefined keep what the deployed function has (Lambda's defaults on creation). */
export interface FunctionSettings {
  functionName: string;
  role?: string;
  memory?: number;
  timeout?: number;
  /** The function's whole environment: variables not listed are removed. */
  environment?: Record<string, string>;
  /** The function's layers, in order: layers not listed are detached. */
  layers?: string[];
  /** Create or keep a function URL. */
  url?: { auth: FunctionUrlAuthType; invokeMode: InvokeMode };
  s3Bucket?: string;
  /** Read what is deployed and say what would change, changing nothing. */
  dryRun: boolean;
}

export interface FunctionResult {
  action: "created" | "updated" | "unchanged";
  /** What changed (or would change, in a dry run), e.g. "code", "memory 128 → 512 MB". */
  changes: string[];
  /** undefined in a dry run that would create the function. */
  arn: string | undefined;
  runtime: string;
  codeSize: number;
  role?: Role;
  url?: { url: string | undefined; auth: FunctionUrlAuthType; invokeMode: InvokeMode; action: "created" | "updated" | "unchanged" };
}

export async function deployFunction(aws: Aws, build: BuildOutput, settings: FunctionSettings): Promise<FunctionResult> {
  const runtime = build.al2 ? "provided.al2" : "provided.al2023";
  const current = await configuration(aws.lambda, settings.functionName);
  const result: FunctionResult = {
    action: current ? "unchanged" : "created",
    changes: [],
    arn: current?.FunctionArn,
    runtime,
    codeSize: build.zip.length,
  };

  if (!current) {
    const code = settings.dryRun ? undefined : await codeFor(aws, build, settings.s3Bucket);
    if (!settings.role) result.role = await defaultRole(aws, settings.dryRun);
    if (settings.dryRun) return result;
    const created = await createFunction(aws.lambda, {
      FunctionName: settings.functionName,
      Runtime: runtime,
      Handler: "bootstrap",
      Architectures: [build.arch],
      Role: settings.role ?? result.role!.arn,
      Code: code!,
      MemorySize: settings.memory,
      Timeout: settings.timeout,
      Environment: settings.environment ? { Variables: settings.environment } : undefined,
      Layers: settings.layers,
      Description: `micro-lambda: ${build.name}`,
    }, result.role?.created === true);
    result.arn = created.FunctionArn;
    await settled(aws.lambda, settings.functionName);
  } else {
    // A change still being applied (another deploy, the console) must end first; an earlier failed one is what this deploy may fix.
    await settled(aws.lambda, settings.functionName, current);
    // The architecture is part of the code: UpdateFunctionCode sets it.
    if (current.CodeSha256 !== build.sha256 || current.Architectures?.[0] !== build.arch) {
      result.changes.push(current.Architectures?.[0] === build.arch ? "code" : `code and architecture ${current.Architectures?.[0]} → ${build.arch}`);
      if (!settings.dryRun) {
        const code = await codeFor(aws, build, settings.s3Bucket);
        await aws.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: settings.functionName, Architectures: [build.arch], ...code }));
        await settled(aws.lambda, settings.functionName);
      }
    }
    const { update, changes } = configurationChanges(current, settings, runtime);
    result.changes.push(...changes);
    if (changes.length > 0 && !settings.dryRun) {
      await aws.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: settings.functionName, ...update }));
      await settled(aws.lambda, settings.functionName);
    }
    if (result.changes.length > 0) result.action = "updated";
  }

  if (settings.url) result.url = await functionUrl(aws.lambda, settings.functionName, settings.url, { exists: result.arn !== undefined, dryRun: settings.dryRun });
  return result;
}

/** The function's configuration, or undefined when there is no such function. */
async function configuration(lambda: LambdaClient, name: string): Promise<FunctionConfiguration | undefined> {
  try {
    return await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
  } catch (error) {
    if ((error as Error).name === "ResourceNotFoundException") return undefined;
    throw error;
  }
}

type CreateInput = ConstructorParameters<typeof CreateFunctionCommand>[0];

/**
 * CreateFunction. A role created moments ago is not yet visible to Lambda everywhere (IAM is eventually
 * consistent): Lambda answers that it "cannot be assumed" for some seconds, so with a new role that answer is retried.
 */
async function createFunction(lambda: LambdaClient, input: CreateInput, newRole: boolean): Promise<FunctionConfiguration> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await lambda.send(new CreateFunctionCommand(input));
    } catch (error) {
      const notYet = (error as Error).name === "InvalidParameterValueException" && /cannot be assumed/.test((error as Error).message);
      if (!newRole || !notYet || attempt === 15) throw error;
      if (attempt === 1) console.error("micro-lambda deploy: waiting for the new role to reach Lambda (IAM takes a few seconds)");
      await sleep(2000);
    }
  }
}

/** The UpdateFunctionConfiguration input for what differs, and each difference in words. */
function configurationChanges(current: FunctionConfiguration, settings: FunctionSettings, runtime: string) {
  const update: Omit<ConstructorParameters<typeof UpdateFunctionConfigurationCommand>[0], "FunctionName"> = {};
  const changes: string[] = [];
  if (current.Runtime !== runtime) {
    update.Runtime = runtime as FunctionConfiguration["Runtime"];
    changes.push(`runtime ${current.Runtime ?? "none"} → ${runtime}`);
  }
  if (current.Handler !== "bootstrap") {
    update.Handler = "bootstrap";
    changes.push(`handler ${current.Handler ?? "none"} → bootstrap`);
  }
  if (settings.role !== undefined && current.Role !== settings.role) {
    update.Role = settings.role;
    changes.push(`role ${current.Role} → ${settings.role}`);
  }
  if (settings.memory !== undefined && current.MemorySize !== settings.memory) {
    update.MemorySize = settings.memory;
    changes.push(`memory ${current.MemorySize} → ${settings.memory} MB`);
  }
  if (settings.timeout !== undefined && current.Timeout !== settings.timeout) {
    update.Timeout = settings.timeout;
    changes.push(`timeout ${current.Timeout} → ${settings.timeout} s`);
  }
  if (settings.environment !== undefined) {
    const before = current.Environment?.Variables ?? {};
    const names = new Set([...Object.keys(before), ...Object.keys(settings.environment)]);
    const differing = [...names].filter((name) => before[name] !== settings.environment![name]).sort();
    if (differing.length > 0) {
      update.Environment = { Variables: settings.environment };
      changes.push(`environment (${differing.join(", ")})`);
    }
  }
  if (settings.layers !== undefined) {
    const before = (current.Layers ?? []).map((layer) => layer.Arn);
    if (before.join(" ") !== settings.layers.join(" ")) {
      update.Layers = settings.layers;
      changes.push(`layers ${before.length ? before.join(", ") : "none"} → ${settings.layers.length ? settings.layers.join(", ") : "none"}`);
    }
  }
  return { update, changes };
}

const settleLimitMs = 10 * 60_000;

/**
 * Waits until Lambda has finished applying the last change: State leaves Pending (after CreateFunction) and
 * LastUpdateStatus leaves InProgress (after an update). After a change of ours (no `before` given), a Failed
 * state or update throws Lambda's reason.
 */
async function settled(lambda: LambdaClient, name: string, before?: FunctionConfiguration): Promise<FunctionConfiguration> {
  const deadline = Date.now() + settleLimitMs;
  let known = before;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
    const config = known ?? (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
    known = undefined;
    if (config.State !== "Pending" && config.LastUpdateStatus !== "InProgress") {
      if (before) return config;
      if (config.State === "Failed") throw new Error(`Lambda reports the function's state Failed: ${config.StateReasonCode}: ${config.StateReason}`);
      if (config.LastUpdateStatus === "Failed") throw new Error(`Lambda reports the update Failed: ${config.LastUpdateStatusReasonCode}: ${config.LastUpdateStatusReason}`);
      return config;
    }
    if (Date.now() > deadline) throw new Error(`Lambda is still applying the last change to ${name} after ${settleLimitMs / 60_000} minutes (State ${config.State}, LastUpdateStatus ${config.LastUpdateStatus})`);
    await sleep(delay);
  }
}

/** Resource-policy statements a public (AuthType NONE) function URL needs: since October 2025, both actions. */
const publicUrlStatements = [
  { StatementId: "micro-lambda-url", Action: "lambda:InvokeFunctionUrl", Principal: "*", FunctionUrlAuthType: "NONE" as const },
  { StatementId: "micro-lambda-url-invoke", Action: "lambda:InvokeFunction", Principal: "*", InvokedViaFunctionUrl: true },
];

/** Creates the function URL or brings it to `want`; a public URL gets the permissions that let anyone call it. */
async function functionUrl(
  lambda: LambdaClient,
  name: string,
  want: NonNullable<FunctionSettings["url"]>,
  { exists, dryRun }: { exists: boolean; dryRun: boolean },
): Promise<NonNullable<FunctionResult["url"]>> {
  let current;
  try {
    if (exists) current = await lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: name }));
  } catch (error) {
    if ((error as Error).name !== "ResourceNotFoundException") throw error;
  }
  const result = { url: current?.FunctionUrl, auth: want.auth, invokeMode: want.invokeMode, action: "unchanged" as "created" | "updated" | "unchanged" };
  // moto answers "Buffered" where Lambda answers "BUFFERED".
  if (!current) result.action = "created";
  else if (current.AuthType !== want.auth || current.InvokeMode?.toUpperCase() !== want.invokeMode) result.action = "updated";
  if (dryRun) return result;
  if (result.action === "created") {
    result.url = (await lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: name, AuthType: want.auth, InvokeMode: want.invokeMode }))).FunctionUrl;
  } else if (result.action === "updated") {
    await lambda.send(new UpdateFunctionUrlConfigCommand({ FunctionName: name, AuthType: want.auth, InvokeMode: want.invokeMode }));
  }

  const statements = await policyStatementIds(lambda, name);
  for (const statement of publicUrlStatements) {
    const present = statements.has(statement.StatementId);
    if (want.auth === "NONE" && !present) await lambda.send(new AddPermissionCommand({ FunctionName: name, ...statement }));
    // With AWS_IAM, "*" would let any AWS account's principals call it: the public grants go.
    if (want.auth === "AWS_IAM" && present) await lambda.send(new RemovePermissionCommand({ FunctionName: name, StatementId: statement.StatementId }));
  }
  return result;
}

async function policyStatementIds(lambda: LambdaClient, name: string): Promise<Set<string>> {
  try {
    const { Policy } = await lambda.send(new GetPolicyCommand({ FunctionName: name }));
    return new Set((JSON.parse(Policy ?? "{}").Statement ?? []).map((statement: { Sid?: string }) => statement.Sid));
  } catch (error) {
    if ((error as Error).name === "ResourceNotFoundException") return new Set();
    throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
