//! `cargo xtask`: writes what is generated from electd's clap definition.
//!
//! ```text
//! cargo xtask man DIR           DIR/electd.1
//! cargo xtask completions DIR   DIR/electd (bash), DIR/_electd (zsh), DIR/electd.fish
//! cargo xtask flags             docs/src/reference/flags.md
//! ```

use std::path::Path;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => write(&Path::new(dir).join("electd.1"), &xtask::man_page()?),
        ["completions", dir] => {
            for (shell, name) in xtask::SHELLS {
                write(&Path::new(dir).join(name), &xtask::completions(shell))?;
            }
            Ok(())
        }
        ["flags"] => write(
            &xtask::workspace_root().join(xtask::FLAGS_REFERENCE),
            xtask::flags_reference().as_bytes(),
        ),
        _ => bail!("usage: cargo xtask man DIR | completions DIR | flags"),
    }
}

fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}
