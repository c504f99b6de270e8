// Bench section: the latency a Runtime API proxy adds to each invocation, against the direct path in the same run.
//
// A built hello bootstrap runs its warm loop against a small fake Runtime API, either directly or through one
// proxy in its own process (as an extension runs it), bundled and run by the Node the bootstraps ship. The fake
// times each invocation from the event written to the answer read: through a proxy that includes both extra
// hops (the event in, the answer out), the part of an invocation Lambda bills.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { build as buildBootstrap } from "../bootstraps.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const WARMUP = 500;
const MEASURED = 5000;
/** Rounds alternate the order of the paths, so that a drift of the machine's speed does not favour one. */
const ROUNDS = 2;

type Path = "direct (baseline)" | "one proxy, no hooks" | "one proxy, onEvent + onResponse";
const paths: Path[] = ["direct (baseline)", "one proxy, no hooks", "one proxy, onEvent + onResponse"];

export async function run(): Promise<{ title: string; lines: string[] }> {
  // Its own build name: a test run rebuilding dist/hello meanwhile cannot swap the binary under the measurement.
  const bootstrap = (await buildBootstrap("examples/hello/main.ts", "x86_64", ["--name", "bench-proxy-hello"])).executable;
  const version = /^readonly DEFAULT_NODE_VERSION=(\S+)$/m.exec(readFileSync(join(root, "build.sh"), "utf8"))![1]!;
  const node = join(root, "node_modules/.cache/micro-lambda/node", version, "x86_64/node");
  const work = mkdtempSync(join(tmpdir(), "proxy-bench-"));
  try {
    const proxyProgram = await bundleProxy(work);
    const latency = new Map<Path, number[]>(paths.map((path) => [path, []]));
    const perSecond = new Map<Path, number[]>(paths.map((path) => [path, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of round % 2 === 0 ? paths : [...paths].reverse()) {
        const measured = await measure(path, bootstrap, node, proxyProgram);
        latency.get(path)!.push(...measured.latency);
        perSecond.get(path)!.push(measured.perSecond);
      }
    }
    const stats = (path: Path) => {
      const sorted = Float64Array.from(latency.get(path)!).sort();
      const rates = perSecond.get(path)!;
      return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), perSecond: rates.reduce((a, b) => a + b) / rates.length };
    };
    const base = stats("direct (baseline)");
    const ms = (value: number) => `${value.toFixed(3)} ms`;
    const lines = [
      `| ${ROUNDS} × ${MEASURED} invocations per path, hello bootstrap | p50 | p99 | p50 added | p99 added | invocations/s |`,
      "|---|---|---|---|---|---|",
    ];
    for (const path of paths) {
      const s = stats(path);
      const added = (value: number, baseline: number) => (path === paths[0] ? "" : `+${ms(value - baseline)}`);
      lines.push(
        `| ${path} | ${ms(s.p50)} (${ratio(s.p50, base.p50)}) | ${ms(s.p99)} (${ratio(s.p99, base.p99)}) | ${added(s.p50, base.p50)} | ${added(s.p99, base.p99)} | ${s.perSecond.toFixed(0)} (${ratio(s.perSecond, base.perSecond)}) |`,
      );
    }
    lines.push(
      "",
      "Latency is the fake Runtime API's clock, from the event written to the answer read (what Lambda bills); invocations/s is the",
      `whole warm loop, \`/next\` included. The proxy is src/proxy/ bundled and run alone by Node ${version}, in its own process as an`,
      `extension is; ${WARMUP} warm-up invocations per run are left out. Target: p50 added ≤ 0.2 ms. Without hooks every body is piped;`,
      "with hooks (no-op here) the event and the answer are read whole. Each message of an invocation takes two more loopback hops",
      `through node:http in a third process on ${cpus().length} cores, which is why the loop's rate drops more than the billed latency grows.`,
    );
    return { title: "Runtime API proxy: the latency one proxy adds", lines };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One warm loop of WARMUP + MEASURED invocations on one path, with a fresh function (and proxy). */
async function measure(path: Path, bootstrap: string, node: string, proxyProgram: string): Promise<{ latency: number[]; perSecond: number }> {
  const fake = await fakeRuntimeApi(WARMUP + MEASURED);
  const children: ChildProcess[] = [];
  try {
    let address = fake.address;
    if (path !== "direct (baseline)") {
      const hooks = path === "one proxy, onEvent + onResponse" ? "1" : "";
      const proxy = spawn(node, [proxyProgram], { env: { ...process.env, MICRO_LAMBDA_PROXY_UPSTREAM: fake.address, MICRO_LAMBDA_PROXY_PORT: "0", BENCH_PROXY_HOOKS: hooks }, stdio: ["ignore", "pipe", "inherit"] });
      children.push(proxy);
      address = await firstLine(proxy);
    }
    children.push(spawn(bootstrap, [], { env: { ...process.env, AWS_LAMBDA_RUNTIME_API: fake.address, MICRO_LAMBDA_RUNTIME_API: address }, stdio: ["ignore", "ignore", "inherit"] }));
    const { first, last } = await fake.done;
    if (fake.errors() > 0) throw new Error(`${path}: ${fake.errors()} invocations failed`);
    return { latency: Array.from(fake.latency.subarray(WARMUP)), perSecond: ((WARMUP + MEASURED) / (last - first)) * 1000 };
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await fake.close();
  }
}

/**
 * A Runtime API that serves `invocations` events as fast as they are asked for and times each one, from its event
 * written to its answer read; the /next after the last is never answered. Request ids carry the event's index.
 */
async function fakeRuntimeApi(invocations: number) {
  const latency = new Float64Array(invocations);
  const sentAt = new Float64Array(invocations);
  const event = Buffer.from('{"name":"bench"}');
  const deadline = String(Date.now() + 3_600_000);
  const accepted = Buffer.from('{"status":"OK"}');
  const held: ServerResponse[] = [];
  let served = 0;
  let errors = 0;
  let first = 0;
  let finished!: (times: { first: number; last: number }) => void;
  const done = new Promise<{ first: number; last: number }>((resolve) => (finished = resolve));
  const server = createServer((req, res) => {
    if (req.method === "GET") {
      if (served === 0) first = performance.now();
      if (served === invocations) return void (held.push(res), finished({ first, last: performance.now() }));
      const index = served++;
      res.writeHead(200, [
        "Content-Type", "application/json",
        "Lambda-Runtime-Aws-Request-Id", `bench-${index}`,
        "Lambda-Runtime-Deadline-Ms", deadline,
        "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench",
        "Content-Length", String(event.length),
      ]);
      res.end(event);
      sentAt[index] = performance.now();
      return;
    }
    req.resume();
    req.on("end", () => {
      const index = Number(/\/bench-(\d+)\//.exec(req.url ?? "")?.[1]);
      latency[index] = performance.now() - sentAt[index]!;
      if (req.url?.endsWith("/error")) errors++;
      res.writeHead(202, ["Content-Type", "application/json", "Content-Length", String(accepted.length)]).end(accepted);
    });
  });
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    latency,
    done,
    errors: () => errors,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A standalone proxy (no extension registration), bundled as build.sh bundles, for the target Node. */
async function bundleProxy(work: string): Promise<string> {
  const outfile = join(work, "proxy.cjs");
  await build({
    stdin: {
      contents: `import { runtimeApiProxy } from "./src/proxy/index.ts";
const hooks = process.env.BENCH_PROXY_HOOKS ? { onEvent: () => {}, onResponse: () => {} } : {};
runtimeApiProxy(hooks).then((proxy) => process.stdout.write(proxy.address + "\\n"));`,
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile,
    logLevel: "warning",
  });
  return outfile;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      if (text.includes("\n")) resolve(text.slice(0, text.indexOf("\n")));
    });
    child.once("exit", (code) => reject(new Error(`the proxy exited (${code}) before it listened`)));
  });
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
function quantile(values: Float64Array, q: number): number {
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!;
}

/** "1.67×": how many times the baseline. */
function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`;
}
