#!/usr/bin/env bash
# Builds the native modules that the package ships prebuilt, so that installing it compiles
# nothing: prebuilds/linux-<arch>/hardsnap.napi.glibc.node for x64 and arm64, where
# node-gyp-build finds them (the install script, and src/fs/native.ts at run time).
#   scripts/prebuild.sh          (npm pack and npm publish run it: package.json's prepack)
# node-gyp builds each from binding.gyp, as an install without a fitting prebuilt one would,
# in a scratch copy (the checkout's build/ stays the developer's build); the other machine's
# with Debian's cross compiler. Each is checked: its machine (file) and the newest glibc
# symbol version it needs (readelf), at most GLIBC_FLOOR (native/glibc-compat.h).
# Node-API: one build serves every Node.js version. The release procedure: docs/RELEASE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
GLIBC_FLOOR=2.28   # the oldest glibc Node.js 20 runs on
scripts/prerequisites.sh build pack

# node-gyp: npm's own (npm puts it on PATH for its scripts), or the one beside npm
gyp=(node-gyp)
if ! command -v node-gyp >/dev/null; then
  npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
  gyp=(node "$npm_dir/node_modules/node-gyp/bin/node-gyp.js")
fi

# Node.js's headers beside the running node, else node-gyp downloads them
nodedir=$(scripts/nodedir.sh)
if [ -n "$nodedir" ]; then export npm_config_nodedir=$nodedir; else unset npm_config_nodedir; fi

host=$(node -p process.arch)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r binding.gyp native "$work/"

for arch in x64 arm64; do
  case $arch in
    x64) triple=x86_64-linux-gnu machine='x86-64' ;;
    arm64) triple=aarch64-linux-gnu machine='ARM aarch64' ;;
  esac
  if [ "$arch" = "$host" ]; then cc=cc strip=strip; else cc=$triple-gcc strip=$triple-strip; fi
  rm -rf "$work/build"
  if ! (cd "$work" && CC=$cc LINK=$cc "${gyp[@]}" rebuild --arch="$arch" >"$work/log" 2>&1); then
    cat "$work/log" >&2
    echo "prebuild: node-gyp failed for linux-$arch" >&2
    exit 1
  fi
  out=prebuilds/linux-$arch/hardsnap.napi.glibc.node
  mkdir -p "$work/$(dirname "$out")"
  "$strip" --strip-unneeded -o "$work/$out" "$work/build/Release/hardsnap.node"

  what=$(file -b "$work/$out")
  case $what in
    "ELF 64-bit LSB shared object, $machine,"*) ;;
    *) echo "prebuild: $out is not an ELF 64-bit shared object for $machine: $what" >&2; exit 1 ;;
  esac
  glibc=$(readelf -W --dyn-syms "$work/$out" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  if [ "$(printf '%s\n' "$glibc" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
    echo "prebuild: $out needs glibc $glibc, newer than $GLIBC_FLOOR:" >&2
    readelf -W --dyn-syms "$work/$out" | grep -E "GLIBC_$glibc( |$)" >&2
    echo "prebuild: call it the old way in native/glibc-compat.h" >&2
    exit 1
  fi
  echo "prebuild: $out ($machine, glibc >= $glibc, $(stat -c %s "$work/$out") bytes)"
done
# all or nothing: a package must not ship one machine's module without the other's
rm -rf prebuilds
cp -r "$work/prebuilds" prebuilds
