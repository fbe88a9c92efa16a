//! Where each module's non-test code names another module: its `use`
//! declarations, and every path in its types, expressions and patterns and
//! in the token bodies of its macro calls (`format!`, `tracing::info!`,
//! `tokio::select!`…), resolved to the module that defines what it names.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, TraitItem};

use super::graph::{Evidence, Graph};
use super::load::{ModId, Tree, item_attrs, test_only};
use super::scope::{Import, Scopes, flatten};

/// The module graph of `tree`, and the paths into the crate that name
/// nothing it defines (`file:line: path`): the resolver missed something.
pub fn graph(tree: &Tree) -> (Graph, Vec<String>) {
    let mut scopes = Scopes::new(tree);
    let mut local = Vec::new();
    for (id, module) in tree.modules.iter().enumerate() {
        let mut finder = LocalUses::default();
        // Module-level `use` declarations are in the scope already.
        for item in module.items.iter().filter(|i| !matches!(i, Item::Use(_))) {
            finder.visit_item(item);
        }
        local.extend(finder.found.into_iter().map(|import| (id, import)));
    }
    for (id, import) in &local {
        scopes.add_local_import(*id, import.clone());
    }
    let mut graph = Graph::new(tree.modules.iter().map(|m| m.name()).collect());
    let mut unresolved = Vec::new();
    for (id, module) in tree.modules.iter().enumerate() {
        let mut paths = Paths {
            tree,
            scopes: &scopes,
            module: id,
            file: module.file.clone(),
            graph: &mut graph,
            unresolved: &mut unresolved,
        };
        let locals = local.iter().filter(|(m, _)| *m == id).map(|(_, i)| i);
        for import in scopes.imports(id).iter().chain(locals) {
            paths.name(&import.path, import.span, true);
        }
        for item in &module.items {
            paths.visit_item(item);
        }
    }
    (graph, unresolved)
}

/// The `use` declarations inside function bodies.
#[derive(Default)]
struct LocalUses {
    found: Vec<Import>,
}

impl<'ast> Visit<'ast> for LocalUses {
    fn visit_item(&mut self, item: &'ast Item) {
        if test_only(item_attrs(item)) {
            return;
        }
        match item {
            Item::Use(declaration) => {
                if declaration.leading_colon.is_none() {
                    flatten(&declaration.tree, &mut Vec::new(), &mut self.found);
                }
            }
            // Child modules are modules of their own.
            Item::Mod(_) => {}
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        if !test_only(impl_item_attrs(item)) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        if !test_only(trait_item_attrs(item)) {
            visit::visit_trait_item(self, item);
        }
    }
}

/// Records an edge for each path of one module's non-test code.
struct Paths<'a> {
    tree: &'a Tree,
    scopes: &'a Scopes<'a>,
    module: ModId,
    file: PathBuf,
    graph: &'a mut Graph,
    unresolved: &'a mut Vec<String>,
}

impl Paths<'_> {
    /// Records what `path`, written at `span`, names. A single name that
    /// reaches a module is a value or type of the same name (modules are
    /// only named on the way to something, or by `use`), unless `names_module`.
    fn name(&mut self, path: &[String], span: Span, names_module: bool) {
        let mut unresolved = false;
        let reached = self.scopes.resolve(self.module, path, &mut unresolved);
        let line = span.start().line;
        if unresolved {
            self.unresolved.push(format!(
                "{}:{line}: {}",
                self.file.display(),
                path.join("::")
            ));
        }
        for binding in reached {
            if binding.module == self.module || (binding.item.is_none() && !names_module) {
                continue;
            }
            let name = binding
                .item
                .unwrap_or_else(|| self.tree.modules[binding.module].name());
            let text = self.tree.sources[&self.file]
                .lines()
                .nth(line.saturating_sub(1))
                .unwrap_or_default()
                .trim()
                .to_owned();
            self.graph.add(
                self.module,
                binding.module,
                Evidence {
                    name,
                    file: self.file.clone(),
                    line,
                    text,
                },
            );
        }
    }

    /// The paths in a macro call's tokens: `a::b::c`, `$crate::x`, not a
    /// field or method after `.`.
    fn scan(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            let TokenTree::Ident(first) = &tokens[i] else {
                if let TokenTree::Group(group) = &tokens[i] {
                    self.scan(group.stream());
                }
                i += 1;
                continue;
            };
            let punct_before = |back: usize| match i.checked_sub(back).map(|b| &tokens[b]) {
                Some(TokenTree::Punct(p)) => Some(p.as_char()),
                _ => None,
            };
            let mut path = vec![first.to_string()];
            match (punct_before(2), punct_before(1)) {
                // A field or method, or the rest of a path already read
                // (or of one from outside the crate: `::std::…`).
                (_, Some('.')) | (Some(':'), Some(':')) => {
                    i += 1;
                    continue;
                }
                (_, Some('$')) if first == "crate" => path[0] = "$crate".to_owned(),
                // A macro_rules! variable.
                (_, Some('$')) => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let mut next = i + 1;
            while let (
                Some(TokenTree::Punct(a)),
                Some(TokenTree::Punct(b)),
                Some(TokenTree::Ident(segment)),
            ) = (tokens.get(next), tokens.get(next + 1), tokens.get(next + 2))
            {
                if a.as_char() != ':' || b.as_char() != ':' {
                    break;
                }
                path.push(segment.to_string());
                next += 3;
            }
            self.name(&path, first.span(), false);
            i = next;
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if test_only(item_attrs(item)) {
            return;
        }
        match item {
            // Child modules are modules of their own; `use` declarations
            // were recorded with the module's imports.
            Item::Mod(_) | Item::Use(_) => {}
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        if !test_only(impl_item_attrs(item)) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        if !test_only(trait_item_attrs(item)) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        if !test_only(&field.attrs) {
            visit::visit_field(self, field);
        }
    }

    fn visit_variant(&mut self, variant: &'ast syn::Variant) {
        if !test_only(&variant.attrs) {
            visit::visit_variant(self, variant);
        }
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        if !test_only(&arm.attrs) {
            visit::visit_arm(self, arm);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !test_only(&local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_field_value(&mut self, field: &'ast syn::FieldValue) {
        if !test_only(&field.attrs) {
            visit::visit_field_value(self, field);
        }
    }

    // Attributes (docs, derives, `cfg`) name nothing the graph counts.
    fn visit_attribute(&mut self, _: &'ast Attribute) {}

    // `pub(in crate::x)` is a visibility, not a dependency.
    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none()
            && let Some(first) = path.segments.first()
        {
            let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.name(&segments, first.ident.span(), false);
        }
        visit::visit_path(self, path);
    }

    // A macro's own path is in the macro namespace, which holds no modules;
    // its tokens may hold paths.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.scan(mac.tokens.clone());
    }
}

fn impl_item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(i) => &i.attrs,
        ImplItem::Fn(i) => &i.attrs,
        ImplItem::Type(i) => &i.attrs,
        ImplItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}

fn trait_item_attrs(item: &TraitItem) -> &[Attribute] {
    match item {
        TraitItem::Const(i) => &i.attrs,
        TraitItem::Fn(i) => &i.attrs,
        TraitItem::Type(i) => &i.attrs,
        TraitItem::Macro(i) => &i.attrs,
        _ => &[],
    }
}
