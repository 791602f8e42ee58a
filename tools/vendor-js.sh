#!/usr/bin/env bash
# Fetch the Vega JavaScript that the book's charts need into book/_static/vendor/, from the npm
# registry, so that the built book draws its charts with no network. The versions must match the
# Vega-Lite schema of the pinned Altair (altair.VEGALITE_VERSION).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=book/_static/vendor
packages=(vega@6.2.0 vega-lite@6.4.1 vega-embed@7.1.0)
stamp="$dest/VERSIONS"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "${packages[@]}" >/dev/null)
mkdir -p "$dest"
for p in "${packages[@]}"; do
  name=${p%@*}
  tar -xzf "$tmp/$name-${p#*@}.tgz" -C "$tmp" "package/build/$name.min.js"
  mv "$tmp/package/build/$name.min.js" "$dest/$name.min.js"
done
echo "${packages[*]}" > "$stamp"
