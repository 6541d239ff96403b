//! The import graph of `src/`, and the rules it must follow: no cycle between files, and no
//! edge the layering forbids (see [`FORBIDDEN`]).
//!
//! An edge is a file naming an item defined in another file: a `use crate::…`, `use super::…`,
//! `use self::…` (or a `use` of a child module by its bare name), or such a path in code, in
//! attributes and in macro bodies. Paths are resolved the way rustc resolves them, far enough to
//! find the file that *defines* the item: `pub use x::Y` in a `mod.rs` makes `super::Y` an edge
//! to the file defining `Y`, not to the `mod.rs`. Test code in `src/` counts too (test modules are
//! leaves: nothing imports them, so they never close a cycle).
//!
//! Design decisions:
//! - Plain text parsing with a small tokenizer (comments and literals dropped, `r#"…"#` and
//!   char-vs-lifetime handled) instead of `syn`: paths inside macro calls and attributes are
//!   token sequences either way, and no dependency is added for one test.
//! - `S3CRYPTFS_IMPORT_GRAPH=1` prints the graph (layers, layer edges, file edges with one
//!   example site each) for docs/ARCHITECTURE.md; `scripts/import-graph.sh` runs exactly that.

mod graph;
mod modules;
mod tokens;

use std::collections::BTreeSet;
use std::path::Path;

use graph::Graph;

/// Layer edges the architecture forbids: (from, to), by [`layer_of`].
const FORBIDDEN: [(&str, &str); 9] = [
    ("store", "fs"),
    ("store", "crypto"),
    ("crypto", "store"),
    ("crypto", "fs"),
    ("fs", "fuse"),
    ("fs", "mount"),
    ("fs", "cli"),
    ("fs", "tools"),
    ("tools", "mount"),
];

/// Import cycles that exist today, each the set of files of one strongly connected component.
/// THIS LIST MUST BE EMPTY: it only records what is left to untangle. An entry that no longer
/// matches the code fails the test too, so the list always says exactly what is left (the
/// failure lists the edges inside each cycle).
const KNOWN_CYCLES: &[&[&str]] = &[];

/// Forbidden edges that exist today, (from file, to file). THIS LIST MUST BE EMPTY, like
/// [`KNOWN_CYCLES`].
const KNOWN_EDGES: &[(&str, &str)] = &[];

/// The layer a file belongs to: its top-level module, except that the FUSE adapter (wherever
/// it lives, `src/fs/fuse.rs` or `src/fuse…`) is a layer of its own.
fn layer_of(file: &str) -> String {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    if rel == "fs/fuse.rs" || rel.starts_with("fs/fuse/") || rel.starts_with("fuse") {
        return "fuse".to_owned();
    }
    let top = rel.split('/').next().unwrap_or(rel);
    top.strip_suffix(".rs").unwrap_or(top).to_owned()
}

fn graph() -> Graph {
    Graph::build(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn no_import_cycles_and_no_forbidden_edges() {
    let g = graph();
    if std::env::var("S3CRYPTFS_IMPORT_GRAPH").as_deref() == Ok("1") {
        println!("{}", g.render());
    }
    let mut problems = Vec::new();

    let known: Vec<BTreeSet<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|f| (*f).to_owned()).collect())
        .collect();
    let found = g.cycles();
    for c in &found {
        if !known.contains(c) {
            problems.push(format!(
                "import cycle between {}:\n{}",
                c.iter().cloned().collect::<Vec<_>>().join(", "),
                g.describe_cycle(c)
            ));
        }
    }
    for c in &known {
        if !found.contains(c) {
            problems.push(format!(
                "KNOWN_CYCLES lists {c:?}, which is no longer a cycle as listed: update the list"
            ));
        }
    }

    let edges = g.forbidden_edges();
    for (f, t) in &edges {
        if !KNOWN_EDGES.contains(&(f.as_str(), t.as_str())) {
            problems.push(format!(
                "forbidden edge {} -> {}: {f} -> {t}    [{}]",
                layer_of(f),
                layer_of(t),
                g.edges[&(f.clone(), t.clone())]
            ));
        }
    }
    for (f, t) in KNOWN_EDGES {
        if !edges.contains(&((*f).to_owned(), (*t).to_owned())) {
            problems.push(format!(
                "KNOWN_EDGES lists {f} -> {t}, which is gone: remove it from the list"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The parser on a small crate whose edges are known: re-exports resolve to the defining file,
/// a `pub use` alone is no edge, naming a module is no edge, and literals, comments, lifetimes,
/// `#[path]`, inline test modules and `$crate` are read the way rustc reads them.
#[test]
fn the_parser_finds_exactly_the_edges_rustc_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        (
            "src/lib.rs",
            r##"pub mod a;
mod b;
#[path = "c_impl.rs"]
mod c;
// crate::b::Hidden in a comment, /* crate::b::Hidden */ in a block comment
fn strings() -> &'static str {
    let _q = '"';
    let _r = r#"crate::b::Hidden"#;
    "crate::b::Hidden"
}
"##,
        ),
        (
            "src/a/mod.rs",
            "mod inner;\npub use inner::Thing;\npub use inner::Used;\npub struct Local;\n\
             pub fn f() -> Used { Used }\n",
        ),
        (
            "src/a/inner.rs",
            "pub struct Thing;\npub struct Used;\npub fn g<'a>(x: &'a str) -> &'a str { x }\n",
        ),
        (
            "src/b.rs",
            "use crate::a::Thing;\nuse crate::a;\npub struct Hidden;\n\
             fn h() -> a::Local { a::Local }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { let _ = crate::c::C; }\n}\n",
        ),
        (
            "src/c_impl.rs",
            "pub struct C;\nmacro_rules! m { () => { $crate::b::Hidden } }\n",
        ),
        ("src/main.rs", "use s3cryptfs::a::Thing;\nfn main() {}\n"),
    ];
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let g = Graph::build(dir.path());
    let edges: Vec<(&str, &str)> = g
        .edges
        .keys()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("src/a/mod.rs", "src/a/inner.rs"),
            ("src/b.rs", "src/a/inner.rs"),
            ("src/b.rs", "src/a/mod.rs"),
            ("src/b.rs", "src/c_impl.rs"),
            ("src/c_impl.rs", "src/b.rs"),
            ("src/main.rs", "src/a/inner.rs"),
        ],
        "\n{}",
        g.render()
    );
    let cycle: BTreeSet<String> = ["src/b.rs", "src/c_impl.rs"].map(String::from).into();
    assert_eq!(g.cycles(), [cycle]);
}
