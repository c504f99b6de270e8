// Compile-time checks, run by `tsc` in test/types.test.ts: micro-lambda's types fit what users already write.
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context as AwsContext, Handler as AwsHandler } from "aws-lambda";
import { lambda, type Context, type Handler } from "micro-lambda";

// Our Context is assignable to @types/aws-lambda's, so code typed against it accepts ours.
declare const ours: Context;
export const asAws: AwsContext = ours;

// A handler typed with @types/aws-lambda's event and result types is a micro-lambda handler.
const api = async (event: APIGatewayProxyEventV2, context: AwsContext): Promise<APIGatewayProxyResultV2> => ({
  statusCode: 200,
  body: `${event.rawPath} ${context.awsRequestId}`,
});
export const typed: Handler<APIGatewayProxyEventV2, APIGatewayProxyResultV2> = api;
export const start = () => lambda(api);

// An async @types/aws-lambda Handler works too.
declare const awsHandler: AwsHandler<{ a: number }, string>;
export const startAws = () => lambda(async (event: { a: number }, context) => awsHandler(event, context, () => {}));
