# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_s3cryptfs_global_optspecs
    string join \n log-level= allow-core-dumps h/help V/version
end

function __fish_s3cryptfs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_s3cryptfs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_s3cryptfs_using_subcommand
    set -l cmd (__fish_s3cryptfs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "init" -d 'Create a new encrypted vault in a store'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "mount" -d 'Mount a vault (returns once the mount answers; stays in the foreground with -f)'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "unmount" -d 'Unmount a vault: returns once its data is uploaded and the mount is gone'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "status" -d 'Show what running mounts are doing: uploads pending or failing, requests, cache'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "completions" -d 'Print the shell completion script for bash, zsh or fish'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "key" -d 'Key slots and key generations: list, add, remove, passwd, rotate'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "verify" -d 'Check every object of a vault (header, key, commitment, size; --deep: every block)'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "upgrade" -d 'Give every object of a vault made before attribute records a sealed record of its attributes, then make the vault require them'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "ls" -d 'List a directory of a vault without mounting it'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "cat" -d 'Write files of a vault to standard output'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "get" -d 'Copy a file or directory out of a vault (recursive; SRC_PATH / means everything)'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "put" -d 'Copy a local file or directory into a vault (recursive)'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "doctor" -d 'Check that a vault can be mounted: credentials, bucket, vault config, key, a test write with the configured SSE'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "cleanup" -d 'Abort the multipart uploads a crash left unfinished (their parts are stored, and billed, until aborted)'
complete -c s3cryptfs -n "__fish_s3cryptfs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l block-size -d 'Encryption block size in bytes: a power of two from 4096 to 1048576 [default: 65536]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l kms-key-id -d 'Create the vault unlocked through this AWS KMS key (id, alias/NAME or ARN); with --key-file or --passphrase-file as well, that is a second, offline recovery slot [or [encryption] kms_key_id]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -s c -l config -d 'TOML config file (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l plain-names -d 'Store file and directory names in plaintext (as vaults made before encrypted names); by default every name is encrypted'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand init" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -s c -l config -d 'TOML config file (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -s o -d 'Mount options, comma-separated (see below)' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l uid -d 'Owner of files that carry no owner of their own [default: you]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l gid -d 'Group of files that carry no group of their own [default: your group]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l file-mode -d 'Mode of files that carry no mode of their own [default: 0644]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l dir-mode -d 'Mode of directories that carry no mode of their own [default: 0755]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l metadata-ttl -d 'How long attributes and listings are cached, in seconds [default: 1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l block-cache-mib -d 'Memory for decrypted blocks, in MiB, within --memory-limit [default: 64]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l memory-limit -d 'Memory for the block cache, reads in flight and upload buffers of all open files together, e.g. 256M or 1G (at least 32M) [default: 64M]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l staging-dir -d 'Directory for (encrypted) staging files [default: $S3CRYPTFS_STAGING_DIR, else /var/cache/s3cryptfs/staging for root, else ~/.cache/s3cryptfs/staging]' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l log-file -d 'Once detached, append logs to this file (default: discard; -f logs to stderr)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l metrics-addr -d 'Serve Prometheus metrics at http://IP:PORT/metrics (off by default; loopback only)' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -s f -l foreground -d 'Stay in the foreground, logging to stderr'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l allow-other -d 'Let other users access the mount (same as -o allow_other)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l allow-root -d 'Let root access the mount (same as -o allow_root)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l read-only -d 'Mount read-only (same as -o ro)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l metrics-allow-remote -d 'Allow --metrics-addr on an address other than loopback (the metrics have no authentication)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand mount" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand unmount" -l timeout -d 'How long to wait for the mount daemon to exit, in seconds' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand unmount" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand unmount" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand unmount" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand unmount" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -l socket -d 'Ask the control socket at this path (another user\'s runtime directory, as root)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -l json -d 'Print JSON for scripts (one object for MOUNTPOINT, else an array)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand status" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand completions" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand completions" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand completions" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand completions" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "list" -d 'Show the key generations (and which is current) and the key slots'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "add" -d 'Add a key slot: another key file or passphrase that opens the same vault'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "remove" -d 'Remove a key slot (never the last one)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "passwd" -d 'Change the passphrase of a slot (only the vault config changes)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "rotate" -d 'Start a new key generation; optionally rewrap every object\'s key, retire old ones'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and not __fish_seen_subcommand_from list add remove passwd rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of text'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l new-key-file -d 'Key file the new slot opens with (created as a new random key, mode 0600, if missing)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l new-passphrase-file -d 'File holding the passphrase the new slot opens with (mode 0600); without any of these flags the new passphrase is asked twice on the terminal' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l new-kms-key-id -d 'AWS KMS key (id, alias/NAME or ARN) the new slot is encrypted under (kms:Encrypt)' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l label -d 'A note for `key list`, e.g. "backup" or "laptop" [default: added]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l slot -d 'The slot number, as `key list` shows it' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask for confirmation (required when not on a terminal)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l new-passphrase-file -d 'File holding the new passphrase (mode 0600); without it the new passphrase is asked twice on the terminal' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l slot -d 'The slot to change [default: the passphrase slot that unlocked the vault]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s y -l yes -d 'Do not ask for confirmation (required when not on a terminal)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l retire -d 'Remove generation N from the vault config once no object needs it any more (refused while one does; implies no new generation)' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l parallel -d 'Objects processed at once' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l rewrap -d 'Rewrap every object\'s data key under the current generation, server-side (CopyObject onto itself with new metadata; no object data is read or written)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l resume -d 'Do not start a new generation: finish an interrupted --rewrap under the current one'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -s y -l yes -d 'Do not ask for confirmation (required when not on a terminal)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from rotate" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show the key generations (and which is current) and the key slots'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a key slot: another key file or passphrase that opens the same vault'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a key slot (never the last one)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Change the passphrase of a slot (only the vault config changes)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Start a new key generation; optionally rewrap every object\'s key, retire old ones'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l deep -d 'Also decrypt and authenticate every block (reads every byte)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l json -d 'Print one JSON report on standard output'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand verify" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l json -d 'Print one JSON report on standard output'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand upgrade" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -s l -l long -d 'Long format: mode, size, modification time, name'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand ls" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cat" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand get" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand put" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l key-file -d '32-byte key file (mode 0600). `init` creates it if missing' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l passphrase-file -d 'File holding the passphrase (mode 0600; a trailing newline is ignored)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l kms-endpoint -d 'KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l accept-config-rollback -d 'Accept a vault config older than one this machine has seen (after restoring it on purpose) and remember it as the newest [or [encryption] accept_config_rollback]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l kms -d 'Unlock through the vault\'s AWS KMS key slot (the default when no key or passphrase is given and the vault has one) [or [encryption] kms]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l older-than -d 'Only uploads started at least this long ago (90s, 30m, 24h, 7d): a mount writing a large file right now has one open too' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l kms-endpoint -d 'Accepted as by every tool (cleanup asks KMS nothing)' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -s c -l config -d 'TOML config file, as for `mount` (command-line flags override it)' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l endpoint -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default: $AWS_ENDPOINT_URL, else AWS]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l region -d 'AWS region (s3:// only) [default: $AWS_REGION or the profile\'s, else us-east-1]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l sse -d 'Server-side encryption requested from the store, on top of client-side encryption (s3:// only) [default: none]' -r -f -a "none\t''
s3\t''
kms\t''
c\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l sse-kms-key-id -d 'KMS key id or ARN for --sse kms [default: the account\'s aws/s3 key]' -r
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l sse-c-key-file -d 'SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes, all of them read' -r -F
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l log-level -d 'Log level [default: info, or [logging] level]' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l dry-run -d 'Print what would be aborted; abort nothing'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l kms -d 'Accepted as by every tool; cleanup opens no vault, so it needs no key'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l plain -d 'Read a file:// folder as a plain copy of a bucket: object key = file path, no metadata, read-only (automatic when it has .s3cryptfs/config and no s3cryptfs-store.json)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l path-style -d 'Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted servers need (s3:// only)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l allow-sse-c-over-http -d 'Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text (for a test server on localhost) [default: refused]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -l allow-core-dumps -d 'Keep core dumps and ptrace access by the same user (for debugging: a dump may hold keys) [default: off, or [logging] allow_core_dumps]'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -s h -l help -d 'Print help'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand cleanup" -s V -l version -d 'Print version'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "init" -d 'Create a new encrypted vault in a store'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "mount" -d 'Mount a vault (returns once the mount answers; stays in the foreground with -f)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "unmount" -d 'Unmount a vault: returns once its data is uploaded and the mount is gone'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "status" -d 'Show what running mounts are doing: uploads pending or failing, requests, cache'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "completions" -d 'Print the shell completion script for bash, zsh or fish'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "key" -d 'Key slots and key generations: list, add, remove, passwd, rotate'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "verify" -d 'Check every object of a vault (header, key, commitment, size; --deep: every block)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "upgrade" -d 'Give every object of a vault made before attribute records a sealed record of its attributes, then make the vault require them'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "ls" -d 'List a directory of a vault without mounting it'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "cat" -d 'Write files of a vault to standard output'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "get" -d 'Copy a file or directory out of a vault (recursive; SRC_PATH / means everything)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "put" -d 'Copy a local file or directory into a vault (recursive)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "doctor" -d 'Check that a vault can be mounted: credentials, bucket, vault config, key, a test write with the configured SSE'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "cleanup" -d 'Abort the multipart uploads a crash left unfinished (their parts are stored, and billed, until aborted)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and not __fish_seen_subcommand_from init mount unmount status completions key verify upgrade ls cat get put doctor cleanup help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'Show the key generations (and which is current) and the key slots'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "add" -d 'Add a key slot: another key file or passphrase that opens the same vault'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "remove" -d 'Remove a key slot (never the last one)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "passwd" -d 'Change the passphrase of a slot (only the vault config changes)'
complete -c s3cryptfs -n "__fish_s3cryptfs_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "rotate" -d 'Start a new key generation; optionally rewrap every object\'s key, retire old ones'
