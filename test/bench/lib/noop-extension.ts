// The bench's do-nothing extension: registered for INVOKE and SHUTDOWN, it asks for the next event as soon as it has one.
import { extension } from "micro-lambda/extension";

extension({ onInvoke() {} });
