#!/bin/sh
# Builds the release folders that install.sh and install.ps1 are run from, and tries each program.
#
#   sh install/build-release.sh [linux|windows|all]        (default: all)
#
#   dist/dncs-VERSION-linux-x86_64/     bin/dncs  bin/dncs-sync      html/ ini/ install/
#   dist/dncs-VERSION-windows-x86_64/   bin/dncs.exe bin/dncs-sync.exe  html/ ini/ install/
#
# The Linux programs are linked statically, C library included. A program linked against the
# glibc of a current distribution needs that glibc (2.34 or later) on the server and does not
# start on RHEL 8, Ubuntu 20.04 or older systems that Cybozu Office servers often run; the static
# one runs on any x86_64 Linux from kernel 3.2 on. It also starts without the dynamic loader,
# a quarter less time for each CGI request (README, "Performance"). It resolves host names from
# /etc/hosts and DNS by itself; other name services of nsswitch.conf (LDAP, mDNS) are not used.
# The Windows programs need only the DLLs of Windows itself.
set -eu
cd "$(dirname "$0")/.."

what=${1:-all}
case $what in
  linux | windows | all) ;;
  *) echo "usage: sh install/build-release.sh [linux|windows|all]" >&2; exit 2 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
linux_target=x86_64-unknown-linux-gnu
windows_target=x86_64-pc-windows-gnu
# Static, and position-dependent like the default build of the CGI (build.rs): heap and stack are
# randomized, the program (C library included) is not. DNCS_PIE=1 builds static-pie programs instead,
# fully randomized, which relocate themselves at every start (about 0.4 ms more per CGI request).
if [ "${DNCS_PIE:-0}" != 0 ]; then
  linux_rustflags="-C target-feature=+crt-static"
else
  linux_rustflags="-C target-feature=+crt-static -C relocation-model=static"
fi

# Lays out a release folder: the two programs, the templates, the default dncs.ini, the scripts.
assemble() {
  folder=$1 exe=$2 build_dir=$3
  rm -rf "$folder"
  mkdir -p "$folder/bin" "$folder/ini"
  cp "$build_dir/dncs$exe" "$build_dir/dncs-sync$exe" "$folder/bin/"
  cp -R html "$folder/html"
  cp -R install "$folder/install"
  rm -f "$folder/install/build-release.sh"
  cp ini/dncs.ini "$folder/ini/dncs.ini"
  cp README.md "$folder/README.md"
}

# Runs the Linux programs the way a fresh install would: the CGI behind its dncs.ini, with
# html/ and data/ beside bin/.
try_linux() {
  folder=$1
  command -v readelf >/dev/null || { echo "build-release: needs readelf (binutils)" >&2; exit 1; }
  if readelf -d "$folder/bin/dncs" "$folder/bin/dncs-sync" 2>/dev/null | grep -q NEEDED; then
    echo "build-release: the Linux programs still need shared libraries" >&2
    exit 1
  fi
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  mkdir -p "$site/dncs/bin"
  cp "$folder/bin/dncs" "$site/dncs/bin/dncs.cgi"
  cp "$folder/bin/dncs-sync" "$site/dncs/bin/dncs-sync"
  cp "$folder/ini/dncs.ini" "$site/dncs/bin/dncs.ini"
  cp -R "$folder/html" "$site/dncs/html"
  for page in css login; do
    answer=$(env -i GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET QUERY_STRING="page=$page" \
      SCRIPT_NAME=/cgi-bin/cbag/dncs/bin/dncs.cgi HTTP_HOST=localhost REMOTE_ADDR=127.0.0.1 \
      "$site/dncs/bin/dncs.cgi" | head -n 1 | tr -d '\r')
    if [ "$answer" != "Status: 200 OK" ]; then
      echo "build-release: the CGI answered '$answer' for ?page=$page" >&2
      exit 1
    fi
  done
  # No Cybozu Office answers at the default CYBOZU_URL here, so check exits 1; what matters is
  # that the static program read dncs.ini, tried the network (name lookup included) and opened
  # the database.
  report=$(DNCS_INI="$site/dncs/bin/dncs.ini" "$site/dncs/bin/dncs-sync" check 2>&1 || true)
  case $report in
    *"CYBOZU_URL: http://localhost/"*"database: "*"schema version"*) ;;
    *)
      echo "build-release: dncs-sync check did not get through:" >&2
      echo "$report" >&2
      exit 1
      ;;
  esac
  rm -rf "$site"
  trap - EXIT
}

if [ "$what" != windows ]; then
  RUSTFLAGS=$linux_rustflags cargo build --release --target "$linux_target" --bin dncs --bin dncs-sync
  folder="dist/dncs-$version-linux-x86_64"
  assemble "$folder" "" "target/$linux_target/release"
  try_linux "$folder"
  echo "$folder"
fi

if [ "$what" != linux ]; then
  cargo build --release --target "$windows_target" --bin dncs --bin dncs-sync
  folder="dist/dncs-$version-windows-x86_64"
  assemble "$folder" .exe "target/$windows_target/release"
  if x86_64-w64-mingw32-objdump -p "$folder/bin/dncs.exe" "$folder/bin/dncs-sync.exe" 2>/dev/null \
    | grep -iE 'DLL Name: (libgcc|libwinpthread|libstdc)'; then
    echo "build-release: the Windows programs need MinGW DLLs" >&2
    exit 1
  fi
  echo "$folder"
fi
