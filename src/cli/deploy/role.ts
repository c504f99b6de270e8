// The execution role a function gets when deploy is given no --role: one role, created on first use with the
// basic execution policy (write logs to CloudWatch Logs, nothing else) and reused by every later deploy.
import { AttachRolePolicyCommand, CreateRoleCommand, GetRoleCommand, ListAttachedRolePoliciesCommand } from "@aws-sdk/client-iam";
import type { Aws } from "./aws.ts";

export const defaultRoleName = "micro-lambda-execution";

/** Lambda's service principal may assume the role: that is what makes it an execution role. */
const trustPolicy = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
};

export interface Role {
  name: string;
  /** undefined in a dry run that would create the role. */
  arn: string | undefined;
  created: boolean;
}

/** The default role, created when it does not exist yet (not in a dry run). */
export async function defaultRole(aws: Aws, dryRun: boolean): Promise<Role> {
  let arn = await existingRole(aws);
  const created = arn === undefined;
  if (dryRun) return { name: defaultRoleName, arn, created };
  if (arn === undefined) {
    const role = await aws.iam.send(
      new CreateRoleCommand({
        RoleName: defaultRoleName,
        AssumeRolePolicyDocument: JSON.stringify(trustPolicy),
        Description: "Execution role of functions deployed by micro-lambda: CloudWatch Logs only (AWSLambdaBasicExecutionRole)",
      }),
    );
    arn = role.Role!.Arn!;
  }
  // The managed policy lives in the role's own partition (aws, aws-cn, aws-us-gov). It is checked on reuse too:
  // a deploy interrupted between CreateRole and AttachRolePolicy leaves a role without it.
  const policy = `arn:${arn.split(":")[1]}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`;
  const attached = created ? [] : ((await aws.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: defaultRoleName }))).AttachedPolicies ?? []);
  if (!attached.some((each) => each.PolicyArn === policy)) await aws.iam.send(new AttachRolePolicyCommand({ RoleName: defaultRoleName, PolicyArn: policy }));
  return { name: defaultRoleName, arn, created };
}

async function existingRole(aws: Aws): Promise<string | undefined> {
  try {
    return (await aws.iam.send(new GetRoleCommand({ RoleName: defaultRoleName }))).Role!.Arn!;
  } catch (error) {
    if ((error as Error).name === "NoSuchEntityException") return undefined;
    throw error;
  }
}
