// `_X_AMZN_TRACE_ID`, the X-Ray convention for one invocation at a time, kept in JavaScript instead of the C environment.
//
// Lambda's trace id is different on every invocation, and assigning `process.env.X` calls glibc's setenv(), which
// never frees a value it replaces (a caller of getenv() may still hold it): ~150 bytes lost per invocation,
// 62 MB over 400,000 (measured with the bootstrap's Node 24). So the runtime keeps this one variable in
// JavaScript: `process.env` becomes a view of the real environment in which `_X_AMZN_TRACE_ID` is a plain
// value. JavaScript readers (the AWS SDK, X-Ray SDKs) and child processes see it as before; only native code
// calling getenv() does not.
const NAME = "_X_AMZN_TRACE_ID";

/** Takes `_X_AMZN_TRACE_ID` out of the C environment, and returns the way to set it (undefined unsets it). */
export function traceIdVariable(): (value: string | undefined) => void {
  const env = process.env;
  let current = env[NAME];
  delete env[NAME];
  const descriptor = (): PropertyDescriptor | undefined => (current === undefined ? undefined : { value: current, writable: true, enumerable: true, configurable: true });
  process.env = new Proxy(env, {
    get: (target, key) => (key === NAME ? current : Reflect.get(target, key)),
    set: (target, key, value) => (key === NAME ? ((current = String(value)), true) : Reflect.set(target, key, value)),
    deleteProperty: (target, key) => (key === NAME ? ((current = undefined), true) : Reflect.deleteProperty(target, key)),
    has: (target, key) => (key === NAME ? current !== undefined : Reflect.has(target, key)),
    ownKeys: (target) => (current === undefined ? Reflect.ownKeys(target) : [...Reflect.ownKeys(target), NAME]),
    getOwnPropertyDescriptor: (target, key) => (key === NAME ? descriptor() : Reflect.getOwnPropertyDescriptor(target, key)),
  });
  return (value) => (current = value);
}
