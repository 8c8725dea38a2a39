#!/bin/sh
# .ci/release.sh (make release): the released binaries
#   dist/ferry-VERSION-linux-amd64, dist/ferry-VERSION-linux-arm64
# both static with musl from Debian 12's sources (.ci/build-static.sh, once
# per ARCH, each with its own cache), stripped, and dist/SHA256SUMS in
# sha256sum's format (verify with: cd dist && sha256sum -c SHA256SUMS).
#
# A binary whose libraries fell back to a source older than Debian's
# current security release (its build-info says "built from older
# sources") is refused unless FERRY_STATIC_ALLOW_OLDER=1.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(sed -n 's/^#define FERRY_VERSION "\(.*\)"$/\1/p' src/cmd_version.c)
[ -n "$version" ] || { echo "release: no FERRY_VERSION in src/cmd_version.c" >&2; exit 1; }
host=$(dpkg --print-architecture)

# the output directory .ci/build-static.sh uses for an ARCH
out_of() { if [ "$1" = "$host" ]; then echo build/static; else echo "build/static-$1"; fi; }

refused=
for arch in amd64 arm64; do
	ARCH=$arch "$root/.ci/build-static.sh"
	out=$(out_of "$arch")
	older=$(sed -n 's/^[[:space:]]*"\(built from older sources: [^"\\]*\).*/\1/p' "$out/build-info.h")
	if [ -n "$older" ]; then
		if [ "${FERRY_STATIC_ALLOW_OLDER:-}" = 1 ]; then
			echo "release: WARNING: linux-$arch $older (allowed by FERRY_STATIC_ALLOW_OLDER=1)" >&2
		else
			echo "release: refusing linux-$arch: $older; set FERRY_STATIC_ALLOW_OLDER=1 to release it anyway" >&2
			refused=1
		fi
	fi
done
[ -z "$refused" ] || exit 1

mkdir -p dist
rm -f dist/SHA256SUMS.tmp
for arch in amd64 arm64; do
	name=ferry-$version-linux-$arch
	cp "$(out_of "$arch")/ferry" "dist/$name.tmp"
	chmod 755 "dist/$name.tmp"
	mv "dist/$name.tmp" "dist/$name"
	(cd dist && sha256sum "$name") >>dist/SHA256SUMS.tmp
done
mv dist/SHA256SUMS.tmp dist/SHA256SUMS
(cd dist && sha256sum -c SHA256SUMS) >&2
echo "release: dist/ holds:" >&2
cat dist/SHA256SUMS
