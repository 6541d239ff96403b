# The permission table of tests/fuse/permissions.rs: run as root by `sh perm_table.sh DIR all`, once
# on a local file system and once on a mount, and the two outputs must be equal. Root sets up
# files owned by user 1000 (group 1000); rows run as that owner (O), as a member of its group
# (G: uid 3000, gid 1000) and as another user (X: uid 2000, gid 2000), with no other groups.
# Each row prints its exit code and error message (the directory's path taken out), then
# every entry's mode, owner, group and ACL is printed (`sh perm_table.sh DIR list`: only that).
set -u
cd "$1" || exit 99
list() {
    # Sizes of files only: a directory's size is the file system's own business.
    find t | sort | while read -r p; do
        if [ -d "$p" ]; then stat -c '%n %A %u %g' "$p"; else stat -c '%n %A %u %g %s' "$p"; fi
        getfacl -pn --omit-header "$p"
    done
}
if [ "${2:-all}" = list ]; then list; exit 0; fi
as() {
    who=$1; shift
    case $who in
        O) ids="--reuid=1000 --regid=1000" ;;
        G) ids="--reuid=3000 --regid=1000" ;;
        X) ids="--reuid=2000 --regid=2000" ;;
    esac
    label=$1; shift
    # shellcheck disable=SC2086
    err=$(setpriv $ids --clear-groups --inh-caps=-all sh -c "$*" 2>&1 >/dev/null)
    printf '%s %s: %s %s\n' "$who" "$label" "$?" "$(printf '%s' "$err" | sed 's/^[^:]*: //; s/^[^:]*: //' | tr '\n' ' ')"
}
mkfile() { # mkfile NAME MODE [OWNER:GROUP]
    printf '#!/bin/sh\necho ok\n' > "$1"
    chown "${3:-1000:1000}" "$1"
    chmod "$2" "$1"
}
mkdir t && chmod 0755 t && cd t || exit 98
mkfile f600 0600; mkfile f640 0640; mkfile f604 0604; mkfile f066 0066; mkfile f606 0606
mkfile acl 0600; setfacl -m u:2000:rw acl; mkfile acl-masked 0600; setfacl -m u:2000:rw,m::r acl-masked
mkdir acl-dir; chown 1000:1000 acl-dir; chmod 0700 acl-dir; setfacl -m u:2000:rwx acl-dir
mkfile x700 0700; mkfile x750 0750; mkfile x705 0705
mkdir d700 d750 sticky sgid
chown 1000:1000 d700 d750; chmod 0700 d700; chmod 0750 d750
mkfile d700/in 0644; mkfile d750/in 0644
chmod 1777 sticky; mkfile sticky/of-owner 0666; mkfile sticky/of-x 0666 2000:2000
chown 0:1000 sgid; chmod 2777 sgid
mkfile suid-w 6777; mkfile suid-u 6755; mkfile suid-root 6755; mkfile sgid-noexec 2666
mkfile suid-kept 6777; echo more >> suid-kept

as O "read 0600" cat f600
as G "read 0600" cat f600
as X "read 0600" cat f600
as G "read 0640" cat f640
as X "read 0640" cat f640
as X "read 0604" cat f604
as O "read 0066" cat f066
as G "read 0066" cat f066
as O "append 0600" "echo >> f600"
as G "append 0640" "echo >> f640"
as X "append 0604" "echo >> f604"
as X "truncate 0604" "truncate -s 0 f604"
as O "exec 0700" ./x700
as G "exec 0700" ./x700
as G "exec 0750" ./x750
as X "exec 0750" ./x750
as X "exec 0705" ./x705
as O "ls 0700" "ls d700"
as X "ls 0700" "ls d700"
as X "read in 0700" "cat d700/in"
as G "ls 0750" "ls d750"
as G "read in 0750" "cat d750/in"
as G "create in 0750" "touch d750/new"
as G "unlink in 0750" "rm -f d750/in"
as X "utimes 0604" "touch -d 2001-01-01 f604"
as X "touch now 0604" "touch f604"
as X "touch now 0606" "touch f606"
as X "utimes 0606" "touch -d 2001-01-01 f606"
as X "read with ACL" "cat acl"
as X "append with ACL" "echo >> acl"
as G "read beside ACL" "cat acl"
as X "read ACL within mask" "cat acl-masked"
as X "append ACL past mask" "echo >> acl-masked"
as X "create in ACL dir" "touch acl-dir/new"
as X "chmod" "chmod 0777 f604"
as O "chmod" "chmod 0644 f604"
as X "chown to self" "chown 2000 f640"
as O "chown away" "chown 2000 f640"
as O "chgrp to non-member" "chgrp 2000 f640"
as O "chgrp to own group" "chgrp 1000 f640"
as G "chmod g+w" "chmod g+w f640"
as X "unlink other's in sticky" "rm -f sticky/of-owner"
as X "rename other's in sticky" "mv sticky/of-owner sticky/moved"
as X "rename onto other's in sticky" "touch sticky/mine && mv sticky/mine sticky/of-owner"
as O "rename own in sticky" "mv sticky/of-owner sticky/renamed"
as X "unlink own in sticky" "rm -f sticky/of-x"
as X "create in setgid" "touch sgid/file"
as X "mkdir in setgid" "mkdir sgid/dir"
as X "create in setgid sub" "touch sgid/dir/file"
as X "write 6777" "echo more >> suid-w"
as G "write 2666" "echo more >> sgid-noexec"
as O "chgrp 6755" "chgrp 1000 suid-u"
chown 2000 suid-root
cd ..
list
