// Stands in for a Node built-in module that cannot be loaded while a V8 startup snapshot is being built.
//
// node:http, node:https, node:http2 and node:tls create native handles when they load, and a snapshot
// cannot hold them: the build aborts with "CheckGlobalAndEternalHandles failed". Libraries such as the
// AWS SDK v3 require() them at load time but use them only when they send a request. `build.sh --snapshot`
// points esbuild's require("node:https") (and the others) at a proxy from here, and the real module loads
// on first use, after the snapshot has been restored.
//
// Reading a property while the snapshot is being built (the SDK runs `const { constants } = http2` at
// load time) gives another such proxy, so the read is also resolved on first use. *Using* one at build
// time (a call, `new`, listing keys) cannot work: that throws an error naming the module, so the build
// stops with a stack trace pointing at the line, instead of V8's abort. The usual cause is a client or
// connection created at the top of the main file: create it on first use, after the restore.
"use strict";

module.exports = function lazy(id) {
  return deferred(id, () => process.getBuiltinModule(id));
};

const v8 = process.getBuiltinModule("node:v8");
const building = () => v8.startupSnapshot.isBuildingSnapshot();

/** A stand-in for the value `resolve()` returns, resolved on first use. */
function deferred(name, resolve) {
  let value;
  let resolved = false;
  const real = () => {
    if (!resolved) {
      if (building()) {
        throw new Error(`${name} was used while the startup snapshot was being built; it can only be used after restore (create clients and connections on first use, not at the top of the main file)`);
      }
      value = resolve();
      resolved = true;
    }
    return value;
  };
  // A bound function as the target: it can be called and constructed, and has no non-configurable own
  // property (a plain function's `prototype` is) that the proxy invariants would hold us to.
  const target = function () {}.bind();
  const proxy = new Proxy(target, {
    get(_, key, receiver) {
      // esbuild's interop asks every required module whether it is an ES module: that must not load it.
      if (key === "__esModule") return undefined;
      if (!resolved && building()) return deferred(`${name}${typeof key === "symbol" ? `[${key.description}]` : `.${key}`}`, () => Reflect.get(real(), key));
      return Reflect.get(real(), key, receiver === proxy ? real() : receiver);
    },
    set: (_, key, v, receiver) => Reflect.set(real(), key, v, receiver === proxy ? real() : receiver),
    has: (_, key) => Reflect.has(real(), key),
    ownKeys: () => Reflect.ownKeys(real()),
    getOwnPropertyDescriptor: (_, key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(real(), key);
      // A proxy may report a property its target lacks only as configurable.
      if (descriptor) descriptor.configurable = true;
      return descriptor;
    },
    apply: (_, self, args) => Reflect.apply(real(), self, args),
    construct: (_, args, newTarget) => Reflect.construct(real(), args, newTarget === proxy ? real() : newTarget),
  });
  return proxy;
}
