// The floor of the warm loop: the least any Node program can do per invocation, GET /next then POST the answer,
// as raw bytes on one keep-alive socket. No HTTP library, no JSON, no context: run by the target Node itself.
import { connect } from "node:net";

const address = process.env.AWS_LAMBDA_RUNTIME_API ?? "";
const colon = address.lastIndexOf(":");
const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
socket.setNoDelay(true);

const next = Buffer.from(`GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: ${address}\r\n\r\n`, "latin1");
const answer = '{"message":"Hello, bench!"}';
const idHeader = "\r\nlambda-runtime-aws-request-id:";
const lengthHeader = "\r\ncontent-length:";

let pending = Buffer.alloc(0);
let waitingFor = "event";

socket.on("data", (chunk) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  for (;;) {
    const headEnd = pending.indexOf("\r\n\r\n");
    if (headEnd < 0) return;
    const head = pending.toString("latin1", 0, headEnd).toLowerCase();
    const end = headEnd + 4 + headerNumber(head, lengthHeader);
    if (pending.length < end) return;
    pending = pending.subarray(end);
    if (waitingFor === "event") {
      const id = headerText(head, idHeader);
      socket.write(
        `POST /2018-06-01/runtime/invocation/${id}/response HTTP/1.1\r\nHost: ${address}\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`,
        "latin1",
      );
      waitingFor = "accepted";
    } else {
      socket.write(next);
      waitingFor = "event";
    }
  }
});
socket.write(next);

function headerText(head, name) {
  const start = head.indexOf(name);
  if (start < 0) return "";
  const end = head.indexOf("\r\n", start + name.length);
  return head.slice(start + name.length, end < 0 ? undefined : end).trim();
}

function headerNumber(head, name) {
  return Number(headerText(head, name)) || 0;
}
