// A function for the extension to run beside in the test: Lambda runs a layer's extensions with a function.
import { lambda } from "micro-lambda";

lambda(async () => ({ ok: true }));
