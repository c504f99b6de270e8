// The streaming floor: a runtime reduced to its transport. GET /next, then POST /response in streaming mode with
// event.bytes in 64 KiB chunks (waiting for 'drain'), with node:http and a keep-alive agent; nothing else.
import http from "node:http";

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const agent = new http.Agent({ keepAlive: true });
const chunk = Buffer.alloc(64 * 1024, "x");

function next() {
  http.get({ host, port, agent, path: "/2018-06-01/runtime/invocation/next" }, (res) => {
    const parts = [];
    res.on("data", (part) => parts.push(part));
    res.on("end", () => respond(res.headers["lambda-runtime-aws-request-id"], JSON.parse(Buffer.concat(parts).toString()).bytes));
  });
}

function respond(id, bytes) {
  const req = http.request(
    { host, port, agent, method: "POST", path: `/2018-06-01/runtime/invocation/${id}/response`, headers: { "lambda-runtime-function-response-mode": "streaming", "transfer-encoding": "chunked" } },
    (res) => res.resume().on("end", next),
  );
  let left = bytes;
  const more = () => {
    while (left > 0) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= part.length;
      if (!req.write(part)) return void req.once("drain", more);
    }
    req.end();
  };
  more();
}

next();
