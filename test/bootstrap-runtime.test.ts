// The runtime's behaviour suite again, against built bootstraps: x86_64 natively, arm64 under qemu-user.
import { arches, bootstrap, command } from "./bootstraps.ts";
import { runtimeSuite } from "./runtime-suite.ts";

for (const arch of arches) {
  runtimeSuite(`${arch} bootstrap`, async (entry) => command(await bootstrap(entry, arch), arch));
}
