//! The crate's modules (files, inline modules, `#[path]`), the items and imports of each, every
//! path written in them, and rustc's resolution of a path to the module that defines its item.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::tokens::{Tok, Token, tokenize};

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
pub(super) struct Crate {
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
    pub(super) fn load(root: &Path) -> Crate {
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

    /// File edges (from, to), each with the first place it is made (`file:line path`).
    pub(super) fn edges(&self) -> BTreeMap<(String, String), String> {
        let mut edges = BTreeMap::new();
        let used_here = |site: &Site| match &site.reexport {
            None => true,
            Some(name) => self
                .words
                .get(&self.modules[site.scope].file)
                .is_some_and(|w| w.contains(name)),
        };
        for site in self.sites.iter().filter(|s| used_here(s)) {
            // Naming a module (`use crate::store;`) is no edge by itself: what is used through
            // it is.
            let Some(target @ Target::Item(_)) = self.resolve(site.scope, &site.segments, 0) else {
                continue;
            };
            let from = &self.modules[site.scope].file;
            let to = self.file_of(target);
            if from != to {
                edges
                    .entry((from.clone(), to.to_owned()))
                    .or_insert_with(|| {
                        format!("{from}:{} {}", site.line, site.segments.join("::"))
                    });
            }
        }
        edges
    }

    /// Every file of the crate (and of the binary).
    pub(super) fn files(&self) -> BTreeSet<String> {
        self.modules.iter().map(|m| m.file.clone()).collect()
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
