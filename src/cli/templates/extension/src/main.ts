// {{name}}: a Lambda extension, a program that runs beside the function in the same sandbox, from a layer
// (/opt/extensions/{{name}}). Lambda starts it before the function, sends it INVOKE with each invocation
// (the invocation is not over until onInvoke settles) and SHUTDOWN before it stops the sandbox.
//
// This one keeps count of the invocations it has seen and says so on SHUTDOWN: put your own work (a cache to
// warm, a buffer to flush, a file to process off the invocation's clock) in the same places.
import { extension } from "micro-lambda/extension";

interface State {
  invocations: number;
}

extension<State>({
  // After registration, before the first event: read configuration and open connections here.
  init: () => ({ invocations: 0 }),
  onInvoke(event, state) {
    state.invocations++;
    console.log(`{{name}}: invocation ${event.requestId}`);
  },
  // Must settle before event.deadlineMs (2 s in all for every extension); the extension then exits.
  onShutdown(event, state) {
    console.log(`{{name}}: ${event.shutdownReason} after ${state.invocations} invocations`);
  },
});
