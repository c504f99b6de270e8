// The AWS SDK clients deploy uses (Lambda, IAM, S3), configured as the AWS CLI would be: the default credential
// chain, the region from --region, AWS_REGION, AWS_DEFAULT_REGION or the profile, and AWS_ENDPOINT_URL (read by the
// SDK itself) to point them elsewhere. Only the CLI imports this: nothing of the SDK goes into a bootstrap.
import { IAMClient } from "@aws-sdk/client-iam";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";

export interface Aws {
  lambda: LambdaClient;
  iam: IAMClient;
  s3: S3Client;
  region: string;
}

export interface AwsOptions {
  region?: string;
  profile?: string;
  /** Print each request's operation and host on stderr. */
  verbose?: boolean;
}

/** Clients for one region. Throws when no region is configured anywhere. */
export async function connect(options: AwsOptions): Promise<Aws> {
  // The SDK reads AWS_REGION and the profile's region; the AWS CLI also reads AWS_DEFAULT_REGION, before the profile.
  const config = {
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION,
    profile: options.profile,
    // The AWS CLI's defaults: 60 s to connect, 60 s of silence on a connection. The SDK's own are to wait forever.
    requestHandler: { connectionTimeout: 60_000, requestTimeout: 60_000 },
  };
  const lambda = new LambdaClient(config);
  let region: string;
  try {
    region = await lambda.config.region();
  } catch {
    throw new Error("no AWS region: pass --region, set AWS_REGION, or set one in your profile (aws configure)");
  }
  const clients = { lambda, iam: new IAMClient({ ...config, region }), s3: new S3Client({ ...config, region }) };
  for (const client of Object.values(clients)) annotate(client, options.verbose === true);
  return { ...clients, region };
}

/** Where a failed request's operation is written on its error: "Lambda CreateFunction". */
const operation = Symbol("micro-lambda AWS operation");

function operationOf(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && operation in error ? String(error[operation as keyof typeof error]) : undefined;
}

/**
 * Names the operation on any error a client throws, credentials included (they are resolved while a request is
 * signed) and, with `verbose`, prints where each attempt goes: the host shows that AWS_ENDPOINT_URL took effect.
 */
function annotate(client: LambdaClient | IAMClient | S3Client, verbose: boolean): void {
  const stack = client.middlewareStack as LambdaClient["middlewareStack"];
  const nameOf = (context: { clientName?: string; commandName?: string }) =>
    `${context.clientName?.replace(/Client$/, "")} ${context.commandName?.replace(/Command$/, "")}`;
  stack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (typeof error === "object" && error !== null && !(operation in error)) Object.defineProperty(error, operation, { value: nameOf(context) });
        throw error;
      }
    },
    { step: "initialize", name: "microLambdaOperation" },
  );
  if (!verbose) return;
  // Last in the finalize step: after the retry middleware and the signer, so once per attempt, with the final host.
  stack.add(
    (next, context) => async (args) => {
      const request = args.request as { protocol?: string; hostname?: string; port?: number; path?: string };
      console.error(`micro-lambda deploy: ${nameOf(context)} → ${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ""}${request.path ?? ""}`);
      return next(args);
    },
    { step: "finalizeRequest", name: "microLambdaVerbose", priority: "low" },
  );
}

/** An AWS failure as the user should read it: the operation, AWS's error code and AWS's own message, plus what to do where that is clear. */
export function describeFailure(error: unknown): string {
  const err = error as { name?: string; message?: string; Code?: string };
  const where = operationOf(error);
  const code = err.name && err.name !== "Error" ? err.name : err.Code;
  const text = [where, code, err.message].filter(Boolean).join(": ");
  if (where?.startsWith("IAM ") && /AccessDenied/.test(code ?? "")) {
    return `${text}: without --role, deploy makes its own role, which takes iam:GetRole, iam:CreateRole, iam:ListAttachedRolePolicies and iam:AttachRolePolicy: give --role ARN of an existing execution role instead`;
  }
  if (err.name === "CredentialsProviderError") {
    return `${text}: give deploy credentials: run \`aws configure\` (or \`aws sso login\`), set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
  }
  return text;
}
