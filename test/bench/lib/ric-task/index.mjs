// The hello function written for aws-lambda-ric (the official Node runtime interface client): the same work as
// examples/hello/main.ts, so the bench compares the runtimes, not the handlers.
export const handler = async (event, context) => {
  return { message: `Hello, ${event.name ?? "world"}!`, requestId: context.awsRequestId };
};
