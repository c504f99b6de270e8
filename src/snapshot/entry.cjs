// The bundle's entry point for `build.sh --snapshot`: the function's main file (aliased by build.sh as
// micro-lambda-snapshot-main) initialised under builtins.cjs's watch, so that an init that needs node:http
// and the others is finished after the restore. Requiring the main file, rather than bundling it as the
// entry, makes esbuild wrap every module in a lazy initialiser that can be run again.
"use strict";
require("./builtins.cjs").start(() => require("micro-lambda-snapshot-main"));
