// {{name}}: a Lambda function. The code before lambda() runs once per sandbox (the cold start): create
// clients and read configuration there. The handler runs once per invocation.
import { lambda } from "micro-lambda";

interface Event {
  name?: string;
}

lambda(async (event: Event, context) => {
  return { message: `Hello, ${event.name ?? "world"}!`, requestId: context.awsRequestId };
});
