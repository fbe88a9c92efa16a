//! One crate's module tree, read from its source files the way rustc finds
//! them: `mod x;` in `x.rs` or `x/mod.rs` beside or below its parent, a
//! `#[path]` attribute, an inline `mod x { … }`. Modules compiled only for
//! tests are not read at all: tests may name anything.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use syn::punctuated::Punctuated;
use syn::{Attribute, Item, Meta, Token};

/// A module's index in [`Tree::modules`]; the crate root is [`ROOT`].
pub type ModId = usize;

/// The crate root's [`ModId`].
pub const ROOT: ModId = 0;

/// Reads a source file; `ErrorKind::NotFound` when there is none.
pub type Read<'a> = &'a dyn Fn(&Path) -> io::Result<String>;

pub struct Module {
    /// `["backend", "v3"]`; empty for the crate root.
    pub path: Vec<String>,
    pub parent: Option<ModId>,
    /// The file its items are written in (the enclosing file for an inline module).
    pub file: PathBuf,
    /// Its non-test items, with the bodies of its child modules taken out.
    pub items: Vec<Item>,
    pub children: BTreeMap<String, ModId>,
    /// Where `mod x;` inside it looks for `x.rs` and `x/mod.rs`.
    dir: PathBuf,
    inline: bool,
}

impl Module {
    /// `backend::v3`, or `crate` for the root.
    pub fn name(&self) -> String {
        if self.path.is_empty() {
            "crate".to_owned()
        } else {
            self.path.join("::")
        }
    }
}

pub struct Tree {
    pub modules: Vec<Module>,
    /// Each file read, by its path, for quoting the line that makes an edge.
    pub sources: BTreeMap<PathBuf, String>,
}

impl Tree {
    /// Reads the crate whose root file (`lib.rs`, `main.rs`) is `root`.
    pub fn read(root: &Path, read: Read) -> anyhow::Result<Tree> {
        let mut tree = Tree {
            modules: Vec::new(),
            sources: BTreeMap::new(),
        };
        let items = tree.parse(root, read)?.context("no such file")?;
        tree.add(
            Module {
                path: Vec::new(),
                parent: None,
                file: root.to_path_buf(),
                items,
                children: BTreeMap::new(),
                dir: root.parent().map(Path::to_path_buf).unwrap_or_default(),
                inline: false,
            },
            read,
        )?;
        Ok(tree)
    }

    /// Adds `module` and, depth first, every non-test module it declares.
    fn add(&mut self, mut module: Module, read: Read) -> anyhow::Result<ModId> {
        let id = self.modules.len();
        let declared: Vec<Item> = std::mem::take(&mut module.items);
        let mut items = Vec::with_capacity(declared.len());
        let mut children = Vec::new();
        for item in declared {
            if test_only(item_attrs(&item)) {
                continue;
            }
            match item {
                Item::Mod(mut declaration) => {
                    let name = declaration.ident.to_string();
                    let (file, dir, body, inline) = match declaration.content.take() {
                        Some((_, body)) => {
                            (module.file.clone(), module.dir.join(&name), body, true)
                        }
                        None => {
                            let (file, dir, body) =
                                self.child_file(&module, &name, &declaration.attrs, read)?;
                            (file, dir, body, false)
                        }
                    };
                    let child = Module {
                        path: [module.path.as_slice(), std::slice::from_ref(&name)].concat(),
                        parent: Some(id),
                        file,
                        items: body,
                        children: BTreeMap::new(),
                        dir,
                        inline,
                    };
                    children.push(child);
                    items.push(Item::Mod(declaration));
                }
                item => items.push(item),
            }
        }
        module.items = items;
        self.modules.push(module);
        for child in children {
            let name = child.path.last().cloned().unwrap_or_default();
            let child_id = self.add(child, read)?;
            self.modules[id].children.insert(name, child_id);
        }
        Ok(id)
    }

    /// The file of `mod name;` declared in `parent`, the directory its own
    /// `mod` declarations look in, and its items.
    fn child_file(
        &mut self,
        parent: &Module,
        name: &str,
        attrs: &[Attribute],
        read: Read,
    ) -> anyhow::Result<(PathBuf, PathBuf, Vec<Item>)> {
        if let Some(path) = path_attribute(attrs)? {
            // Relative to the file's directory, or to the inline module's
            // directory; the file then owns its directory, as a mod.rs does.
            let base = if parent.inline {
                parent.dir.clone()
            } else {
                parent
                    .file
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            };
            let file = base.join(path);
            let items = self.parse(&file, read)?.with_context(|| {
                format!(
                    "{}: `#[path] mod {name};`: no {}",
                    parent.file.display(),
                    file.display()
                )
            })?;
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok((file, dir, items));
        }
        let dir = parent.dir.join(name);
        let flat = parent.dir.join(format!("{name}.rs"));
        if let Some(items) = self.parse(&flat, read)? {
            return Ok((flat, dir, items));
        }
        let nested = dir.join("mod.rs");
        match self.parse(&nested, read)? {
            Some(items) => Ok((nested, dir, items)),
            None => bail!(
                "{}: `mod {name};`: neither {} nor {}",
                parent.file.display(),
                flat.display(),
                nested.display()
            ),
        }
    }

    /// The items of `file`, or `None` when there is no such file.
    fn parse(&mut self, file: &Path, read: Read) -> anyhow::Result<Option<Vec<Item>>> {
        let text = match read(file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let parsed = syn::parse_file(&text).map_err(|e| {
            let at = e.span().start();
            anyhow::anyhow!("{}:{}:{}: {e}", file.display(), at.line, at.column + 1)
        })?;
        self.sources.insert(file.to_path_buf(), text);
        Ok(Some(parsed.items))
    }
}

/// `#[path = "…"]`'s value, if it has one.
fn path_attribute(attrs: &[Attribute]) -> anyhow::Result<Option<String>> {
    for attr in attrs {
        if attr.path().is_ident("path") {
            let Meta::NameValue(value) = &attr.meta else {
                bail!("`#[path]` without a value");
            };
            let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(path),
                ..
            }) = &value.value
            else {
                bail!("`#[path]` whose value is not a string");
            };
            return Ok(Some(path.value()));
        }
    }
    Ok(None)
}

/// Whether these attributes make their item exist only in test builds:
/// `#[cfg(test)]` (or a `cfg` that needs `test`), `#[test]`, `#[tokio::test]`.
pub fn test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("cfg") {
            attr.parse_args::<Meta>()
                .is_ok_and(|predicate| needs_test(&predicate))
        } else {
            path.segments.last().is_some_and(|s| s.ident == "test")
        }
    })
}

/// Whether a `cfg` predicate can only hold when compiling tests.
fn needs_test(predicate: &Meta) -> bool {
    match predicate {
        Meta::Path(path) => path.is_ident("test"),
        Meta::NameValue(_) => false,
        Meta::List(list) => {
            let Ok(inner) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                inner.iter().any(needs_test)
            } else if list.path.is_ident("any") {
                !inner.is_empty() && inner.iter().all(needs_test)
            } else {
                false
            }
        }
    }
}

/// The attributes of any item.
pub fn item_attrs(item: &Item) -> &[syn::Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}
