// Rewrites two of esbuild's bundle helpers for a snapshot build: `node rearm.cjs BUNDLE` (run by build.sh).
//
// esbuild wraps each module of a bundle in a lazy initialiser: __commonJS for CommonJS modules, __esm for ES
// modules. For a snapshot, builtins.cjs needs two things from them: to know which module is being initialised
// (to name the package that used node:http, and to defer that module), and to run again, after the restore, an
// init that stopped because it could not finish at build time. esbuild's __esm remembers a failure forever, so
// it is replaced by one that forgets a failure marked `deferToRestore`; both report each init to a hook that
// builtins.cjs installs while the snapshot is being built (and that is absent otherwise).
"use strict";

const fs = require("node:fs");

const [file] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");

// esbuild 0.28, minified; the parameter names vary (esbuild renames them to avoid clashes).
const esm = /var __esm=\((\w+),(\w+),(\w+)\)=>function\(\)\{if\(\3\)throw \3\[0\];try\{return \1&&\(\2=\(0,\1\[__getOwnPropNames\(\1\)\[0\]\]\)\(\1=0\)\),\2\}catch\((\w+)\)\{throw \3=\[\4\],\4\}\};/;
const commonJS = /var __commonJS=\((\w+),(\w+)\)=>function\(\)\{try\{return \2\|\|\(0,\1\[__getOwnPropNames\(\1\)\[0\]\]\)\(\(\2=\{exports:\{\}\}\)\.exports,\2\),\2\.exports\}catch\((\w+)\)\{throw \2=0,\3\}\};/;

const hook = 'var __initialise=(key,run)=>{var hook=globalThis[Symbol.for("micro-lambda.snapshot.init")];return hook?hook(key,run):run()};';
const rearmedEsm =
  "var __esm=(fn,res,err)=>{var key=__getOwnPropNames(fn)[0];return function(){if(err)throw err[0];var init=fn;" +
  "try{return fn&&(res=__initialise(key,()=>(0,fn[key])(fn=0))),res}catch(e){if(e?.deferToRestore)fn=init;else err=[e];throw e}}};";
const rearmedCommonJS =
  "var __commonJS=(cb,mod)=>{var key=__getOwnPropNames(cb)[0];return function(){" +
  "try{return mod||__initialise(key,()=>(0,cb[key])((mod={exports:{}}).exports,mod)),mod.exports}catch(e){throw mod=0,e}}};";

let out = text;
let found = 0;
if (esm.test(out)) {
  out = out.replace(esm, () => hook + rearmedEsm);
  found++;
}
if (commonJS.test(out)) {
  out = out.replace(commonJS, () => (found ? "" : hook) + rearmedCommonJS);
  found++;
}
// A bundle has __esm whenever it has an ES module (the function's main file always is one, or is CommonJS).
if (found === 0) {
  console.error("the bundle defines neither __esm nor __commonJS as esbuild 0.28 does");
  process.exit(1);
}
fs.writeFileSync(file, out);
