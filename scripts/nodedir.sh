#!/usr/bin/env bash
# Prints where node-gyp finds the headers of the running Node.js without downloading them from
# nodejs.org (so that a machine builds the native module offline): $npm_config_nodedir when set,
# else the prefix of `node` when its include/node holds this version's headers (an official
# tarball: <prefix>/include/node; NodeSource's and Debian's packages: /usr/include/node);
# nothing when neither (node-gyp then downloads them). Used as
#   export npm_config_nodedir=$(scripts/nodedir.sh)   (unset it when empty)
if [ -n "${npm_config_nodedir:-}" ] && [ "$npm_config_nodedir" != undefined ]; then
  echo "$npm_config_nodedir"
  exit 0
fi
node -e '
const fs = require("fs"), path = require("path");
const prefix = path.resolve(process.execPath, "..", "..");
try {
  const h = fs.readFileSync(path.join(prefix, "include", "node", "node_version.h"), "utf8");
  const v = ["MAJOR", "MINOR", "PATCH"].map((k) => new RegExp(`#define NODE_${k}_VERSION (\\d+)`).exec(h)[1]).join(".");
  if (v === process.versions.node && fs.existsSync(path.join(prefix, "include", "node", "node_api.h"))) console.log(prefix);
} catch {}
'
