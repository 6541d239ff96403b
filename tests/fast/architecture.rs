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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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
///
/// Besides the sibling cycles (crypto format <-> keys <-> rewrap, fs stream <-> write, mount
/// daemon <-> serve, cli <-> tools), these hold a parent file that calls into its children
/// while they use items it defines: tools/mod.rs and mount/mod.rs dispatch to their children,
/// config.rs calls options.rs, store/mod.rs `open` calls options.rs (which opens every store),
/// and store/s3.rs calls the children that `impl S3Store`.
const KNOWN_CYCLES: &[&[&str]] = &[
    &[
        "src/cli.rs",
        "src/cli/tools.rs",
        "src/tools/cleanup.rs",
        "src/tools/doctor.rs",
        "src/tools/files.rs",
        "src/tools/keycmd.rs",
        "src/tools/mod.rs",
        "src/tools/progress.rs",
        "src/tools/rewrap.rs",
        "src/tools/verify.rs",
    ],
    &["src/config.rs", "src/config/options.rs"],
    &[
        "src/crypto/format.rs",
        "src/crypto/keys.rs",
        "src/crypto/rewrap.rs",
    ],
    &["src/fs/stream.rs", "src/fs/write.rs"],
    &[
        "src/mount/daemon.rs",
        "src/mount/init.rs",
        "src/mount/mod.rs",
        "src/mount/serve.rs",
        "src/mount/table.rs",
        "src/mount/unmount.rs",
    ],
    &[
        "src/store/dir.rs",
        "src/store/dir/object_file.rs",
        "src/store/list.rs",
        "src/store/memory.rs",
        "src/store/mod.rs",
        "src/store/options.rs",
        "src/store/rules.rs",
        "src/store/s3.rs",
        "src/store/s3/client_copy.rs",
        "src/store/s3/convert.rs",
        "src/store/s3/echo.rs",
        "src/store/s3/errors.rs",
        "src/store/s3/part_copy.rs",
        "src/store/s3/settings.rs",
        "src/store/s3/sse_headers.rs",
        "src/store/sse.rs",
        "src/store/url.rs",
    ],
];

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

// ---- tokens ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
    Str(String),
    /// Numbers, chars, lifetimes: nothing a path can be made of.
    Other,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits Rust source into tokens, dropping comments and whitespace.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let push = |out: &mut Vec<Token>, tok: Tok, line: usize| out.push(Token { tok, line });
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = line;
            let (s, next) = quoted(&c, i + 1, &mut line);
            push(&mut out, Tok::Str(s), start);
            i = next;
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
            if c.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
            push(&mut out, Tok::Other, line);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            let str_prefix = raw_prefix || matches!(word.as_str(), "b" | "c");
            if str_prefix && c.get(i) == Some(&'"') {
                let start_line = line;
                let (s, next) = if raw_prefix {
                    raw_quoted(&c, i, 0, &mut line)
                } else {
                    quoted(&c, i + 1, &mut line)
                };
                push(&mut out, Tok::Str(s), start_line);
                i = next;
            } else if raw_prefix && c.get(i) == Some(&'#') {
                let mut hashes = 0;
                while c.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if c.get(i + hashes) == Some(&'"') {
                    let start_line = line;
                    let (s, next) = raw_quoted(&c, i + hashes, hashes, &mut line);
                    push(&mut out, Tok::Str(s), start_line);
                    i = next;
                } else if word == "r" && hashes == 1 {
                    // A raw identifier, r#type.
                    let s = i + 1;
                    i = s;
                    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                        i += 1;
                    }
                    push(&mut out, Tok::Ident(c[s..i].iter().collect()), line);
                } else {
                    push(&mut out, Tok::Ident(word), line);
                }
            } else if word == "b" && c.get(i) == Some(&'\'') {
                // A byte literal b'x' or b'\n'.
                let mut j = i + 1;
                if c.get(j) == Some(&'\\') {
                    j += 1;
                }
                j += 1;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                push(&mut out, Tok::Other, line);
            } else {
                push(&mut out, Tok::Ident(word), line);
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            push(&mut out, Tok::Other, line);
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            push(&mut out, Tok::PathSep, line);
            i += 2;
        } else {
            push(&mut out, Tok::Punct(ch), line);
            i += 1;
        }
    }
    out
}

/// The body of a `"…"` literal starting after its opening quote; returns it and the index after
/// the closing quote.
fn quoted(c: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        } else {
            if c[i] == '\n' {
                *line += 1;
            }
            s.push(c[i]);
        }
        i += 1;
    }
    (s, i + 1)
}

/// A raw literal whose opening quote is at `i`, closed by a quote and `hashes` `#`s.
fn raw_quoted(c: &[char], i: usize, hashes: usize, line: &mut usize) -> (String, usize) {
    let mut j = i + 1;
    let mut s = String::new();
    while j < c.len() {
        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
            return (s, j + 1 + hashes);
        }
        if c[j] == '\n' {
            *line += 1;
        }
        s.push(c[j]);
        j += 1;
    }
    (s, j)
}

// ---- modules, items and imports ----

type ModId = usize;

#[derive(Debug, Default)]
struct Module {
    /// `crate::a::b` as ["a", "b"].
    path: Vec<String>,
    /// The file its items are written in (`src/…`).
    file: String,
    parent: Option<ModId>,
    children: BTreeMap<String, ModId>,
    /// Names of the items defined here (types, functions, consts, macros, …).
    items: BTreeSet<String>,
    /// Names brought in by `use`, to the path they stand for (as written, relative to here).
    imports: BTreeMap<String, Vec<String>>,
    /// Modules glob-imported (`use x::*`), as written.
    globs: Vec<Vec<String>>,
}

/// One place a file names something of the crate.
#[derive(Clone, Debug)]
struct Site {
    scope: ModId,
    segments: Vec<String>,
    line: usize,
    /// For a `pub use`, the name it exports: the module's surface, not a use of its own, so it
    /// adds an edge only if the file itself uses that name too.
    reexport: Option<String>,
}

#[derive(Default)]
struct Crate {
    modules: Vec<Module>,
    /// Every path found, with the module it was written in.
    sites: Vec<Site>,
    /// Per file, the words used in code outside `use` declarations, except after `.` or `::`.
    words: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Module(ModId),
    /// An item, by the module that defines it.
    Item(ModId),
}

const ITEM_KEYWORDS: [&str; 7] = ["fn", "struct", "enum", "trait", "type", "union", "static"];

impl Crate {
    fn load(root: &Path) -> Crate {
        let mut krate = Crate::default();
        let lib = krate.new_module(Vec::new(), "src/lib.rs".to_owned(), None);
        krate.parse_file(root, lib);
        // The binary is a crate of its own that reaches the library as `s3cryptfs::`.
        let main = krate.new_module(vec!["<main>".to_owned()], "src/main.rs".to_owned(), None);
        krate.parse_file(root, main);
        krate
    }

    fn new_module(&mut self, path: Vec<String>, file: String, parent: Option<ModId>) -> ModId {
        self.modules.push(Module {
            path,
            file,
            parent,
            ..Module::default()
        });
        let id = self.modules.len() - 1;
        if let Some(p) = parent {
            let name = self.modules[id].path.last().cloned().unwrap_or_default();
            self.modules[p].children.insert(name, id);
        }
        id
    }

    /// The file a `mod NAME;` in `file` loads (rustc's rules, with `#[path]`).
    fn child_file(root: &Path, file: &str, name: &str, path_attr: Option<&str>) -> String {
        let here = Path::new(file);
        let dir = here.parent().unwrap_or(Path::new(""));
        if let Some(p) = path_attr {
            return dir.join(p).to_string_lossy().into_owned();
        }
        let stem = here.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let base: PathBuf = if matches!(stem, "mod" | "lib" | "main") {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        let flat = base.join(format!("{name}.rs"));
        if root.join(&flat).exists() {
            flat.to_string_lossy().into_owned()
        } else {
            base.join(name)
                .join("mod.rs")
                .to_string_lossy()
                .into_owned()
        }
    }

    fn parse_file(&mut self, root: &Path, module: ModId) {
        let file = self.modules[module].file.clone();
        let text = std::fs::read_to_string(root.join(&file))
            .unwrap_or_else(|e| panic!("read {file}: {e}"));
        let toks = tokenize(&text);
        // What each open brace belongs to: a module's body (items are defined there) or
        // anything else (function bodies, impls, struct bodies, expressions).
        let mut frames: Vec<Option<ModId>> = vec![Some(module)];
        let mut path_attr: Option<String> = None;
        let mut i = 0;
        while i < toks.len() {
            let scope = frames.iter().rev().find_map(|f| *f).unwrap_or(module);
            let at_module_level = frames.last().is_some_and(|f| f.is_some());
            match &toks[i].tok {
                Tok::Punct('{') => {
                    frames.push(None);
                    i += 1;
                }
                Tok::Punct('}') => {
                    frames.pop();
                    i += 1;
                }
                Tok::Punct('#')
                    if matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::Punct('['))) =>
                {
                    if let (Some(Tok::Ident(a)), Some(Tok::Punct('=')), Some(Tok::Str(p))) = (
                        toks.get(i + 2).map(|t| &t.tok),
                        toks.get(i + 3).map(|t| &t.tok),
                        toks.get(i + 4).map(|t| &t.tok),
                    ) {
                        if a == "path" {
                            path_attr = Some(p.clone());
                        }
                    }
                    i += 2;
                }
                Tok::Ident(w) if w == "use" && prev_is_not_path(&toks, i) => {
                    i = self.parse_use(&toks, i + 1, scope, is_pub(&toks, i));
                }
                Tok::Ident(w) if w == "mod" && at_module_level => {
                    let Some(Tok::Ident(name)) = toks.get(i + 1).map(|t| &t.tok) else {
                        i += 1;
                        continue;
                    };
                    let name = name.clone();
                    let mut path = self.modules[scope].path.clone();
                    path.push(name.clone());
                    match toks.get(i + 2).map(|t| &t.tok) {
                        Some(Tok::Punct(';')) => {
                            assert_eq!(
                                scope, module,
                                "{file}: `mod {name};` inside an inline module is not supported here"
                            );
                            let child_file =
                                Self::child_file(root, &file, &name, path_attr.take().as_deref());
                            let child = self.new_module(path, child_file, Some(scope));
                            self.parse_file(root, child);
                            i += 3;
                        }
                        Some(Tok::Punct('{')) => {
                            let child = self.new_module(path, file.clone(), Some(scope));
                            frames.push(Some(child));
                            path_attr = None;
                            i += 3;
                        }
                        _ => i += 1,
                    }
                }
                Tok::Ident(w) if at_module_level && self.is_item_start(&toks, i, w) => {
                    if let Some(Tok::Ident(name)) = toks.get(i + 1).map(|t| &t.tok) {
                        self.modules[scope].items.insert(name.clone());
                    }
                    path_attr = None;
                    i += 1;
                }
                Tok::Ident(_) | Tok::Punct('$') => {
                    i = self.parse_code_path(&toks, i, scope);
                }
                _ => i += 1,
            }
        }
    }

    /// Whether `toks[i]` (the word `w`) starts an item definition whose name follows it.
    fn is_item_start(&self, toks: &[Token], i: usize, w: &str) -> bool {
        let next = toks.get(i + 1).map(|t| &t.tok);
        let Some(Tok::Ident(name)) = next else {
            // `macro_rules! name`
            return w == "macro_rules";
        };
        match w {
            "const" => !matches!(name.as_str(), "fn" | "unsafe" | "async" | "extern" | "_"),
            "static" => name != "mut",
            "mut" => {
                matches!(toks.get(i.wrapping_sub(1)).map(|t| &t.tok), Some(Tok::Ident(s)) if s == "static")
            }
            "union" => matches!(toks.get(i + 2).map(|t| &t.tok), Some(Tok::Punct('{' | '<'))),
            _ => ITEM_KEYWORDS.contains(&w),
        }
    }

    /// A `use` tree starting at `toks[i]`; returns the index after its `;`.
    fn parse_use(&mut self, toks: &[Token], mut i: usize, scope: ModId, reexport: bool) -> usize {
        let line = toks.get(i).map_or(0, |t| t.line);
        let mut leaves = Vec::new();
        if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::PathSep)) {
            i += 1;
        }
        i = use_tree(toks, i, &mut Vec::new(), &mut leaves);
        while i < toks.len() && toks[i].tok != Tok::Punct(';') {
            i += 1;
        }
        for leaf in leaves {
            match leaf {
                UseLeaf::Name { path, name } => {
                    if name != "_" {
                        self.modules[scope]
                            .imports
                            .insert(name.clone(), path.clone());
                    }
                    self.sites.push(Site {
                        scope,
                        segments: path,
                        line,
                        reexport: reexport.then_some(name),
                    });
                }
                UseLeaf::Glob(path) => {
                    self.modules[scope].globs.push(path.clone());
                    self.sites.push(Site {
                        scope,
                        segments: path,
                        line,
                        reexport: reexport.then(String::new),
                    });
                }
            }
        }
        i + 1
    }

    /// A path in code starting at `toks[i]` (`crate::…`, `super::…`, `self::…`, `$crate::…`,
    /// `NAME::…`); records it and returns the index after it.
    fn parse_code_path(&mut self, toks: &[Token], mut i: usize, scope: ModId) -> usize {
        if !prev_is_not_path(toks, i) {
            return i + 1;
        }
        if toks[i].tok == Tok::Punct('$') {
            // `$crate` in a macro_rules body.
            i += 1;
            if !matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Ident(w)) if w == "crate") {
                return i;
            }
        }
        let line = toks[i].line;
        if let Tok::Ident(w) = &toks[i].tok {
            let file = self.modules[scope].file.clone();
            self.words.entry(file).or_default().insert(w.clone());
        }
        let mut segments = Vec::new();
        while let Some(Tok::Ident(w)) = toks.get(i).map(|t| &t.tok) {
            segments.push(w.clone());
            i += 1;
            if toks.get(i).map(|t| &t.tok) == Some(&Tok::PathSep)
                && matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::Ident(_)))
            {
                i += 1;
            } else {
                break;
            }
        }
        if segments.len() > 1 {
            self.sites.push(Site {
                scope,
                segments,
                line,
                reexport: None,
            });
        }
        i
    }

    // ---- resolution ----

    fn root_of(&self, mut m: ModId) -> ModId {
        while let Some(p) = self.modules[m].parent {
            m = p;
        }
        m
    }

    /// The module or item `segments` names when written in `scope`; `None` for anything outside
    /// the crate (std, dependencies, locals).
    fn resolve(&self, scope: ModId, segments: &[String], depth: usize) -> Option<Target> {
        if depth > 32 || segments.is_empty() {
            return None;
        }
        let lib: ModId = 0;
        let (mut cur, rest) = match segments[0].as_str() {
            "crate" => (Target::Module(self.root_of(scope)), &segments[1..]),
            // The binary reaches the library by its name.
            "s3cryptfs" if self.root_of(scope) != lib => (Target::Module(lib), &segments[1..]),
            "self" => (Target::Module(scope), &segments[1..]),
            "super" => {
                let mut m = scope;
                let mut k = 0;
                while segments.get(k).map(String::as_str) == Some("super") {
                    m = self.modules[m].parent?;
                    k += 1;
                }
                (Target::Module(m), &segments[k..])
            }
            first => (self.lookup(scope, first, depth + 1)?, &segments[1..]),
        };
        for seg in rest {
            match cur {
                Target::Module(m) => match self.lookup(m, seg, depth + 1) {
                    Some(t) => cur = t,
                    // A name this parser does not see defined (one a macro makes, say): it
                    // lives in the module the path reached.
                    None => return Some(Target::Item(m)),
                },
                // An enum variant, an associated item or method: the item's file.
                Target::Item(_) => return Some(cur),
            }
        }
        Some(cur)
    }

    /// What `name` stands for inside module `m`: a child module, an item, or an import.
    fn lookup(&self, m: ModId, name: &str, depth: usize) -> Option<Target> {
        if depth > 32 {
            return None;
        }
        let module = &self.modules[m];
        match name {
            "self" => return Some(Target::Module(m)),
            "super" => return module.parent.map(Target::Module),
            "crate" => return Some(Target::Module(self.root_of(m))),
            _ => {}
        }
        if let Some(&child) = module.children.get(name) {
            return Some(Target::Module(child));
        }
        if module.items.contains(name) {
            return Some(Target::Item(m));
        }
        if let Some(path) = module.imports.get(name) {
            // `use x::y as name` where x::y is outside the crate resolves to nothing; so does
            // an import naming itself (`use some_crate::name`, written as `name`).
            if path.len() == 1 && path[0] == name {
                return None;
            }
            return self.resolve(m, path, depth + 1);
        }
        for glob in &module.globs {
            if let Some(Target::Module(g)) = self.resolve(m, glob, depth + 1) {
                if g != m {
                    if let Some(t) = self.lookup(g, name, depth + 1) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }

    fn file_of(&self, t: Target) -> &str {
        match t {
            Target::Module(m) | Target::Item(m) => &self.modules[m].file,
        }
    }
}

/// Whether the `use` at `toks[i]` is `pub`, `pub(crate)`, `pub(super)` or `pub(in …)`.
fn is_pub(toks: &[Token], i: usize) -> bool {
    let word = |k: usize| match toks.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(w)) => w.as_str(),
        _ => "",
    };
    if i >= 1 && word(i - 1) == "pub" {
        return true;
    }
    if i >= 1 && toks[i - 1].tok == Tok::Punct(')') {
        let open = toks[..i - 1].iter().rposition(|t| t.tok == Tok::Punct('('));
        return open.is_some_and(|o| o >= 1 && word(o - 1) == "pub");
    }
    false
}

/// Whether the token before `i` leaves `toks[i]` at the start of a path (not `a::b`'s `b`, not
/// a field or method after `.`).
fn prev_is_not_path(toks: &[Token], i: usize) -> bool {
    i == 0 || !matches!(toks[i - 1].tok, Tok::PathSep | Tok::Punct('.'))
}

enum UseLeaf {
    Name { path: Vec<String>, name: String },
    Glob(Vec<String>),
}

/// One use tree (`a::b::{c, d as e, f::*, self}`) at `toks[i]`, below `prefix`; returns the index
/// after it.
fn use_tree(
    toks: &[Token],
    mut i: usize,
    prefix: &mut Vec<String>,
    out: &mut Vec<UseLeaf>,
) -> usize {
    let depth = prefix.len();
    loop {
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => break,
                        _ => i = use_tree(toks, i, prefix, out),
                    }
                }
                break;
            }
            Some(Tok::Punct('*')) => {
                out.push(UseLeaf::Glob(prefix.clone()));
                i += 1;
                break;
            }
            Some(Tok::Ident(w)) => {
                let w = w.clone();
                i += 1;
                if toks.get(i).map(|t| &t.tok) == Some(&Tok::PathSep) {
                    prefix.push(w);
                    i += 1;
                    continue;
                }
                let (path, mut name) = if w == "self" {
                    (prefix.clone(), prefix.last().cloned().unwrap_or_default())
                } else {
                    let mut p = prefix.clone();
                    p.push(w.clone());
                    (p, w)
                };
                if matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Ident(a)) if a == "as") {
                    if let Some(Tok::Ident(alias)) = toks.get(i + 1).map(|t| &t.tok) {
                        name = alias.clone();
                    }
                    i += 2;
                }
                out.push(UseLeaf::Name { path, name });
                break;
            }
            _ => break,
        }
    }
    prefix.truncate(depth);
    i
}

// ---- the graph ----

/// File edges (from, to), each with the first place it was seen (`file:line path`).
struct Graph {
    edges: BTreeMap<(String, String), String>,
    files: BTreeSet<String>,
}

impl Graph {
    fn build(root: &Path) -> Graph {
        let krate = Crate::load(root);
        let mut edges = BTreeMap::new();
        let used_here = |site: &Site| match &site.reexport {
            None => true,
            Some(name) => krate
                .words
                .get(&krate.modules[site.scope].file)
                .is_some_and(|w| w.contains(name)),
        };
        for site in krate.sites.iter().filter(|s| used_here(s)) {
            // Naming a module (`use crate::store;`) is no edge by itself: what is used through
            // it is.
            let Some(target @ Target::Item(_)) = krate.resolve(site.scope, &site.segments, 0)
            else {
                continue;
            };
            let from = &krate.modules[site.scope].file;
            let to = krate.file_of(target);
            if from != to {
                edges
                    .entry((from.clone(), to.to_owned()))
                    .or_insert_with(|| {
                        format!("{from}:{} {}", site.line, site.segments.join("::"))
                    });
            }
        }
        let files = krate.modules.iter().map(|m| m.file.clone()).collect();
        Graph { edges, files }
    }

    fn successors(&self, file: &str) -> impl Iterator<Item = &str> {
        self.edges
            .keys()
            .filter(move |(f, _)| f == file)
            .map(|(_, t)| t.as_str())
    }

    /// The strongly connected components of more than one file (Tarjan).
    fn cycles(&self) -> Vec<BTreeSet<String>> {
        struct State<'a> {
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            out: Vec<BTreeSet<String>>,
        }
        fn visit<'a>(g: &'a Graph, v: &'a str, s: &mut State<'a>) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in g.successors(v) {
                if !s.index.contains_key(w) {
                    visit(g, w, s);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if s.low[v] == s.index[v] {
                let mut comp = BTreeSet::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    comp.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    s.out.push(comp);
                }
            }
        }
        let mut s = State {
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for f in &self.files {
            if !s.index.contains_key(f.as_str()) {
                visit(self, f, &mut s);
            }
        }
        s.out.sort();
        s.out
    }

    /// Edges between different layers that [`FORBIDDEN`] lists.
    fn forbidden_edges(&self) -> Vec<(String, String)> {
        self.edges
            .keys()
            .filter(|(f, t)| {
                let (lf, lt) = (layer_of(f), layer_of(t));
                FORBIDDEN.iter().any(|(a, b)| *a == lf && *b == lt)
            })
            .cloned()
            .collect()
    }

    /// The graph as text: layers and their files, layer edges, file edges with a site each.
    fn render(&self) -> String {
        let mut out = String::new();
        let mut layers: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for f in &self.files {
            layers.entry(layer_of(f)).or_default().push(f);
        }
        let mut layer_edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for (f, t) in self.edges.keys() {
            let (lf, lt) = (layer_of(f), layer_of(t));
            if lf != lt {
                *layer_edges.entry(lf).or_default().entry(lt).or_default() += 1;
            }
        }
        out.push_str("== layers (files)\n");
        for (layer, files) in &layers {
            let _ = writeln!(out, "{layer}: {}", files.join(" "));
        }
        out.push_str("\n== layer edges (number of file edges)\n");
        for (layer, to) in &layer_edges {
            let list: Vec<String> = to.iter().map(|(t, n)| format!("{t} ({n})")).collect();
            let _ = writeln!(out, "{layer} -> {}", list.join(", "));
        }
        out.push_str("\n== file edges (first site)\n");
        for ((f, t), site) in &self.edges {
            let _ = writeln!(out, "{f} -> {t}    [{site}]");
        }
        out.push_str("\n== cycles\n");
        for c in self.cycles() {
            let _ = writeln!(
                out,
                "{}",
                c.iter().cloned().collect::<Vec<_>>().join(" <-> ")
            );
        }
        out
    }

    /// The edges inside one cycle, with their sites, to say what to cut.
    fn describe_cycle(&self, files: &BTreeSet<String>) -> String {
        let mut s = String::new();
        for ((f, t), site) in &self.edges {
            if files.contains(f) && files.contains(t) {
                let _ = writeln!(s, "    {f} -> {t}    [{site}]");
            }
        }
        s
    }
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
