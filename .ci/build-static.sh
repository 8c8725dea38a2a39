#!/bin/sh
# .ci/build-static.sh: builds build/static/ferry, the static musl binary.
#
# Every library ferry links is built with musl-gcc from its Debian 12
# source package (`apt-get source`, with Debian's patches applied) into a
# cache directory, then ferry itself is built by `make STATIC=1`. A second
# run skips every library already built. `make static`, CI and the
# Dockerfile's builder stage all run this script.
#
#   ARCH                amd64 or arm64 (default: TARGETARCH, else the
#                       host's); arm64 on an amd64 host is cross-built with
#                       Debian's gcc-aarch64-linux-gnu and musl-dev:arm64
#   FERRY_STATIC_CACHE  cache directory (default build/static-deps for the
#                       host's architecture, build/static-deps-ARCH else)
#   FERRY_STATIC_OUT    where ferry goes, relative to the source tree
#                       (default build/static, or build/static-ARCH)
#   JOBS                parallel make jobs (default: the number of CPUs)
#
# Needs Debian 12 and, the first time, root (it installs musl-tools and the
# few build tools it lacks, and adds a deb-src entry for apt-get source).
#
# When the newest source version apt lists (a security update) cannot be
# downloaded, an older one is used: the build then warns, `ferry version`
# says "built from older sources: ..." and `make release` refuses the binary
# unless FERRY_STATIC_ALLOW_OLDER=1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
host_arch=$(dpkg --print-architecture)
# TARGETARCH: what Docker's buildx names the target (the Dockerfile)
ARCH=${ARCH:-${TARGETARCH:-$host_arch}}
if [ "$ARCH" = "$host_arch" ]; then
	cache=${FERRY_STATIC_CACHE:-$root/build/static-deps}
	out=${FERRY_STATIC_OUT:-build/static}
else
	cache=${FERRY_STATIC_CACHE:-$root/build/static-deps-$ARCH}
	out=${FERRY_STATIC_OUT:-build/static-$ARCH}
fi
case $cache in /*) ;; *) cache=$(pwd)/$cache ;; esac
case $out in /* | *..*) echo "build-static: FERRY_STATIC_OUT must be a path inside the source tree: $out" >&2; exit 1 ;; esac
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
prefix=$cache/prefix
srcdir=$cache/src
logdir=$cache/logs
started=$(date +%s)

# -Os would save ~15% more but slows SQLite and OpenSSL; the sections let
# the final link drop every function ferry never reaches.
dep_cflags="-O2 -ffunction-sections -fdata-sections"

say() { echo "build-static: [$(($(date +%s) - started)) s] $*" >&2; }
die() { say "error: $*"; exit 1; }

# The target: its GNU and musl triplets, OpenSSL's name for it, and the
# tools that build for it. On its own architecture musl-gcc (musl-tools);
# across, a wrapper around the cross gcc with musl-dev's specs file.
case $ARCH in
amd64) gnu=x86_64-linux-gnu musl=x86_64-linux-musl ossl_target=linux-x86_64 elf=x86-64 ;;
arm64) gnu=aarch64-linux-gnu musl=aarch64-linux-musl ossl_target=linux-aarch64 elf=aarch64 ;;
*) die "ARCH=$ARCH: only amd64 and arm64 are built" ;;
esac
if [ "$ARCH" = "$host_arch" ]; then
	cross='' mcc=musl-gcc tool=''
else
	cross=--host=$musl mcc=$cache/bin/musl-gcc-$ARCH tool=$gnu-
fi
[ "$ARCH" = arm64 ] && mcc=$cache/bin/musl-gcc-$ARCH
AR=${tool}ar RANLIB=${tool}ranlib NM=${tool}nm STRIP=${tool}strip

# step NAME LOG CMD...: runs CMD with its output in LOG; on failure shows
# the end of LOG (CI must say why, not only that).
step() {
	_name=$1 _log=$2
	shift 2
	if ! "$@" >"$_log" 2>&1; then
		say "$_name failed; the last lines of $_log:"
		tail -n 40 "$_log" >&2
		exit 1
	fi
}

# ---- tools -------------------------------------------------------------

install_tools() {
	need=
	# musl-gcc, tclsh (SQLite's amalgamation), perl (OpenSSL's Configure,
	# PostgreSQL's generated headers), dpkg-source (apt-get source), the
	# kernel headers (linux/fs.h for FICLONE), libinih-dev (see inih below)
	pkgs="musl-tools build-essential dpkg-dev tcl perl xz-utils bzip2
		linux-libc-dev libinih-dev file"
	# across: the cross gcc, and musl, the kernel headers and libinih of
	# the target (Debian's multiarch packages, Multi-Arch: same)
	# (gcc-aarch64-linux-gnu, gcc-x86-64-linux-gnu: Debian spells _ as -)
	[ -n "$cross" ] && pkgs="$pkgs gcc-$(echo "$gnu" | tr _ -) musl-dev:$ARCH linux-libc-dev:$ARCH libinih-dev:$ARCH"
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || need="$need $p"
	done
	[ -z "$need" ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages:$need (run as root once)"
	say "installing$need"
	export DEBIAN_FRONTEND=noninteractive
	if [ -n "$cross" ] && ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
		dpkg --add-architecture "$ARCH"
	fi
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
}

# The deb-src entry mirrors the configured deb sources (the same mirrors,
# suites, components and keys), in whichever format they are written.
enable_deb_src() {
	apt-cache showsrc sqlite3 2>/dev/null | grep -q '^Version:' && return 0
	[ "$(id -u)" = 0 ] || die "no deb-src configured for apt-get source (run as root once)"
	list=/etc/apt/sources.list.d/ferry-deb-src
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$list.sources"
	elif [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
		sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$list.list"
	else
		cat >"$list.list" <<-EOF
		deb-src http://deb.debian.org/debian bookworm main
		deb-src http://deb.debian.org/debian bookworm-updates main
		deb-src http://deb.debian.org/debian-security bookworm-security main
		EOF
	fi
	say "added deb-src entry $list.*; apt-get update"
	apt-get update -qq
}

# ---- sources -----------------------------------------------------------

# versions_of PKG: the source versions apt knows, newest first.
versions_of() {
	apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -u >"$cache/.versions"
	# dpkg's ordering, not sort -V: 1.0~rc1 < 1.0
	while [ -s "$cache/.versions" ]; do
		best=$(head -n 1 "$cache/.versions")
		while read -r v; do
			dpkg --compare-versions "$v" gt "$best" && best=$v
		done <"$cache/.versions"
		echo "$best"
		grep -vxF -- "$best" "$cache/.versions" >"$cache/.versions.new" || :
		mv "$cache/.versions.new" "$cache/.versions"
	done
	rm -f "$cache/.versions"
}

# fetch PKG: unpacks the newest downloadable source of PKG into $srcdir;
# sets $dir (its tree) and $ver (its Debian version). A version the mirror
# lists but no longer serves (a security update superseded on the mirror)
# is skipped for the next one, and said so.
fetch() {
	stamp=$srcdir/$1.fetched
	if [ -f "$stamp" ]; then
		read -r ver dir <"$stamp"
		[ -d "$dir" ] && return 0
	fi
	enable_deb_src
	mkdir -p "$srcdir/$1.tmp"
	newest=
	for ver in $(versions_of "$1"); do
		[ -n "$newest" ] || newest=$ver
		rm -rf "$srcdir/$1.tmp"/*
		if (cd "$srcdir/$1.tmp" && apt-get source -qq "$1=$ver") \
			>"$logdir/fetch-$1.log" 2>&1; then
			sub=$(cd "$srcdir/$1.tmp" && find . -mindepth 1 -maxdepth 1 -type d)
			dir=$srcdir/${sub#./}
			rm -rf "$dir"
			mv "$srcdir/$1.tmp/${sub#./}" "$dir"
			rm -rf "$srcdir/$1.tmp"
			echo "$ver $dir" >"$stamp"
			say "source $1 $ver"
			[ "$ver" = "$newest" ] ||
				say "WARNING: $1 is built from $ver, older than $newest (the newest apt lists, which cannot be downloaded)"
			return 0
		fi
		say "source $1 $ver cannot be downloaded, trying an older one"
	done
	rm -rf "$srcdir/$1.tmp"
	return 1
}

# built NAME: true when NAME is in the cache already (delete the cache
# directory to rebuild with newer sources); mark_built records its version.
built() {
	[ -f "$prefix/.built-$1" ] || return 1
	say "$1 $(cat "$prefix/.built-$1"): cached"
}
mark_built() { echo "$2" >"$prefix/.built-$1"; }

# ---- the libraries -----------------------------------------------------

# Kernel headers for musl-gcc, which searches only musl's own include dir.
kernel_headers() {
	kdir=$prefix/kernel-include
	[ -d "$kdir/linux" ] && return 0
	mkdir -p "$kdir"
	cp -R /usr/include/linux /usr/include/asm-generic "$kdir/"
	cp -R "/usr/include/$gnu/asm" "$kdir/"
}

# The compiler as one command (configure scripts want CC to be one): across,
# the cross gcc with musl-dev's specs file. On arm64 (native too), gcc's
# outline atomics call libgcc helpers whose init needs glibc's __getauxval,
# which musl lacks: the atomics are inlined instead.
cross_wrapper() {
	[ "$mcc" = musl-gcc ] && return 0
	if [ -n "$cross" ]; then
		specs=/usr/lib/$musl/musl-gcc.specs
		[ -f "$specs" ] || die "no $specs (musl-dev:$ARCH)"
		cc="$gnu-gcc -specs $specs"
	else
		cc=musl-gcc
	fi
	extra=
	[ "$ARCH" = arm64 ] && extra=-mno-outline-atomics
	mkdir -p "$cache/bin"
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$cc" "$extra" >"$mcc.new"
	chmod +x "$mcc.new"
	mv "$mcc.new" "$mcc"
}

build_sqlite() {
	built sqlite3 && return 0
	fetch sqlite3 || die "cannot download the source of sqlite3"
	say "building sqlite3 $ver"
	rm -rf "$cache/work/sqlite3"
	mkdir -p "$cache/work/sqlite3"
	# The host compiler generates the amalgamation (with Debian's patches);
	# musl-gcc compiles it. The feature set follows Debian's libsqlite3, so
	# the migrations an app ships (FTS, R-Tree, JSON, math) run the same
	# under both builds; loadable extensions are left out (no dlopen in a
	# static binary).
	(cd "$cache/work/sqlite3" && "$dir/configure" --disable-tcl --disable-readline &&
		make sqlite3.c) >"$logdir/sqlite3.log" 2>&1 ||
		{ tail -n 40 "$logdir/sqlite3.log" >&2; die "sqlite3 amalgamation failed"; }
	step sqlite3 "$logdir/sqlite3-cc.log" "$mcc" $dep_cflags \
		-DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION \
		-DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS \
		-DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE=1 \
		-DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_SOUNDEX=1 \
		-DSQLITE_ALLOW_ROWID_IN_VIEW -DSQLITE_LIKE_DOESNT_MATCH_BLOBS \
		-DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1 -DSQLITE_USE_URI=1 \
		-DSQLITE_MAX_SCHEMA_RETRY=25 -DSQLITE_MAX_VARIABLE_NUMBER=250000 \
		-DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_COLUMN_METADATA \
		-c -o "$cache/work/sqlite3/sqlite3.o" "$cache/work/sqlite3/sqlite3.c"
	rm -f "$prefix/lib/libsqlite3.a"
	"$AR" rcs "$prefix/lib/libsqlite3.a" "$cache/work/sqlite3/sqlite3.o"
	cp "$cache/work/sqlite3/sqlite3.h" "$cache/work/sqlite3/sqlite3ext.h" "$prefix/include/"
	rm -rf "$cache/work/sqlite3"
	mark_built sqlite3 "$ver"
}

build_zstd() {
	built libzstd-mt && return 0
	fetch libzstd || die "cannot download the source of libzstd"
	say "building libzstd $ver"
	# with worker threads (archives compress with [backup] threads; musl
	# has pthreads in libc), no legacy formats, no dictionary builder
	step libzstd "$logdir/libzstd.log" make -C "$dir/lib" -j"$jobs" libzstd.a-release \
		CC="$mcc" AR="$AR" CFLAGS="$dep_cflags -DZSTD_MULTITHREAD -pthread" ZSTD_LEGACY_SUPPORT=0 \
		ZSTD_LIB_DICTBUILDER=0 ZSTD_LIB_DEPRECATED=0
	cp "$dir/lib/libzstd.a" "$prefix/lib/"
	cp "$dir/lib/zstd.h" "$dir/lib/zstd_errors.h" "$dir/lib/zdict.h" "$prefix/include/"
	mark_built libzstd "$ver"
	mark_built libzstd-mt "$ver" # caches of the single-threaded build are rebuilt
}

build_libarchive() {
	built libarchive && return 0
	fetch libarchive || die "cannot download the source of libarchive"
	say "building libarchive $ver (tar + zstd only)"
	rm -rf "$cache/work/libarchive"
	mkdir -p "$cache/work/libarchive"
	step libarchive "$logdir/libarchive.log" sh -c '
		cd "$1" && "$2/configure" $6 CC="$7" AR="$8" RANLIB="$9" CFLAGS="$3" \
			CPPFLAGS="-I$4/include" LDFLAGS="-L$4/lib" \
			--prefix="$4" --enable-static --disable-shared \
			--disable-maintainer-mode --disable-dependency-tracking \
			--disable-bsdtar --disable-bsdcat --disable-bsdcpio \
			--disable-acl --disable-xattr --disable-rpath \
			--with-zstd --without-zlib --without-bz2lib --without-libb2 \
			--without-iconv --without-lz4 --without-lzma --without-lzo2 \
			--without-cng --without-mbedtls --without-nettle \
			--without-openssl --without-xml2 --without-expat &&
		grep -q "^#define HAVE_ZSTD_H 1" config.h &&
		grep -q "^#define HAVE_LIBZSTD 1" config.h &&
		make -j"$5" libarchive.la && make install-libLTLIBRARIES install-includeHEADERS
	' sh "$cache/work/libarchive" "$dir" "$dep_cflags" "$prefix" "$jobs" "$cross" "$mcc" "$AR" "$RANLIB"
	rm -f "$prefix/lib/libarchive.la"
	rm -rf "$cache/work/libarchive"
	mark_built libarchive "$ver"
}

build_openssl() {
	built openssl && return 0
	fetch openssl || die "cannot download the source of openssl"
	say "building openssl $ver (libssl and libcrypto only)"
	rm -rf "$cache/work/openssl"
	mkdir -p "$cache/work/openssl"
	# TLS for libpq and SHA-256 for ferry; no engines, no modules, no
	# loadable anything, no legacy ciphers, none of the protocols a database
	# client never speaks (CMP, CMS, OCSP, timestamps, PSK). /etc/ssl is where the image keeps
	# the CA certificates (as on Debian and Alpine).
	step openssl "$logdir/openssl.log" sh -c '
		cd "$1" && CC="$6" AR="$7" RANLIB="$8" "$2/Configure" "$9" \
			--prefix="$3" --libdir=lib --openssldir=/etc/ssl \
			-isystem "$3/kernel-include" $4 \
			no-shared no-module no-dso no-engine no-async no-afalgeng \
			no-comp no-legacy no-tests no-ui-console no-ssl3 no-dtls \
			no-srtp no-sctp no-srp no-gost no-idea no-mdc2 no-rc5 no-rc2 \
			no-rc4 no-md4 no-whirlpool no-seed no-camellia no-aria \
			no-sm2 no-sm3 no-sm4 no-bf no-cast no-weak-ssl-ciphers \
			no-cmp no-cms no-ts no-ct no-ocsp no-rfc3779 no-ec2m \
			no-siv no-ocb no-scrypt no-dsa no-ssl-trace no-psk &&
		make -j"$5" build_libs && make install_dev
	' sh "$cache/work/openssl" "$dir" "$prefix" "$dep_cflags" "$jobs" "$mcc" "$AR" "$RANLIB" "$ossl_target"
	rm -rf "$cache/work/openssl" "$prefix/lib/pkgconfig"
	mark_built openssl "$ver"
}

build_libpq() {
	built libpq && return 0
	fetch postgresql-15 || die "cannot download the source of postgresql-15"
	say "building libpq from postgresql-15 $ver (with OpenSSL)"
	rm -rf "$cache/work/postgresql"
	mkdir -p "$cache/work/postgresql"
	# Only libpq and the two libraries it needs (src/common, src/port), in
	# their "shlib" flavour: the one libpq itself is meant to link.
	step libpq "$logdir/libpq.log" sh -c '
		cd "$1" && "$2/configure" $6 CC="$7" AR="$8" RANLIB="$9" CFLAGS="$4" \
			CPPFLAGS="-I$3/include -isystem $3/kernel-include" \
			LDFLAGS="-L$3/lib" \
			--prefix="$3" --with-ssl=openssl --without-readline \
			--without-zlib --without-icu --without-gssapi --without-ldap \
			--without-pam --without-libxml --without-libxslt --without-lz4 \
			--without-zstd --without-systemd --without-selinux \
			--without-llvm --without-perl --without-python --without-tcl \
			--without-bonjour --disable-nls &&
		make -C src/backend generated-headers &&
		make -C src/port -j"$5" libpgport_shlib.a &&
		make -C src/common -j"$5" libpgcommon_shlib.a &&
		make -C src/interfaces/libpq -j"$5" libpq.a &&
		cp src/interfaces/libpq/libpq.a src/port/libpgport_shlib.a \
			src/common/libpgcommon_shlib.a "$3/lib/" &&
		cp "$2/src/interfaces/libpq/libpq-fe.h" \
			"$2/src/interfaces/libpq/libpq-events.h" \
			"$2/src/include/postgres_ext.h" src/include/pg_config_ext.h \
			"$3/include/"
	' sh "$cache/work/postgresql" "$dir" "$prefix" "$dep_cflags" "$jobs" "$cross" "$mcc" "$AR" "$RANLIB"
	rm -rf "$cache/work/postgresql"
	mark_built libpq "$ver (postgresql-15)"
}

# inih: Debian's libinih source has been missing from the mirror (404);
# then ferry links libinih-dev's own libinih.a, which is plain C built with
# inih's defaults and links and runs under musl (it uses no glibc-only
# symbol: the check below proves it at every build).
build_inih() {
	built libinih && return 0
	if fetch libinih; then
		say "building libinih $ver"
		step libinih "$logdir/libinih.log" "$mcc" $dep_cflags \
			-c -o "$dir/ini.o" "$dir/ini.c"
		rm -f "$prefix/lib/libinih.a"
		"$AR" rcs "$prefix/lib/libinih.a" "$dir/ini.o"
		cp "$dir/ini.h" "$prefix/include/"
		mark_built libinih "$ver"
		return 0
	fi
	ver="$(dpkg-query -W -f='${Version}' "libinih-dev:$ARCH") (libinih-dev's libinih.a)"
	say "libinih: no source downloadable; using libinih-dev:$ARCH's libinih.a"
	lib=/usr/lib/$gnu/libinih.a
	undefined=$("$NM" -u "$lib" | awk '{print $2}' | grep -E '^__.*_chk$|^__isoc' || :)
	[ -z "$undefined" ] || die "$lib needs glibc-only symbols: $undefined"
	cp "$lib" "$prefix/lib/libinih.a"
	cp /usr/include/ini.h "$prefix/include/"
	mark_built libinih "$ver"
}

# ---- ferry -------------------------------------------------------------

# older_sources: "LIB VERSION (security: NEWEST), ..." for each cached
# library older than the newest source version apt lists now: a fallback
# when that one could not be downloaded, or a cache built before a Debian
# security update (delete the cache to rebuild).
older_sources() {
	_older=
	for _l in sqlite3:sqlite3 libpq:postgresql-15 openssl:openssl \
		libarchive:libarchive libzstd:libzstd libinih:libinih; do
		_lib=${_l%%:*} _pkg=${_l#*:}
		read -r _built _ <"$prefix/.built-$_lib"
		_newest=$(versions_of "$_pkg" | head -n 1)
		[ -n "$_newest" ] || { say "WARNING: apt lists no source of $_pkg: cannot tell whether $_lib $_built is current"; continue; }
		dpkg --compare-versions "$_built" lt "$_newest" &&
			_older="$_older${_older:+, }$_lib $_built (security: $_newest)"
	done
	echo "$_older"
}

write_build_info() {
	musl=$(dpkg-query -W -f='${Version}' "musl-dev:$ARCH")
	cc=$("$mcc" -dumpfullversion 2>/dev/null || "$mcc" -dumpversion)
	older=$(older_sources)
	# shellcheck disable=SC2016
	{
		echo "static musl build: musl $musl, gcc $cc, for linux-$ARCH"
		for l in sqlite3 libpq openssl libarchive libzstd libinih; do
			printf '  %-10s %s\n' "$l" "$(cat "$prefix/.built-$l")"
		done
		[ -z "$older" ] || echo "built from older sources: $older"
	} >"$cache/versions.txt"
	mkdir -p "$root/$out"
	awk 'BEGIN { print "/* generated by .ci/build-static.sh */"
		     printf "#define FERRY_BUILD_INFO" }
	     { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); line[NR] = $0 }
	     END { for (i = 1; i <= NR; i++)
			printf " \\\n\t\"%s%s\"", line[i], i < NR ? "\\n" : ""
		   print "" }' "$cache/versions.txt" >"$root/$out/build-info.h.new"
	# keep the old file (and its mtime) when nothing changed
	if cmp -s "$root/$out/build-info.h.new" "$root/$out/build-info.h"; then
		rm "$root/$out/build-info.h.new"
	else
		mv "$root/$out/build-info.h.new" "$root/$out/build-info.h"
	fi
}

mkdir -p "$prefix/lib" "$prefix/include" "$srcdir" "$logdir"
install_tools
cross_wrapper
kernel_headers
build_sqlite
build_zstd
build_libarchive
build_openssl
build_libpq
build_inih
write_build_info
# the libraries are built: their sources (about 400 MB) are not needed again
rm -rf "$srcdir" "$cache/work"

say "libraries for linux-$ARCH ready in $(($(date +%s) - started)) s:"
cat "$cache/versions.txt" >&2
make -C "$root" -j"$jobs" STATIC=1 STATIC_PREFIX="$prefix" STATIC_CC="$mcc" \
	STATIC_OUT="$out" "$out/ferry" "$out/demo-app" >&2
bin=$root/$out/ferry
# ferry.debug keeps the symbols (for gdb, and for nm --size-sort)
if [ ! -f "$bin.debug" ] || [ "$bin" -nt "$bin.debug" ]; then
	cp "$bin" "$bin.debug"
	"$STRIP" "$bin"
	touch -r "$bin.debug" "$bin"
fi
desc=$(file "$bin")
case $desc in *'statically linked'*) ;; *) die "$out/ferry is not statically linked: $desc" ;; esac
case $desc in *"$elf"*) ;; *) die "$out/ferry is not a linux-$ARCH binary: $desc" ;; esac
say "$out/ferry (linux-$ARCH): $(wc -c <"$bin") bytes stripped, built in $(($(date +%s) - started)) s"
if grep -q '^built from older sources' "$cache/versions.txt"; then
	say "WARNING: ###########################################################"
	say "WARNING: $(grep '^built from older sources' "$cache/versions.txt")"
	say "WARNING: newer Debian security releases exist but could not be"
	say "WARNING: downloaded; make release refuses this binary unless"
	say "WARNING: FERRY_STATIC_ALLOW_OLDER=1"
	say "WARNING: ###########################################################"
fi
