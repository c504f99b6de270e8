// How a zip reaches Lambda: inside the request up to the 50 MB direct-upload limit, as an S3 object above it.
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { Aws } from "./aws.ts";
import { megabytes, type BuildOutput } from "./build-output.ts";

/**
 * Lambda refuses a zip over 50 MB in CreateFunction, UpdateFunctionCode or PublishLayerVersion itself; from
 * S3 it takes up to 250 MB unzipped. 50 million bytes, as build.sh warns, so that the sizes printed agree.
 */
export const directUploadLimit = 50_000_000;

/** Where the code is, as CreateFunction's Code, UpdateFunctionCode and PublishLayerVersion's Content take it. */
export type Code = { ZipFile: Uint8Array } | { S3Bucket: string; S3Key: string };

/** The build's zip as Code, uploaded to `bucket` first when it is over the limit. The S3 key is the zip's SHA-256, so an object already there is not sent again. */
export async function codeFor(aws: Aws, build: BuildOutput, bucket: string | undefined): Promise<Code> {
  if (build.zip.length <= directUploadLimit) return { ZipFile: build.zip };
  if (bucket === undefined) {
    throw new Error(
      `${build.path} is ${megabytes(build.zip.length)}: Lambda takes at most ${megabytes(directUploadLimit)} in a request, larger zips go through S3: ` +
        `add --s3-bucket BUCKET (a bucket in ${aws.region} you can write to)`,
    );
  }
  const key = `micro-lambda/${build.name}/${build.arch}/${createHash("sha256").update(build.zip).digest("hex")}.zip`;
  if (await exists(aws, bucket, key)) {
    console.error(`micro-lambda deploy: s3://${bucket}/${key} is there already`);
  } else {
    console.error(`micro-lambda deploy: uploading ${build.path} (${megabytes(build.zip.length)}) to s3://${bucket}/${key}`);
    await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: build.zip, ContentType: "application/zip" }));
  }
  return { S3Bucket: bucket, S3Key: key };
}

async function exists(aws: Aws, bucket: string, key: string): Promise<boolean> {
  try {
    await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    // HEAD has no body: a missing key is a bare 404 ("NotFound"). A missing bucket is left for PutObject to report by name.
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}
