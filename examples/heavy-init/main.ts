// A function with a realistic heavy init: AWS SDK v3 clients for S3, DynamoDB and SQS, bundled. It is the
// example for `build.sh --snapshot`, which runs the init at build time and ships a V8 startup snapshot of it.
//
// What a snapshot freezes, and so what this file is careful about:
// - Everything the top of this file computes runs once, on the build machine, and every cold start restores
//   that same state. Loading and evaluating the SDK's code is the slow part of the init (about 110 ms of
//   the 170 ms to the first /next): that is what the snapshot saves.
// - The clients are created here, at init, as in any Lambda function: a client reads its region, credentials and
//   endpoint on its first call, in the sandbox, not when it is made. The https.Agent each one makes cannot exist
//   in a snapshot: build.sh gives the bundle a stand-in for node:https, and Node's own constructor initialises
//   that agent after the restore (src/snapshot/builtins.cjs).
// - Anything unique per sandbox must be made after the restore: `Math.random()` and `crypto.randomUUID()`
//   called at the top would return the same value in every sandbox, and `process.env` read at the top holds
//   the build machine's environment (an empty one).
// Built without --snapshot, the same file works unchanged.
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { lambda } from "micro-lambda";

const s3 = new S3Client({});
const dynamodb = new DynamoDBClient({});
const sqs = new SQSClient({});

lambda(async () => {
  const [buckets, tables, queues] = await Promise.all([
    s3.send(new ListBucketsCommand({})),
    dynamodb.send(new ListTablesCommand({})),
    sqs.send(new ListQueuesCommand({})),
  ]);
  return {
    region: await s3.config.region(),
    buckets: buckets.Buckets?.map((bucket) => bucket.Name) ?? [],
    tables: tables.TableNames ?? [],
    queues: queues.QueueUrls ?? [],
  };
});
