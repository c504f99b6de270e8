// The runtime's behaviour with the main file run by tsx, as during development.
import { runtimeSuite } from "./runtime-suite.ts";
import { tsxCommand } from "./helpers.ts";

runtimeSuite("tsx", async (entry) => tsxCommand(entry));
