#!/bin/bash
# The 100k incremental with cold caches: `echo 3 > /proc/sys/vm/drop_caches` (root) before each
# timed run, builds interleaved round by round (A B, A B, ...). Each build gets a spool holding
# day 1's generation of a copy of the kept mktree.py tree; one mutate.py day changes the copy;
# round r makes generation r+1 (round 1 the changed day, later rounds the same tree again: each
# finds its previous generation, and the source, dropped from the cache). A BUILD is a directory
# holding bin/hardsnap: a worktree, or a wrapper setting the environment, e.g.
#   printf '#!/bin/sh\nUV_THREADPOOL_SIZE=2 exec /work/main/bin/hardsnap "$@"\n' > /var/tmp/two/bin/hardsnap
#
#   bash scripts/bench/cold.sh ROUNDS BUILD... [--tree DIR] (default tree: /var/tmp/hardsnap-bench/trees/src-100000)
set -euo pipefail
R=$1; shift
TREE=/var/tmp/hardsnap-bench/trees/src-100000
BUILDS=()
while [ $# -gt 0 ]; do
  if [ "$1" = --tree ]; then TREE=$2; shift 2; else BUILDS+=("$1"); shift; fi
done
[ -d "$TREE" ] || { echo "no tree at $TREE (npm run bench -- --only 100k makes it)" >&2; exit 1; }
here=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /var/tmp/hardsnap-cold.XXXXXX)
cp -a "$TREE" "$W/src"
sleep 2
for k in "${!BUILDS[@]}"; do
  "${BUILDS[$k]}/bin/hardsnap" init --spool "$W/sp-$k" > /dev/null
  HARDSNAP_NOW=2026-01-01T03:00:00Z "${BUILDS[$k]}/bin/hardsnap" backup --spool "$W/sp-$k" --host b --part "m=$W/src" > /dev/null
done
python3 "$here/../shared/bench/mutate.py" "$W/src" --seed 2
sleep 2
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$R"); do
  line="round $r:"
  for k in "${!BUILDS[@]}"; do
    sync
    echo 3 > /proc/sys/vm/drop_caches
    s=$(date +%s%N)
    HARDSNAP_NOW=$(printf '2026-01-%02dT03:00:00Z' $((r + 1))) "${BUILDS[$k]}/bin/hardsnap" backup --spool "$W/sp-$k" --host b --part "m=$W/src" > /dev/null
    e=$(date +%s%N)
    line="$line ${BUILDS[$k]} $(( (e - s) / 1000000 )) ms,"
  done
  echo "$line   (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "work left in $W (delete it when no timing runs: ext4 delays the reuse of freed inodes)"
