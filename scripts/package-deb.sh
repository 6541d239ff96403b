#!/usr/bin/env bash
# Build the Debian package of s3cryptfs (and optionally install, check and remove it).
#
#   scripts/package-deb.sh                   release build with cargo-deb (installs cargo-deb
#                                            3.8.0 with `cargo install --locked` if missing)
#   scripts/package-deb.sh --fast            package the dev-profile binary already built by
#                                            `cargo build`/`cargo test`, without building (CI)
#   scripts/package-deb.sh --dpkg-deb        build the same package without cargo-deb: stage
#                                            the assets of [package.metadata.deb] in Cargo.toml
#                                            and run dpkg-deb --build (the fallback when
#                                            cargo-deb cannot be installed; see below)
#   scripts/package-deb.sh --install-check   after building: dpkg -i the package, run
#                                            s3cryptfs --version, mount.s3cryptfs --version and
#                                            man -w for each page from the installed package,
#                                            systemd-analyze verify the installed units, then
#                                            dpkg -r (needs root)
#   scripts/package-deb.sh --list-assets     print the assets as the dpkg-deb fallback reads
#                                            them (tests/fast/ops_deb.rs compares with Cargo.toml)
#
# With --fast and without --dpkg-deb, cargo-deb is used if it is installed and the dpkg-deb
# fallback otherwise (installing cargo-deb takes ~5 minutes on 2 cores). The .deb is written
# to target/debian/ ($CARGO_TARGET_DIR/debian/ when that is set, where the binaries are
# then taken from too). The fallback differs from cargo-deb only in the Depends line: cargo-deb
# computes the libc version from the binary ($auto), the fallback writes plain
# "libc6, libgcc-s1".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly CARGO_DEB_VERSION=3.8.0
readonly PACKAGE=s3cryptfs

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

fast=no
builder=auto
install_check=no
list_only=no
for arg in "$@"; do
    case $arg in
        --fast) fast=yes ;;
        --dpkg-deb) builder=dpkg-deb ;;
        --cargo-deb) builder=cargo-deb ;;
        --install-check) install_check=yes ;;
        --list-assets) list_only=yes ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $arg (see --help)" ;;
    esac
done

# The assets of [package.metadata.deb], one per line: "file<TAB>SOURCE<TAB>DEST<TAB>MODE" or
# "link<TAB>DEST<TAB>TARGET". Cargo.toml keeps one asset per line for this.
list_assets() {
    awk '
        /^\[package\.metadata\.deb\]/ { in_deb = 1; next }
        /^\[/ { in_deb = 0 }
        in_deb && /^assets = \[/ { in_assets = 1; next }
        in_assets && /^\]/ { in_assets = 0 }
        in_assets && /^ *\[/ {
            n = split($0, q, "\"")
            if (n < 7) { print "bad asset line: " $0 > "/dev/stderr"; exit 1 }
            printf "file\t%s\t%s\t%s\n", q[2], q[4], q[6]
        }
        in_assets && /^ *\{/ {
            dest = $0; sub(/.*dest = "/, "", dest); sub(/".*/, "", dest)
            link = $0; sub(/.*link_name = "/, "", link); sub(/".*/, "", link)
            printf "link\t%s\t%s\n", dest, link
        }
    ' Cargo.toml
}

if [ "$list_only" = yes ]; then
    list_assets
    exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"
arch=$(dpkg --print-architecture)
target_dir=${CARGO_TARGET_DIR:-target}
deb="$target_dir/debian/${PACKAGE}_${version}-1_${arch}.deb"
mkdir -p "$target_dir/debian"

if [ "$fast" = yes ]; then
    profile_dir=$target_dir/debug
    [ -x "$profile_dir/s3cryptfs" ] ||
        die "$profile_dir/s3cryptfs is not built; run cargo build first (--fast packages it as it is)"
else
    profile_dir=$target_dir/release
fi

if [ "$builder" = auto ]; then
    if cargo deb --version >/dev/null 2>&1 || [ "$fast" = no ]; then
        builder=cargo-deb
    else
        builder=dpkg-deb
    fi
fi

build_with_cargo_deb() {
    if ! cargo deb --version >/dev/null 2>&1; then
        say "installing cargo-deb $CARGO_DEB_VERSION (cargo install --locked; a few minutes)"
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
    fi
    if [ "$fast" = yes ]; then
        say "cargo deb --no-build --profile dev (the dev build, as it is)"
        # cargo-deb warns that the dev profile is meant for testing, not releases: so it is.
        local log
        log=$(mktemp)
        if ! cargo deb --no-build --profile dev --fast --deb-revision 1 --output "$deb" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "cargo deb failed"
        fi
        grep -v "dev profile is not supported\|cargo-deb is for making releases\|To enable debug symbols\|Cargo also supports custom profiles" "$log" || true
        rm -f "$log"
    else
        say "cargo deb (release build)"
        cargo deb --deb-revision 1 --output "$deb"
    fi
}

build_with_dpkg_deb() {
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is missing"
    if [ "$fast" = no ]; then
        say "cargo build --release"
        cargo build --release
    fi
    local stage
    stage=$(mktemp -d)
    local root="$stage/root"
    mkdir -p "$root/DEBIAN"
    say "staging the assets of [package.metadata.deb]"
    local kind a b c src dest
    while IFS=$'\t' read -r kind a b c; do
        if [ "$kind" = link ]; then
            mkdir -p "$root/$(dirname "$a")"
            ln -s "$b" "$root/$a"
            continue
        fi
        src=${a/#target\/release/$profile_dir}
        dest=$b
        for f in $src; do
            [ -e "$f" ] || die "asset $a: $f does not exist"
            if [[ $dest == */ ]]; then target="$root/$dest$(basename "$f")"; else target="$root/$dest"; fi
            mkdir -p "$(dirname "$target")"
            install -m "$c" "$f" "$target"
            case $target in
                "$root"/usr/bin/s3cryptfs) strip --strip-debug --strip-unneeded "$target" ;;
                "$root"/usr/share/man/*) gzip -9n "$target" ;;
            esac
        done
    done < <(list_assets)
    local docdir="$root/usr/share/doc/$PACKAGE"
    mkdir -p "$docdir"
    cat >"$docdir/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $PACKAGE
Files: *
Copyright: s3cryptfs developers
License: Apache-2.0
EOF
    install -m 755 packaging/deb/postinst packaging/deb/postrm "$root/DEBIAN/"
    local size description
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -1)
    cat >"$root/DEBIAN/control" <<EOF
Package: $PACKAGE
Version: $version-1
Architecture: $arch
Maintainer: s3cryptfs developers <s3cryptfs@localhost>
Installed-Size: $size
Depends: libc6, libgcc-s1, fuse3
Recommends: rsync
Section: utils
Priority: optional
Description: $description
 s3cryptfs mounts an object store (a local directory, or S3) as a directory
 and encrypts every file on the client before it leaves the machine. Built
 by scripts/package-deb.sh --dpkg-deb from the assets of Cargo.toml.
EOF
    say "dpkg-deb --build"
    dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "$deb" >/dev/null
    rm -rf "$stage"
}

started=$(date +%s)
case $builder in
    cargo-deb) build_with_cargo_deb ;;
    dpkg-deb) build_with_dpkg_deb ;;
    *) die "unknown builder $builder" ;;
esac
say "built $deb with $builder in $(($(date +%s) - started)) s"
dpkg-deb --contents "$deb" | awk '{ print "    " $1, $6, $7, $8 }'

[ "$install_check" = yes ] || exit 0

[ "$(id -u)" -eq 0 ] || die "--install-check installs the package and needs root"
say "dpkg -i $deb"
# Minimal container images exclude man pages from packages (path-exclude in
# /etc/dpkg/dpkg.cfg.d/); include ours so that man -w can find them.
command -v fusermount3 >/dev/null 2>&1 || die "fuse3 (a dependency) is not installed"
dpkg --path-include='/usr/share/man/*' -i "$deb"
removed=no
remove_package() {
    if [ "$removed" = no ]; then
        removed=yes
        say "dpkg -r $PACKAGE"
        dpkg -r "$PACKAGE" >/dev/null
    fi
}
trap remove_package EXIT

say "checking the installed package"
/usr/bin/s3cryptfs --version
/sbin/mount.s3cryptfs --version
[ "$(readlink /sbin/mount.s3cryptfs)" = /usr/bin/s3cryptfs ] || die "/sbin/mount.s3cryptfs is not a symlink to /usr/bin/s3cryptfs"
/usr/bin/s3cryptfs-backup --help >/dev/null
for page in s3cryptfs s3cryptfs-mount s3cryptfs.toml mount.s3cryptfs; do
    printf '%s: %s\n' "$page" "$(man -w "$page")"
done
[ -d /etc/s3cryptfs ] || die "postinst did not create /etc/s3cryptfs"
for f in /usr/share/bash-completion/completions/s3cryptfs /usr/share/zsh/vendor-completions/_s3cryptfs \
    /usr/share/fish/vendor_completions.d/s3cryptfs.fish; do
    [ -f "$f" ] || die "the package did not install the completions $f"
    cmp -s "$f" <(/usr/bin/s3cryptfs completions "$(case $f in *.fish) echo fish ;; *_s3cryptfs) echo zsh ;; *) echo bash ;; esac)") ||
        die "$f differs from what the installed binary generates"
done
bash -n /usr/share/bash-completion/completions/s3cryptfs || die "the bash completions do not parse"
echo "completions: bash, zsh and fish installed"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The installed units as they are, Documentation= man pages included.
    out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify s3cryptfs@ci.service \
        s3cryptfs-backup@ci.service s3cryptfs-backup@ci.timer 2>&1) ||
        die "systemd-analyze verify failed: $out"
    if printf '%s\n' "$out" | grep s3cryptfs; then die "systemd-analyze verify warned"; fi
    echo "systemd-analyze verify: the installed units are fine"
else
    echo "systemd-analyze is not installed: units not verified here (tests/fast/ops_systemd.rs does)"
fi
remove_package
[ ! -e /usr/bin/s3cryptfs ] && [ ! -L /sbin/mount.s3cryptfs ] || die "dpkg -r left files behind"
say "the package installs, runs and removes cleanly"
