// Bundles a function as build.sh does, but with lib/raw-http.ts (the node:net transport prototype) in place of
// src/http.ts: what the warm-loop bench runs to measure what micro-lambda's transport costs.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const prototype = fileURLToPath(new URL("./raw-http.ts", import.meta.url));

/**
 * Bundles `entry` with build.sh's esbuild options (CommonJS, whitespace and syntax minified, names kept) but with lib/raw-http.ts in place of
 * src/http.ts, into `outfile`: a function whose transport is the prototype, to run as `node outfile`.
 */
export async function bundleWithRawHttp(entry: string, outfile: string): Promise<void> {
  const src = join(root, "src") + "/";
  await build({
    entryPoints: [join(root, entry)],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: "none",
    logLevel: "warning",
    tsconfig: join(root, "tsconfig.json"),
    plugins: [
      {
        name: "raw-http",
        setup(build) {
          build.onResolve({ filter: /^\.\/http\.ts$/ }, (args) => (args.importer.startsWith(src) ? { path: prototype } : undefined));
        },
      },
    ],
  });
}
