//! Which module a path names, as rustc resolves it, far enough for the
//! module graph: `crate`, `self`, `super`, child modules, items, and `use`
//! declarations (groups, renames, globs) followed to the module that defines
//! the item, through any chain of re-exports.

use std::collections::BTreeMap;

use syn::{Item, UseTree};

use super::load::{ModId, Module, ROOT, Tree};

/// What a name or path reaches: a module, or an item defined in one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Binding {
    /// The module, or the module that defines the item.
    pub module: ModId,
    /// The item's name where it is defined; `None` for the module itself.
    pub item: Option<String>,
    /// Whether the path can go on through it (a module, type or trait).
    can_prefix: bool,
}

impl Binding {
    fn module(module: ModId) -> Binding {
        Binding {
            module,
            item: None,
            can_prefix: true,
        }
    }
}

/// One name a `use` declaration brings into scope (a glob brings many).
#[derive(Clone, Debug)]
pub struct Import {
    /// The name it is known by here; `None` for a glob.
    pub name: Option<String>,
    /// The path it imports, as written.
    pub path: Vec<String>,
    /// The span of the imported name, for its line.
    pub span: proc_macro2::Span,
}

/// The names each module of a tree defines and imports.
pub struct Scopes<'t> {
    tree: &'t Tree,
    defined: Vec<BTreeMap<String, Vec<Binding>>>,
    /// `use` at module level: seen by the module and by paths through it.
    imports: Vec<Vec<Import>>,
    /// `use` inside function bodies: seen by the module's own code only.
    local_imports: Vec<Vec<Import>>,
}

impl<'t> Scopes<'t> {
    pub fn new(tree: &'t Tree) -> Scopes<'t> {
        let mut defined = Vec::with_capacity(tree.modules.len());
        let mut imports = Vec::with_capacity(tree.modules.len());
        for (id, module) in tree.modules.iter().enumerate() {
            let mut names: BTreeMap<String, Vec<Binding>> = BTreeMap::new();
            let mut uses = Vec::new();
            for item in &module.items {
                if let Item::Use(declaration) = item {
                    if declaration.leading_colon.is_none() {
                        flatten(&declaration.tree, &mut Vec::new(), &mut uses);
                    }
                } else if let Some((name, binding)) = definition(item, id, module) {
                    names.entry(name).or_default().push(binding);
                }
            }
            defined.push(names);
            imports.push(uses);
        }
        Scopes {
            tree,
            defined,
            imports,
            local_imports: vec![Vec::new(); tree.modules.len()],
        }
    }

    /// Makes a `use` inside a function body of `module` visible to the
    /// module's own paths.
    pub fn add_local_import(&mut self, module: ModId, import: Import) {
        self.local_imports[module].push(import);
    }

    pub fn imports(&self, module: ModId) -> &[Import] {
        &self.imports[module]
    }

    /// What `path`, written in `module`, names: empty when it leaves the
    /// crate (std, a dependency, a local variable). A path that goes on
    /// through an item (a variant, an associated item) names that item; one
    /// that names nothing the tree defines stops at the last module reached
    /// and is counted in `unresolved`.
    pub fn resolve(&self, module: ModId, path: &[String], unresolved: &mut bool) -> Vec<Binding> {
        self.resolve_in(module, path, true, &mut Vec::new(), unresolved)
    }

    fn resolve_in(
        &self,
        module: ModId,
        path: &[String],
        own_code: bool,
        visiting: &mut Vec<(ModId, String)>,
        unresolved: &mut bool,
    ) -> Vec<Binding> {
        let Some((first, rest)) = path.split_first() else {
            return Vec::new();
        };
        let mut rest = rest;
        let mut reached = match first.as_str() {
            "crate" | "$crate" => vec![Binding::module(ROOT)],
            "self" => vec![Binding::module(module)],
            "super" => {
                let mut at = self.tree.modules[module].parent;
                while let Some(("super", after)) = rest.split_first().map(|(s, r)| (s.as_str(), r))
                {
                    at = at.and_then(|m| self.tree.modules[m].parent);
                    rest = after;
                }
                match at {
                    Some(parent) => vec![Binding::module(parent)],
                    None => return Vec::new(),
                }
            }
            name => self.lookup(module, name, own_code, visiting),
        };
        if reached.is_empty() {
            return Vec::new();
        }
        let mut ends = Vec::new();
        for (i, segment) in rest.iter().enumerate() {
            let last = i + 1 == rest.len();
            let mut next = Vec::new();
            for binding in reached {
                if binding.item.is_some() {
                    ends.push(binding);
                    continue;
                }
                let found: Vec<Binding> = self
                    .lookup(binding.module, segment, false, visiting)
                    .into_iter()
                    .filter(|b| last || b.can_prefix)
                    .collect();
                if found.is_empty() {
                    *unresolved = true;
                    ends.push(binding);
                } else {
                    next.extend(found);
                }
            }
            reached = next;
        }
        ends.extend(reached);
        ends.sort();
        ends.dedup();
        ends
    }

    /// What `name` means inside `module`: what it defines, then what it
    /// imports by name, then what its globs bring.
    fn lookup(
        &self,
        module: ModId,
        name: &str,
        own_code: bool,
        visiting: &mut Vec<(ModId, String)>,
    ) -> Vec<Binding> {
        if let Some(defined) = self.defined[module].get(name) {
            return defined.clone();
        }
        let key = (module, name.to_owned());
        if visiting.contains(&key) {
            return Vec::new();
        }
        visiting.push(key);
        let imports = || {
            let local = if own_code {
                self.local_imports[module].as_slice()
            } else {
                &[]
            };
            self.imports[module].iter().chain(local)
        };
        // Resolving an import is nobody's unresolved path but the import's own.
        let mut ignored = false;
        let mut found: Vec<Binding> = imports()
            .filter(|import| import.name.as_deref() == Some(name))
            .flat_map(|import| {
                self.resolve_in(module, &import.path, own_code, visiting, &mut ignored)
            })
            .collect();
        if found.is_empty() {
            for glob in imports().filter(|import| import.name.is_none()) {
                for source in self.resolve_in(module, &glob.path, own_code, visiting, &mut ignored)
                {
                    // A glob of an enum's variants names nothing new: the
                    // `use` already leads to the enum's module.
                    if source.item.is_none() {
                        found.extend(self.lookup(source.module, name, false, visiting));
                    }
                }
            }
        }
        visiting.pop();
        found
    }
}

/// The name an item defines in the type or value namespace, and what it is.
fn definition(item: &Item, id: ModId, module: &Module) -> Option<(String, Binding)> {
    let (ident, can_prefix) = match item {
        Item::Mod(declaration) => {
            let name = declaration.ident.to_string();
            let child = *module.children.get(&name)?;
            return Some((name, Binding::module(child)));
        }
        Item::Struct(s) => (&s.ident, true),
        Item::Enum(e) => (&e.ident, true),
        Item::Union(u) => (&u.ident, true),
        Item::Trait(t) => (&t.ident, true),
        Item::TraitAlias(t) => (&t.ident, true),
        Item::Type(t) => (&t.ident, true),
        Item::Fn(f) => (&f.sig.ident, false),
        Item::Const(c) => (&c.ident, false),
        Item::Static(s) => (&s.ident, false),
        _ => return None,
    };
    Some((
        ident.to_string(),
        Binding {
            module: id,
            item: Some(ident.to_string()),
            can_prefix,
        },
    ))
}

/// Each name a `use` tree imports, with its full path.
pub fn flatten(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<Import>) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) if n.ident == "self" => out.push(Import {
            name: prefix.last().cloned(),
            path: prefix.clone(),
            span: n.ident.span(),
        }),
        UseTree::Name(n) => out.push(Import {
            name: Some(n.ident.to_string()),
            path: [prefix.as_slice(), &[n.ident.to_string()]].concat(),
            span: n.ident.span(),
        }),
        UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push(Import {
                name: Some(r.rename.to_string()),
                path,
                span: r.ident.span(),
            });
        }
        UseTree::Glob(g) => out.push(Import {
            name: None,
            path: prefix.clone(),
            span: g.star_token.spans[0],
        }),
        UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}
