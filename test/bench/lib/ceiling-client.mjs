// Measures the fake Runtime API's own ceiling: GET /next + POST /response pairs pipelined on one socket (a window
// of them in flight), counting answer bytes, so the client does almost nothing per pair. Run by the target Node.
// Usage: node ceiling-client.mjs PAIRS PAIR_BYTES WINDOW (AWS_LAMBDA_RUNTIME_API names the server).
import { connect } from "node:net";

const [pairs, pairBytes, window] = process.argv.slice(2).map(Number);
const address = process.env.AWS_LAMBDA_RUNTIME_API ?? "";
const colon = address.lastIndexOf(":");
const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
socket.setNoDelay(true);

const body = '{"message":"Hello, bench!"}';
const pair = Buffer.from(
  `GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: ${address}\r\n\r\n` +
    `POST /2018-06-01/runtime/invocation/ceiling/response HTTP/1.1\r\nHost: ${address}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  "latin1",
);
// The /next after the last pair, which the fake holds: its arrival ends the fake's clock.
const last = Buffer.from(`GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: ${address}\r\n\r\n`, "latin1");

let sent = 0;
let received = 0;
function fill() {
  const done = Math.floor(received / pairBytes);
  const room = Math.min(window - (sent - done), pairs - sent);
  if (room <= 0) return;
  socket.write(room === 1 ? pair : Buffer.concat(Array.from({ length: room }, () => pair)));
  sent += room;
  if (sent === pairs) socket.write(last);
}
socket.on("data", (chunk) => {
  received += chunk.length;
  if (received >= pairs * pairBytes) return void socket.destroy();
  fill();
});
socket.on("connect", fill);
