#!/usr/bin/env bash
# Checks, and with --install as root installs, what building and testing hardsnap from a clone
# needs from Debian: the tools of scripts/prerequisites in the groups named.
#   scripts/prerequisites.sh [--install] [GROUP...]     GROUP: build, test, pack (default: all)
# Exits 0 when every tool is there (after apt-get installed what was missing, with --install as
# root). Otherwise prints one line on stderr, naming what is missing and the command that
# installs it, and exits 1.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
install=0
if [ "${1:-}" = --install ]; then install=1; shift; fi
groups=" ${*:-build test pack} "

# an executable file of that name on PATH, /usr/sbin or /sbin (not bash's `command -v`, which
# settles for a file that is not executable when it finds no other)
have() {
  local d
  local IFS=:
  for d in $PATH:/usr/sbin:/sbin; do
    [ -f "${d:-.}/$1" ] && [ -x "${d:-.}/$1" ] && return 0
  done
  return 1
}

tools=() pkgs=()
scan() {
  tools=() pkgs=()
  local group tool pkg rest
  while read -r group tool pkg rest; do
    case "$group" in '' | '#'*) continue ;; esac
    [[ $groups == *" $group "* ]] || continue
    if [[ $tool == /* ]]; then
      [ -e "$tool" ] && continue
    else
      have "$tool" && continue
    fi
    [[ " ${tools[*]} " == *" $tool "* ]] || tools+=("$tool")
    [[ " ${pkgs[*]} " == *" $pkg "* ]] || pkgs+=("$pkg")
  done <"$here/prerequisites"
}

missing() {
  local list
  list=$(printf '%s, ' "${tools[@]}")
  echo "hardsnap: missing ${list%, }: as root, apt-get install ${pkgs[*]}" >&2
  exit 1
}

scan
[ ${#tools[@]} -eq 0 ] && exit 0
[ "$install" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || missing

echo "prerequisites: apt-get install ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >"$log" 2>&1; then
  tail -n 5 "$log" >&2
fi
rm -f "$log"
scan
[ ${#tools[@]} -eq 0 ] || missing
