#!/usr/bin/env bash
# Every test, on a fresh Debian machine: `npm run test:all` (README, "Quick start"); .ci/run runs
# it with --clean.
#   scripts/test-all.sh [--clean]
# 1. What the build and the tests need from Debian (scripts/prerequisites, the one list): as
#    root, apt-get installs what is missing; otherwise one line names it, and the run stops.
# 2. With --clean, or without node_modules: a clean install (rm -rf node_modules dist build;
#    npm ci), which builds the native module and dist/.
# 3. The whole suite on this Node.js (npm test), then SUBSET on each of NODE_VERSIONS, Node.js
#    builds from the npm registry (node-linux-<arch>, no install script), run first on PATH so
#    that bin/hardsnap, which the tests spawn, runs on them too.
# 4. One line per run, and last "N passed, N failed" over all of them, from vitest's JSON
#    reports. Exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

NODE_VERSIONS=(22 24)
# what depends on the Node.js version: the native module (Node-API, zlib's symbols from
# Node.js), bin/hardsnap's loading and the thread pool it sizes, and the engine end to end
# through the acceptance smoke test (four generations and a restore, checked by rsync and
# links.py); test/pack.test.ts loads the prebuilt module in each of NODE_VERSIONS. A smoke
# subset, for the 15 minutes CI has: backup.test.ts alone took more than half of a version's run.
SUBSET=(test/native.test.ts test/native-async.test.ts test/manifest.test.ts test/bin.test.ts
  test/thread-pool.test.ts test/smoke.test.ts)

clean=0
[ "${1:-}" = --clean ] && clean=1
start=$(date +%s)
reports=()
work=$(mktemp -d /tmp/hardsnap-test-all.XXXXXX)
trap 'rm -rf "$work"' EXIT

summary() {
  node - "$@" <<'JS'
const fs = require('fs');
let passed = 0, failed = 0, skipped = 0;
for (const arg of process.argv.slice(2)) {
  const label = arg.slice(0, arg.lastIndexOf('=')), file = arg.slice(arg.lastIndexOf('=') + 1);
  let r = null;
  try { r = JSON.parse(fs.readFileSync(file, 'utf8')); } catch {}
  // no report: vitest did not get as far as running the tests
  const f = r ? (r.numFailedTests || 0) + (r.numRuntimeErrorTestSuites || 0) +
    // a file that failed with no failed test in it (an error in beforeAll: its tests are skipped)
    (r.testResults || []).filter((t) => t.status === 'failed' && !(t.assertionResults || []).some((a) => a.status === 'failed')).length : 1;
  const p = r ? r.numPassedTests || 0 : 0;
  const s = r ? (r.numPendingTests || 0) + (r.numTodoTests || 0) : 0;
  console.log(`${label}: ${p} passed, ${f} failed` + (s ? `, ${s} skipped` : ''));
  passed += p; failed += f; skipped += s;
}
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''));
JS
}

stop() {
  echo "test-all: $1"
  echo "0 passed, 1 failed"
  exit 1
}

scripts/prerequisites.sh --install || stop "the prerequisites above are missing"

# node-gyp builds with the running Node.js's headers when they are beside it (offline)
nodedir=$(scripts/nodedir.sh)
if [ -n "$nodedir" ]; then export npm_config_nodedir=$nodedir; fi
if [ "$clean" = 1 ] || [ ! -d node_modules ]; then
  rm -rf node_modules dist build
  npm ci --no-audit --no-fund || stop "npm ci failed"
fi

rc=0
main="$work/node-$(node -p 'process.versions.node').json"
npm test -- --reporter=default --reporter=json --outputFile.json="$main" || rc=1
reports+=("node $(node --version)=$main")

arch=$(node -p process.arch)
for v in "${NODE_VERSIONS[@]}"; do
  # npm exec keeps the package in its cache (~/.npm/_npx): downloaded once
  bin=$(npm exec --yes --package="node-linux-$arch@$v" -c 'command -v node' 2>"$work/npm-exec.log" | tail -n 1)
  if [ -z "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
    cat "$work/npm-exec.log"
    reports+=("node $v (node-linux-$arch@$v could not be fetched)=$work/none")
    rc=1
    continue
  fi
  dir=$(dirname "$(readlink -f "$bin")")
  ver=$("$dir/node" --version)
  echo "test-all: ${SUBSET[*]} on Node.js $ver"
  out="$work/node-$ver.json"
  PATH="$dir:$PATH" npx vitest run "${SUBSET[@]}" --reporter=default --reporter=json --outputFile.json="$out" || rc=1
  reports+=("node $ver (${#SUBSET[@]} files)=$out")
done

echo "test-all: $(($(date +%s) - start)) s"
line=$(summary "${reports[@]}")
echo "$line"
case $(tail -n 1 <<<"$line") in *" 0 failed"*) ;; *) rc=1 ;; esac
exit $rc
