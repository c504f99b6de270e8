// {{name}}: a Telemetry API extension that forwards every line the function prints to an HTTP endpoint,
// LOG_DESTINATION (POSTed as NDJSON, one {time, requestId, message} per line), in batches.
//
// During init it subscribes to the function's logs and the platform events; Lambda then POSTs batches to a
// listener inside the sandbox. Lambda delivers what is left before SHUTDOWN, and onShutdown waits for the
// last send: no line is lost. Replace send() with your log store's client.
import { extension, ExtensionError } from "micro-lambda/extension";
import { subscribeTelemetry, type TelemetryEvent } from "micro-lambda/telemetry";

interface Forwarder {
  destination: string;
  /** The invocation whose lines are arriving, from platform.start. */
  requestId?: string;
  /** The send in progress: sends go one at a time, so lines keep their order. */
  sending: Promise<void>;
}

extension<Forwarder>({
  async init(registration) {
    const destination = process.env.LOG_DESTINATION;
    if (!destination) throw new ExtensionError("Extension.ConfigInvalid", "LOG_DESTINATION is not set: set it to the URL the function's logs should be POSTed to");
    const forwarder: Forwarder = { destination, sending: Promise.resolve() };
    await subscribeTelemetry(registration, {
      types: ["platform", "function"],
      buffering: { timeoutMs: 100 },
      onEvents: (events) => receive(forwarder, events),
    });
    return forwarder;
  },
  async onShutdown(_event, forwarder) {
    await forwarder.sending;
  },
});

function receive(forwarder: Forwarder, events: TelemetryEvent[]): void {
  const lines: string[] = [];
  for (const event of events) {
    if (event.type === "platform.start") forwarder.requestId = event.record.requestId;
    else if (event.type === "function") {
      const message = typeof event.record === "string" ? event.record : JSON.stringify(event.record);
      lines.push(JSON.stringify({ time: event.time, requestId: forwarder.requestId, message }) + "\n");
    }
  }
  if (lines.length > 0) forwarder.sending = forwarder.sending.then(() => send(forwarder.destination, lines.join("")));
}

/** One POST; a failure is reported on stderr (the extension's log), never fatal to the function. */
async function send(destination: string, body: string): Promise<void> {
  try {
    const response = await fetch(destination, { method: "POST", headers: { "content-type": "application/x-ndjson" }, body });
    if (!response.ok) console.error(`{{name}}: ${destination} answered ${response.status}: ${body.length} bytes of logs lost`);
  } catch (error) {
    console.error(`{{name}}: ${destination}: ${(error as Error).message}: ${body.length} bytes of logs lost`);
  }
}
