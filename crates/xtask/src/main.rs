//! `cargo xtask`: writes what is generated from electd's and electctl's clap
//! definitions, and shows each crate's module graph.
//!
//! ```text
//! cargo xtask man DIR           DIR/electd.1, DIR/electctl.1
//! cargo xtask completions DIR   DIR/electd (bash), DIR/_electd (zsh), DIR/electd.fish,
//!                               and the same three for electctl
//! cargo xtask flags             docs/src/reference/flags.md
//! cargo xtask modules           each crate's module graph: floors, cycles
//! cargo xtask modules --edges   … and every edge with the lines that make it
//! cargo xtask modules --dot     … as Graphviz
//! ```

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use xtask::Program;
use xtask::modules::CrateGraph;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => {
            for program in Program::ALL {
                let page = xtask::man_page(program)?;
                write(&Path::new(dir).join(format!("{}.1", program.name())), &page)?;
            }
            Ok(())
        }
        ["completions", dir] => {
            for program in Program::ALL {
                for shell in xtask::SHELLS {
                    let name = xtask::completions_file(shell, program);
                    write(
                        &Path::new(dir).join(name),
                        &xtask::completions(shell, program),
                    )?;
                }
            }
            Ok(())
        }
        ["flags"] => write(
            &xtask::workspace_root().join(xtask::FLAGS_REFERENCE),
            xtask::flags_reference().as_bytes(),
        ),
        ["modules", how @ ..] => modules(how),
        _ => bail!(
            "usage: cargo xtask man DIR | completions DIR | flags | modules [--edges | --dot]"
        ),
    }
}

fn modules(how: &[&str]) -> anyhow::Result<()> {
    let show: fn(&CrateGraph) -> String = match how {
        [] => CrateGraph::summary,
        ["--edges"] => |krate| format!("{}{}", krate.summary(), krate.graph.edges_text()),
        ["--dot"] => |krate| krate.graph.dot(&krate.name),
        _ => bail!("usage: cargo xtask modules [--edges | --dot]"),
    };
    let text: String = xtask::modules::workspace(&xtask::workspace_root())?
        .iter()
        .map(show)
        .collect();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // Read by `head`, say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write to stdout"),
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
