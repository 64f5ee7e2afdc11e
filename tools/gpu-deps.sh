#!/bin/bash
# Bring Debian -dev libraries to the GPU machine, which has a compiler and CUDA but no apt.
#
#   here:  tools/gpu-deps.sh fetch DIR [PKG ...]   download the .debs (and their library packages) into DIR
#   there: . gpu-deps.sh env DIR                           unpack DIR/*.deb into DIR/root, export the
#                                                          compiler, linker, pkg-config and CMake search paths
# DIR must sit inside the tree that travels to the GPU machine (and be git-ignored there).
# The GPU machine runs a newer glibc than Debian 12, so Debian's libraries load there.
set -u
DEFAULT_PKGS="libzstd-dev libsodium-dev libyaml-dev libcjson-dev libpcre2-dev libutf8proc-dev libcurl4-openssl-dev libmicrohttpd-dev libncurses-dev"
cmd=${1:-}; dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then sed -n '2,9p' "$0"; exit 2; fi
shift 2
case "$cmd" in
fetch)
  pkgs=${*:-$DEFAULT_PKGS}
  mkdir -p "$dir" && cd "$dir" || exit 1
  [ -n "$(ls /var/lib/apt/lists 2>/dev/null | head -1)" ] || apt-get update -qq
  # each -dev package plus the library packages it depends on; not libc and friends, and not libcurl4,
  # whose Debian build wants libldap-2.5 and libssh2: the GPU machine has its own libcurl.so.4
  want=""
  for p in $pkgs; do
    want="$want $p"
    for d in $(apt-cache depends --no-recommends --no-suggests "$p" 2>/dev/null | awk '/Depends:/ {print $2}' | tr -d '<>'); do
      case "$d" in libcurl4|libcurl4t64) ;; lib*[0-9]|lib*[0-9]t64|libpcre2-*|libutf8proc*|libcjson*|libyaml-0*|libsodium*|libzstd1|libmicrohttpd*|libncursesw6|libtinfo6) want="$want $d";; esac
    done
  done
  # shellcheck disable=SC2086
  apt-get download $(echo $want | tr ' ' '\n' | sort -u) >/dev/null 2>&1 || { echo "apt-get download failed for: $want"; exit 1; }
  ls *.deb | wc -l | xargs echo "debs in $dir:"
  ;;
env)
  root=$(cd "$dir" && pwd)/root
  mkdir -p "$root"
  for f in "$dir"/*.deb; do dpkg -x "$f" "$root"; done
  # a -dev .so link whose library was not brought (libcurl.so -> libcurl.so.4) points at the system's copy
  for l in "$root"/usr/lib/x86_64-linux-gnu/*.so; do
    [ -L "$l" ] && [ ! -e "$l" ] || continue
    t=$(readlink "$l"); [ -e "/usr/lib/x86_64-linux-gnu/$t" ] && ln -sf "/usr/lib/x86_64-linux-gnu/$t" "$root/usr/lib/x86_64-linux-gnu/$t"
  done
  # make the .so symlinks of -dev packages resolve against the libraries unpacked beside them
  export CPATH="$root/usr/include:$root/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH="$root/usr/lib/x86_64-linux-gnu/pkgconfig:$root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export PKG_CONFIG_SYSROOT_DIR=""
  export CMAKE_PREFIX_PATH="$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  # pkg-config files name prefix=/usr; point them at the unpacked tree
  for pc in "$root"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$root"/usr/share/pkgconfig/*.pc; do
    # Requires.private names packages (gnutls, ...) the GPU machine has no .pc for; dynamic links need none
    [ -f "$pc" ] && sed -i -e "s|^prefix=/usr\$|prefix=$root/usr|" -e "s|=/usr/|=$root/usr/|g" -e "s| -I/usr/| -I$root/usr/|g" -e '/^Requires.private:/d' "$pc"
  done
  echo "gpu-deps: libraries from $dir unpacked under $root"
  ;;
*) sed -n '2,9p' "$0"; exit 2;;
esac
