//! Each crate's module graph, for the rule that it has no cycle:
//! module A depends on module B when A's non-test code names B — a `use`,
//! an inline `crate::`/`super::`/`self::` path, a parent using its own
//! child, or a name taken through a re-export (`crate::Api` where the root
//! has `pub use config::Api` depends on `config`, not on the root).
//! Declaring `mod child;` alone is no dependency; code under `#[cfg(test)]`
//! is left out, since tests may name anything.
//!
//! Read from the source with `syn`, not from the compiler: paths are
//! resolved the way rustc resolves them, but macros are not expanded (their
//! token bodies are searched for paths instead) and the names a function
//! body declares are not told apart from the module's, so a local variable
//! that shares a name with a glob-imported item counts as a use of it.

mod edges;
mod graph;
mod load;
mod scope;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use graph::Graph;
pub use load::Read;

/// One crate (a library or a binary) and its module graph.
pub struct CrateGraph {
    /// `elect (lib)`, `electd (bin)`.
    pub name: String,
    pub root: PathBuf,
    pub graph: Graph,
    /// Paths into the crate that name nothing it defines (`file:line: path`):
    /// the graph may lack their edges.
    pub unresolved: Vec<String>,
}

impl CrateGraph {
    /// Reads the crate whose root file is `root`.
    pub fn read(name: &str, root: &Path, read: Read) -> anyhow::Result<CrateGraph> {
        let tree = load::Tree::read(root, read)
            .with_context(|| format!("cannot read the modules of {name} ({})", root.display()))?;
        let (graph, unresolved) = edges::graph(&tree);
        Ok(CrateGraph {
            name: name.to_owned(),
            root: root.to_path_buf(),
            graph,
            unresolved,
        })
    }

    /// Its floors bottom up (a cycle's modules together), its cycles with
    /// the line behind each step, and what could not be resolved.
    pub fn summary(&self) -> String {
        let modules = self.graph.names().len();
        let cycles = self.graph.cyclic_components().len();
        let mut text = format!(
            "{} ({}): {modules} modules, {} edges, {}\n",
            self.name,
            self.root.display(),
            self.graph.edges().len(),
            match cycles {
                0 => "acyclic".to_owned(),
                n => format!("{n} strongly connected component(s) with a cycle"),
            }
        );
        text.push_str(&self.graph.floors_text());
        text.push_str(&self.graph.cycles_text());
        for path in &self.unresolved {
            text.push_str(&format!("  unresolved: {path}\n"));
        }
        text
    }
}

/// Every library and binary crate of the workspace at `root`
/// (`crates/*/src/lib.rs`, `main.rs`, `bin/*.rs`, `bin/*/main.rs`), with
/// paths relative to `root`.
pub fn workspace(root: &Path) -> anyhow::Result<Vec<CrateGraph>> {
    let read = |path: &Path| std::fs::read_to_string(root.join(path));
    let mut crates = Vec::new();
    for package in sorted_entries(&root.join("crates"))? {
        let Some(package_name) = package.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let src = Path::new("crates").join(package_name).join("src");
        let mut roots = Vec::new();
        for (file, kind) in [("lib.rs", "lib"), ("main.rs", "bin")] {
            if root.join(&src).join(file).is_file() {
                roots.push((format!("{package_name} ({kind})"), src.join(file)));
            }
        }
        let bins = root.join(&src).join("bin");
        if bins.is_dir() {
            for bin in sorted_entries(&bins)? {
                let Some(bin_name) = bin.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let file = if bin.is_dir() {
                    src.join("bin").join(bin_name).join("main.rs")
                } else if let Some(stem) = bin_name.strip_suffix(".rs") {
                    roots.push((
                        format!("{package_name} (bin {stem})"),
                        src.join("bin").join(bin_name),
                    ));
                    continue;
                } else {
                    continue;
                };
                roots.push((format!("{package_name} (bin {bin_name})"), file));
            }
        }
        for (name, file) in roots {
            crates.push(CrateGraph::read(&name, &file, &read)?);
        }
    }
    Ok(crates)
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests;
