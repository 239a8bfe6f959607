#!/bin/sh
# Make sure the project's own Node 24 (npm package "node") is installed.
# npm 11 may skip the "node" package's preinstall script when install scripts
# are not approved; run it ourselves so that a fresh `npm ci` always works.
set -e
cd "$(dirname "$0")/.."
if [ -x node_modules/node/bin/node ] && node_modules/node/bin/node -e 'process.exit(+process.versions.node.split(".")[0] >= 24 ? 0 : 1)' 2>/dev/null; then
  exit 0
fi
echo "postern: installing Node 24 from the npm package 'node'" >&2
(cd node_modules/node && node installArchSpecificPackage.js)
mkdir -p node_modules/.bin
ln -sf ../node/bin/node node_modules/.bin/node
node_modules/node/bin/node --version
