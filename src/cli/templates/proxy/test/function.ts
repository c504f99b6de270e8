// A function for the proxy to stand in front of in the test.
import { lambda } from "micro-lambda";

lambda(async (event: { source?: string }) => ({ handled: event.source }));
