#!/usr/bin/env node
// The `micro-lambda` executable (package.json "bin"): runs the command, then exits with its code once
// stdout has been written out.
import { main } from "./main.ts";

const code = await main(process.argv.slice(2));
process.stdout.write("", () => process.exit(code));
