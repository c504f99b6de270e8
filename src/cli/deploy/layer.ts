// An extension build as a Lambda layer: one layer per architecture (the executable is native code), a new version
// only when the zip differs from the latest version's.
import { GetLayerVersionCommand, ListLayerVersionsCommand, PublishLayerVersionCommand, type Runtime } from "@aws-sdk/client-lambda";
import type { Aws } from "./aws.ts";
import type { BuildOutput } from "./build-output.ts";
import { codeFor } from "./code.ts";

/**
 * The runtimes a layer declares (Lambda uses the list to filter layers, and takes at most 15). The extension is a
 * self-contained executable that needs glibc 2.28: provided.al2023 and managed runtimes on Amazon Linux 2023; an
 * --al2 build ships its own glibc and also runs on provided.al2.
 */
export function compatibleRuntimes(build: BuildOutput): Runtime[] {
  const runtimes: Runtime[] = ["provided.al2023", "nodejs24.x", "nodejs22.x", "python3.13", "java21"];
  return build.al2 ? [...runtimes, "provided.al2"] : runtimes;
}

export interface LayerResult {
  action: "published" | "unchanged";
  layerName: string;
  /** The layer version's ARN, what `--layer` takes; undefined in a dry run that would publish. */
  arn: string | undefined;
  codeSize: number;
}

export async function deployLayer(aws: Aws, build: BuildOutput, layerName: string, options: { s3Bucket?: string; dryRun: boolean }): Promise<LayerResult> {
  const runtimes = compatibleRuntimes(build);
  const latest = await latestVersion(aws, layerName);
  if (
    latest &&
    latest.Content?.CodeSha256 === build.sha256 &&
    same(latest.CompatibleArchitectures, [build.arch]) &&
    same(latest.CompatibleRuntimes, runtimes)
  ) {
    return { action: "unchanged", layerName, arn: latest.LayerVersionArn, codeSize: build.zip.length };
  }
  if (options.dryRun) return { action: "published", layerName, arn: undefined, codeSize: build.zip.length };
  const published = await aws.lambda.send(
    new PublishLayerVersionCommand({
      LayerName: layerName,
      Description: `micro-lambda extension ${build.name} (${build.arch})`,
      Content: await codeFor(aws, build, options.s3Bucket),
      CompatibleRuntimes: runtimes,
      CompatibleArchitectures: [build.arch],
    }),
  );
  return { action: "published", layerName, arn: published.LayerVersionArn, codeSize: build.zip.length };
}

/** The newest version of the layer (ListLayerVersions lists newest first, without the code's SHA-256), or undefined. */
async function latestVersion(aws: Aws, layerName: string) {
  let newest;
  try {
    newest = (await aws.lambda.send(new ListLayerVersionsCommand({ LayerName: layerName, MaxItems: 1 }))).LayerVersions?.[0];
  } catch (error) {
    if ((error as Error).name !== "ResourceNotFoundException") throw error;
  }
  if (!newest) return undefined;
  return aws.lambda.send(new GetLayerVersionCommand({ LayerName: layerName, VersionNumber: newest.Version }));
}

function same(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return [...(a ?? [])].sort().join(" ") === [...b].sort().join(" ");
}
