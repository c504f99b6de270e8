// A log router: an extension that ships every line the function prints to a Kinesis Data Firehose delivery stream.
//
// It subscribes to the function's logs through the Telemetry API during init and buffers what arrives. The
// lines of earlier invocations go out with PutRecordBatch when the next INVOKE arrives (or when 500 are
// waiting), and on SHUTDOWN it waits for the last invocation's platform.runtimeDone, which Lambda sends after
// that invocation's lines, then sends everything left: no line is lost. Records Firehose refuses are sent
// again with backoff. Set KINESIS_DELIVERY_STREAM to the stream's name; the function's role needs
// firehose:PutRecordBatch on it. The AWS SDK honours AWS_ENDPOINT_URL (the tests point it at a fake).
import { FirehoseClient, PutRecordBatchCommand, type _Record } from "@aws-sdk/client-firehose";
import { extension, ExtensionError } from "micro-lambda/extension";
import { subscribeTelemetry, type TelemetryEvent } from "micro-lambda/telemetry";

/** PutRecordBatch's limits: 500 records and 4 MiB per call, 1,000 KiB per record. */
const MAX_RECORDS = 500;
const MAX_CALL_BYTES = 4 * 1024 * 1024;
const MAX_RECORD_BYTES = 1000 * 1024;
const ATTEMPTS = 5;

interface Router {
  client: FirehoseClient;
  stream: string;
  /** Lines not yet sent, as Firehose records (one JSON line each). */
  pending: Uint8Array[];
  /** The invocation whose lines are arriving, from platform.start. */
  requestId?: string;
  /** Invocations whose platform.runtimeDone has arrived: all their lines are in. */
  done: Set<string>;
  /** Wakes whoever waits for a runtimeDone. */
  onDone?: () => void;
  /** The send in progress: sends go one at a time, so lines keep their order. */
  sending: Promise<void>;
}

extension<Router>({
  async init(registration) {
    const stream = process.env.KINESIS_DELIVERY_STREAM;
    if (!stream) {
      throw new ExtensionError("Extension.ConfigInvalid", "KINESIS_DELIVERY_STREAM is not set: set it to the name of the Firehose delivery stream the function's logs should go to");
    }
    const router: Router = { client: new FirehoseClient({}), stream, pending: [], done: new Set(), sending: Promise.resolve() };
    await subscribeTelemetry(registration, {
      types: ["platform", "function"],
      buffering: { timeoutMs: 250 },
      onEvents: (events) => receive(router, events),
    });
    return router;
  },

  // The lines of the invocations before this one.
  async onInvoke(_event, router) {
    await send(router);
  },

  async onShutdown(event, router) {
    if (router.requestId) await runtimeDone(router, router.requestId, event.deadlineMs - 500);
    await send(router);
  },
});

async function receive(router: Router, events: TelemetryEvent[]): Promise<void> {
  for (const event of events) {
    if (event.type === "platform.start") router.requestId = event.record.requestId;
    else if (event.type === "platform.runtimeDone") {
      router.done.add(event.record.requestId);
      router.onDone?.();
    } else if (event.type === "function") {
      const message = typeof event.record === "string" ? event.record : JSON.stringify(event.record);
      const line = JSON.stringify({ time: event.time, requestId: router.requestId, message }) + "\n";
      router.pending.push(Buffer.from(line.length > MAX_RECORD_BYTES / 4 ? truncate(line) : line));
    }
  }
  if (router.pending.length >= MAX_RECORDS) await send(router);
}

/** Resolves when `requestId`'s runtimeDone has arrived, or at `deadline` (epoch ms). */
function runtimeDone(router: Router, requestId: string, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    const check = () => {
      if (!router.done.has(requestId)) return;
      clearTimeout(timer);
      resolve();
    };
    router.onDone = check;
    check();
  });
}

/** Sends everything pending, in PutRecordBatch-sized calls, after any send in progress. */
function send(router: Router): Promise<void> {
  const records = router.pending.splice(0);
  router.sending = router.sending.then(async () => {
    for (let start = 0; start < records.length; ) {
      let end = start;
      let bytes = 0;
      while (end < records.length && end - start < MAX_RECORDS && bytes + records[end]!.length <= MAX_CALL_BYTES) bytes += records[end++]!.length;
      await putWithRetry(router, records.slice(start, end));
      start = end;
    }
  });
  return router.sending;
}

/** PutRecordBatch, sending again the records Firehose failed (FailedPutCount), with exponential backoff. Never throws: what cannot be delivered is reported on stderr. */
async function putWithRetry(router: Router, records: Uint8Array[]): Promise<void> {
  let left = records;
  let why = "";
  for (let attempt = 0; attempt < ATTEMPTS && left.length > 0; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    try {
      const answer = await router.client.send(new PutRecordBatchCommand({ DeliveryStreamName: router.stream, Records: left.map((Data): _Record => ({ Data })) }));
      if (!answer.FailedPutCount) return;
      const failed = (answer.RequestResponses ?? []).flatMap((response, index) => (response.ErrorCode ? [index] : []));
      why = (answer.RequestResponses ?? []).find((response) => response.ErrorCode)?.ErrorMessage ?? "records failed";
      left = failed.map((index) => left[index]!);
    } catch (error) {
      why = (error as Error).message;
    }
  }
  if (left.length > 0) console.error(`log-router: ${left.length} log records could not be delivered to ${router.stream} after ${ATTEMPTS} attempts: ${why}`);
}

function truncate(line: string): string {
  const message = JSON.parse(line) as { message: string };
  message.message = message.message.slice(0, MAX_RECORD_BYTES / 4 - 200) + "…[truncated]";
  return JSON.stringify(message) + "\n";
}
