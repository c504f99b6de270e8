// node:http2 for a snapshot build: a stand-in until the snapshot is restored, the real module after (see builtins.cjs).
module.exports = require("./builtins.cjs").module("http2");
