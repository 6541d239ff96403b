//! The file graph: an edge per file naming an item another file defines, its cycles (strongly
//! connected components), its forbidden edges, and its rendering as text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::modules::Crate;
use super::{FORBIDDEN, layer_of};

/// File edges (from, to), each with the first place it was seen (`file:line path`).
pub(super) struct Graph {
    pub(super) edges: BTreeMap<(String, String), String>,
    pub(super) files: BTreeSet<String>,
}

impl Graph {
    pub(super) fn build(root: &Path) -> Graph {
        let krate = Crate::load(root);
        Graph {
            edges: krate.edges(),
            files: krate.files(),
        }
    }

    fn successors(&self, file: &str) -> impl Iterator<Item = &str> {
        self.edges
            .keys()
            .filter(move |(f, _)| f == file)
            .map(|(_, t)| t.as_str())
    }

    /// The strongly connected components of more than one file (Tarjan).
    pub(super) fn cycles(&self) -> Vec<BTreeSet<String>> {
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
    pub(super) fn forbidden_edges(&self) -> Vec<(String, String)> {
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
    pub(super) fn render(&self) -> String {
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
    pub(super) fn describe_cycle(&self, files: &BTreeSet<String>) -> String {
        let mut s = String::new();
        for ((f, t), site) in &self.edges {
            if files.contains(f) && files.contains(t) {
                let _ = writeln!(s, "    {f} -> {t}    [{site}]");
            }
        }
        s
    }
}
