// A function with a realistic heavy init: AWS SDK v3 clients for S3, DynamoDB and SQS, bundled. It is the
// example for `build.sh --snapshot`, which runs the init at build time and ships a V8 startup snapshot of it.
//
// What a snapshot freezes, and so what this file is careful about:
// - Everything the top of this file computes runs once, on the build machine, and every cold start restores
//   that same state. Loading and evaluating the SDK's code is the slow part of the init (about 110 ms of
//   the 170 ms to the first /next): that is what the snapshot saves.
// - The clients are created on first use, after the restore, not at the top: a client reads its region,
//   credentials and endpoint from the environment (build-time values would be frozen in), and creates an
//   https.Agent, which cannot exist in a snapshot (build.sh makes node:http, https, http2 and tls load
//   lazily, and using them at build time stops the build with an error that says so).
// - Anything unique per sandbox must be made after the restore too: `Math.random()` and `crypto.randomUUID()`
//   called at the top would return the same value in every sandbox, and `process.env` read at the top holds
//   the build machine's environment.
// Built without --snapshot, the same file works unchanged: then the first invocation creates the clients.
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { lambda } from "micro-lambda";

/** The clients, created by the first invocation and reused by the next ones. */
const clients = once(() => ({ s3: new S3Client({}), dynamodb: new DynamoDBClient({}), sqs: new SQSClient({}) }));

lambda(async () => {
  const { s3, dynamodb, sqs } = clients();
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

function once<T>(create: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= create());
}
