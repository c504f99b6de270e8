// A second floor: the same two requests per invocation through node:http's keep-alive client, with nothing else
// (no JSON, no context). The gap between this and floor-raw.mjs is what node:http itself costs.
import { Agent, request } from "node:http";

const address = process.env.AWS_LAMBDA_RUNTIME_API ?? "";
const colon = address.lastIndexOf(":");
const host = address.slice(0, colon);
const port = Number(address.slice(colon + 1));
const agent = new Agent({ keepAlive: true });
const answer = '{"message":"Hello, bench!"}';

/** One request; resolves with the request id header of the answer (empty for a 202). */
function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path, agent }, (res) => {
      const id = String(res.headers["lambda-runtime-aws-request-id"] ?? "");
      res.on("data", () => {});
      res.on("end", () => resolve({ id }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

try {
  for (;;) {
    const { id } = await call("GET", "/2018-06-01/runtime/invocation/next");
    await call("POST", `/2018-06-01/runtime/invocation/${id}/response`, answer);
  }
} catch {
  process.exit(1); // the Runtime API went away: the run is over
}
