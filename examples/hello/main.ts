// The smallest micro-lambda function: greet whoever the event names.
import { lambda } from "micro-lambda";

lambda(async (event: { name?: string }, context) => {
  return { message: `Hello, ${event.name ?? "world"}!`, requestId: context.awsRequestId };
});
