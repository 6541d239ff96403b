//! The man pages in `man/`.
//!
//! - `s3cryptfs.1` and one `s3cryptfs-COMMAND.1` per subcommand are generated from the clap
//!   definitions with clap_mangen and never edited by hand: a test fails when the checked-in
//!   pages differ from what the current definitions generate. Regenerate them with
//!   `S3CRYPTFS_REGEN_MAN=1 cargo test --test integration ops_man`.
//! - `s3cryptfs.toml.5` and `mount.s3cryptfs.8` are written by hand; tests check that they
//!   document every config field of the example config and every helper option.
//! - Every page renders with `man -l` without warnings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use s3cryptfs::cli::Cli;
use s3cryptfs::cli::helper::{HELPER_OPTIONS, HELPER_SWITCHES};

const REGEN_ENV: &str = "S3CRYPTFS_REGEN_MAN";
const REGEN_COMMAND: &str = "S3CRYPTFS_REGEN_MAN=1 cargo test --test integration ops_man";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Whether `name` is one of the generated pages.
fn is_generated(name: &str) -> bool {
    name.ends_with(".1") && (name == "s3cryptfs.1" || name.starts_with("s3cryptfs-"))
}

/// The pages clap_mangen renders for the command and each visible subcommand, by file name
/// (the same set `clap_mangen::generate_to` writes).
fn generated_pages() -> BTreeMap<String, Vec<u8>> {
    fn render(cmd: &clap::Command, out: &mut BTreeMap<String, Vec<u8>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            render(sub, out);
        }
        let man = clap_mangen::Man::new(cmd.clone());
        let mut page = Vec::new();
        man.render(&mut page).expect("render man page");
        out.insert(man.get_filename(), page);
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = BTreeMap::new();
    render(&cmd, &mut pages);
    pages
}

fn checked_in_generated_pages() -> BTreeMap<String, Vec<u8>> {
    let mut pages = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(man_dir()) else {
        return pages;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_generated(&name) {
            let text = std::fs::read(entry.path()).expect("read man page");
            pages.insert(name, text);
        }
    }
    pages
}

#[test]
fn generated_pages_are_current() {
    let want = generated_pages();
    assert!(want.contains_key("s3cryptfs.1"), "{:?}", want.keys());
    assert!(want.contains_key("s3cryptfs-mount.1"), "{:?}", want.keys());
    let have = checked_in_generated_pages();
    if std::env::var_os(REGEN_ENV).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(man_dir()).expect("create man/");
        for name in have.keys().filter(|n| !want.contains_key(*n)) {
            std::fs::remove_file(man_dir().join(name)).expect("remove stale page");
            eprintln!("removed man/{name}");
        }
        for (name, page) in &want {
            if have.get(name) != Some(page) {
                std::fs::write(man_dir().join(name), page).expect("write page");
                eprintln!("wrote man/{name}");
            }
        }
        return;
    }
    let mut problems = Vec::new();
    for (name, page) in &want {
        match have.get(name) {
            None => problems.push(format!("man/{name} is missing")),
            Some(old) if old != page => problems.push(format!("man/{name} is stale")),
            Some(_) => {}
        }
    }
    for name in have.keys().filter(|n| !want.contains_key(*n)) {
        problems.push(format!(
            "man/{name} belongs to no subcommand any more and should be removed"
        ));
    }
    assert!(
        problems.is_empty(),
        "the man pages generated from the clap definitions (src/cli.rs) changed:\n  {}\n\
         Regenerate them with:\n  {REGEN_COMMAND}\nand check the result in (never edit them by \
         hand).",
        problems.join("\n  ")
    );
}

/// `man -l PAGE`: exit 0, some text, and no warnings from man or groff.
fn render_with_man(page: &Path) -> String {
    let out = Command::new("man")
        .arg("--warnings")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run man ({e}): install man-db (scripts/test.sh does)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`man -l {}` failed ({}): {stderr}",
        page.display(),
        out.status
    );
    assert!(
        stderr.trim().is_empty(),
        "`man -l {}` warned:\n{stderr}",
        page.display()
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().count() > 10,
        "`man -l {}` rendered almost nothing:\n{text}",
        page.display()
    );
    text
}

#[test]
fn every_page_renders() {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(man_dir())
        .expect("man/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "1" || e == "5" || e == "8")
        })
        .collect();
    pages.sort();
    for needed in ["s3cryptfs.1", "s3cryptfs.toml.5", "mount.s3cryptfs.8"] {
        assert!(
            pages.iter().any(|p| p.ends_with(needed)),
            "man/{needed} is missing"
        );
    }
    for page in &pages {
        render_with_man(page);
    }
}

/// `(section, field)` of every field of the example config, commented out or not.
fn example_fields() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/s3cryptfs.example.toml");
    let text = std::fs::read_to_string(path).expect("read example config");
    let mut section = String::new();
    let mut fields = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        if let Some((key, _)) = line.split_once(" = ") {
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                fields.push((section.clone(), key.to_owned()));
            }
        }
    }
    fields
}

/// `(section, field)` documented in s3cryptfs.toml.5: `.SS [section]` then `.B field` items.
fn documented_fields(page: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut fields = Vec::new();
    let mut lines = page.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix(".SS [").and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if line == ".TP" && !section.is_empty() {
            if let Some(item) = lines.peek().and_then(|l| l.strip_prefix(".B ")) {
                fields.push((section.clone(), item.trim().to_owned()));
            }
        }
    }
    fields
}

#[test]
fn the_config_page_documents_every_field() {
    let page = std::fs::read_to_string(man_dir().join("s3cryptfs.toml.5")).expect("read page");
    let example = example_fields();
    assert!(example.len() >= 20, "only {} fields found", example.len());
    let documented = documented_fields(&page);
    for field in &example {
        assert!(
            documented.contains(field),
            "man/s3cryptfs.toml.5 does not document [{}] {}: add a `.TP` / `.B {}` item under \
             `.SS [{}]` (documented: {documented:?})",
            field.0,
            field.1,
            field.1,
            field.0
        );
    }
    for field in &documented {
        assert!(
            example.contains(field),
            "man/s3cryptfs.toml.5 documents [{}] {}, which the example config \
             (packaging/s3cryptfs.example.toml) does not have",
            field.0,
            field.1
        );
    }
}

#[test]
fn the_helper_page_documents_every_option() {
    let page = std::fs::read_to_string(man_dir().join("mount.s3cryptfs.8")).expect("read page");
    for (name, _) in HELPER_OPTIONS {
        assert!(
            page.contains(&format!(".B {name}=")),
            "man/mount.s3cryptfs.8 does not document the option {name}="
        );
    }
    for (name, _) in HELPER_SWITCHES {
        assert!(
            page.contains(&format!(".B {name}\n")),
            "man/mount.s3cryptfs.8 does not document the option {name}"
        );
    }
}
