//! Access checks for other users on a mount with `allow_other`, proven against a local file
//! system: one table (`perm_table.sh`: reads, writes, exec and directory search by owner,
//! group and others, ACLs, chmod/chown/utimes by non-owners, sticky and setgid directories,
//! setuid/setgid bits cleared by a non-root write or a chown) runs as other uids (`setpriv`)
//! on a directory beside the vault and on the mount; every exit code, error message, mode,
//! owner, group and ACL must be the same, before and after a remount.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::CliVault;
use crate::common::find_in_path;

const TABLE: &str = include_str!("perm_table.sh");

/// The table's output for `dir` (`what`: `all` runs it, `list` only prints the entries).
fn run_table(dir: &Path, what: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(TABLE)
        .arg("perm_table.sh")
        .arg(dir)
        .arg(what)
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the table failed in {}: {}\n{stdout}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs the table on the local directory `local`, then on `mountpoint` (a mount with
/// `allow_other`), then lists both again after `remount`: the answers must be the same.
pub fn mount_answers_as_the_local_file_system(
    local: &Path,
    mountpoint: &Path,
    remount: impl FnOnce() -> PathBuf,
) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test switches uids, so it runs as root (CI does)"
    );
    for tool in ["setpriv", "setfacl", "getfacl"] {
        assert!(
            find_in_path(tool).is_some(),
            "{tool} is needed (util-linux, acl)"
        );
    }
    let want = run_table(local, "all");
    let rows: Vec<&str> = want.lines().filter(|l| l.contains(": ")).collect();
    let allowed = rows.iter().filter(|l| l.contains(": 0 ")).count();
    assert!(
        allowed > 10 && rows.len() - allowed > 20,
        "the table allows some and refuses some ({allowed} of {}):\n{want}",
        rows.len()
    );
    assert!(
        want.contains("t/suid-w -rwxrwxrwx") && want.contains("t/sgid/dir drwxr-sr-x 2000 1000"),
        "the local file system clears setuid on write and passes a setgid directory's group:\n{want}"
    );
    let got = run_table(mountpoint, "all");
    assert_eq!(got, want, "the mount answers as the local file system does");
    let mountpoint = remount();
    assert_eq!(
        run_table(&mountpoint, "list"),
        run_table(local, "list"),
        "modes, owners and ACLs after remount"
    );
}

#[test]
fn other_users_get_the_access_checks_of_a_local_file_system() {
    let v = CliVault::init_plain();
    // Other users must reach both directories.
    std::fs::set_permissions(v.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let local = v.new_dir("local");
    let mut m = v.mount_with(&["-o", "allow_other"]);
    let mp = m.mountpoint.clone();
    mount_answers_as_the_local_file_system(&local, &mp, || {
        m.remount();
        m.mountpoint.clone()
    });
}
