// Log lines, as Lambda makes them: capped lines from a function's stdout and stderr, framed records from its telemetry log fd, the request id a line belongs to, and the platform's START/END/REPORT lines.
import type { Readable } from "node:stream";

/**
 * The longest log event: CloudWatch Logs takes events up to 256 KiB including 26 bytes of overhead, and Lambda cuts a
 * longer line into events of 262,118 bytes (2^18 - 26), as users see it in CloudWatch. The emulator does the same:
 * a line of 50 MiB without a newline becomes some 200 lines, read in linear time.
 */
export const MAX_LINE_BYTES = 262_118;

/** One log record: a line of stdout/stderr, or a frame from the telemetry log fd. */
export interface LogRecord {
  text: string;
  /** From a frame: when the runtime logged it (ms since the epoch), and whether the runtime wrote it in JSON format. */
  timeMs?: number;
  json?: boolean;
}

/** Calls `onLine` with each line `stream` carries; a line longer than MAX_LINE_BYTES comes in pieces of that size. */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let held: Buffer[] = [];
  let heldBytes = 0;
  const emit = (bytes: Buffer) => onLine(bytes.toString("utf8"));
  stream.on("data", (chunk: Buffer) => {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, start)) {
      held.push(chunk.subarray(start, newline));
      heldBytes += newline - start;
      flush(true);
      start = newline + 1;
    }
    if (start < chunk.length) {
      held.push(chunk.subarray(start));
      heldBytes += chunk.length - start;
      flush(false);
    }
  });
  stream.on("end", () => heldBytes > 0 && flush(true));

  /** Emits the held bytes when a line ended, and full-size pieces of a line that has not ended yet. */
  function flush(ended: boolean): void {
    if (heldBytes < MAX_LINE_BYTES && !ended) return;
    let bytes = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    while (bytes.length > MAX_LINE_BYTES) {
      const cut = utf8Boundary(bytes, MAX_LINE_BYTES);
      emit(bytes.subarray(0, cut));
      bytes = bytes.subarray(cut);
    }
    if (ended) emit(bytes);
    else if (bytes.length > 0) {
      held = [bytes];
      heldBytes = bytes.length;
    }
  }
}

/** The largest cut at or before `at` that does not split a UTF-8 character. */
function utf8Boundary(bytes: Buffer, at: number): number {
  let cut = at;
  while (cut > at - 4 && cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return cut > 0 ? cut : at;
}

/**
 * The frames a runtime writes to `_LAMBDA_TELEMETRY_LOG_FD`, each one log record however many lines it has:
 * big-endian 4 bytes type (0xa55a0003 text; 0xa55a0002 OR a level mask for JSON), 4 bytes length, 8 bytes timestamp
 * in microseconds, then the UTF-8 message. A message over MAX_LINE_BYTES is kept to that size and the rest skipped;
 * a type that is not a frame's ends the reading (the stream is no longer in step), with one warning.
 */
export function eachFrame(stream: Readable, onRecord: (record: LogRecord) => void, onGarbage: (why: string) => void): void {
  let buffer: Buffer = Buffer.alloc(0);
  let skip = 0;
  let broken = false;
  stream.on("data", (chunk: Buffer) => {
    if (broken) return;
    if (skip > 0) {
      const skipped = Math.min(skip, chunk.length);
      skip -= skipped;
      chunk = chunk.subarray(skipped);
    }
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.length >= 16) {
      const type = buffer.readUInt32BE(0);
      if (type >>> 16 !== 0xa55a) {
        broken = true;
        return onGarbage(`the telemetry log fd carried bytes that are not a frame (type 0x${type.toString(16).padStart(8, "0")}); it is ignored from here on`);
      }
      const length = buffer.readUInt32BE(4);
      const kept = Math.min(length, MAX_LINE_BYTES);
      if (buffer.length < 16 + kept) return;
      const timeMs = Number(buffer.readBigUInt64BE(8) / 1000n);
      onRecord({ text: buffer.subarray(16, 16 + kept).toString("utf8"), timeMs, json: (type & 0xffff) !== 0x0003 });
      const rest = buffer.subarray(16 + kept);
      skip = length - kept;
      const skipped = Math.min(skip, rest.length);
      skip -= skipped;
      buffer = rest.subarray(skipped);
    }
  });
}

/**
 * The request id a log line names, as the runtime writes it in text format (`2026-12-01T12:00:00.000Z\t<id>\tINFO\t…`)
 * or in JSON format (`{"timestamp":…,"requestId":"<id>",…}`); undefined when it names none.
 */
export function requestIdOf(text: string, parsed?: unknown): string | undefined {
  const tab = /^\d{4}-\d\d-\d\dT[\d:.]+Z\t([^\t]+)\t/.exec(text);
  if (tab) return tab[1];
  const id = (parsed as { requestId?: unknown } | undefined)?.requestId;
  return typeof id === "string" ? id : undefined;
}

/** The object a JSON-format log line holds; undefined for any other line. */
export function jsonRecord(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---- the platform's own lines, as Lambda writes them to the function's log stream --------------------------

export function initReportLine(durationMs: number, status: "timeout" | "error", errorType?: string): string {
  return `INIT_REPORT Init Duration: ${durationMs.toFixed(2)} ms\tPhase: init\tStatus: ${status}${errorType ? `\tError Type: ${errorType}` : ""}`;
}

export function startLine(requestId: string): string {
  return `START RequestId: ${requestId} Version: $LATEST`;
}

/** END, then REPORT: the invocation is over. */
export function endLines(report: { requestId: string; durationMs: number; memoryMB: number; maxMemoryUsedMB?: number; initDurationMs?: number }): string[] {
  const { requestId, durationMs, memoryMB, maxMemoryUsedMB, initDurationMs } = report;
  return [
    `END RequestId: ${requestId}`,
    `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${Math.ceil(durationMs)} ms\t` +
      `Memory Size: ${memoryMB} MB\tMax Memory Used: ${maxMemoryUsedMB ?? "?"} MB` +
      (initDurationMs === undefined ? "" : `\tInit Duration: ${initDurationMs.toFixed(2)} ms`),
  ];
}
