#!/usr/bin/env bash
# npm run setup: what a clone needs to build hardsnap, then the build. As root, apt-get installs
# the `build` group of scripts/prerequisites when missing (build-essential, python3); otherwise
# one line names what is missing, and it stops. Then npm install: the dependencies, the native
# module from source (node-gyp, with the running Node.js's headers when they are beside it:
# scripts/nodedir.sh) and dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prerequisites.sh --install build
nodedir=$(scripts/nodedir.sh)
if [ -n "$nodedir" ]; then export npm_config_nodedir=$nodedir; fi
exec npm install --no-audit --no-fund
