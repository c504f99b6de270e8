// The runtime's behaviour with the main file run by tsx, as during development.
import { runtimeSuite } from "./runtime-suite.ts";
import { join } from "node:path";
import { root } from "./helpers.ts";

// One process, tsx as a loader: the tsx command would start a second one, with its own use of fd 3 (an IPC channel).
runtimeSuite("tsx", async (entry) => [process.execPath, "--import", "tsx", join(root, entry)]);
