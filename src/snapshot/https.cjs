// node:https for a snapshot build, loaded on first use: see lazy.cjs.
module.exports = require("./lazy.cjs")("node:https");
