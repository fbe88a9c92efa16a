//! Which of electd's processes this is, chosen by its arguments: the
//! `--exec` watchdog (a hidden mode), the guardian (what the user starts,
//! unless the node only observes or opts out), or electd itself (the
//! guardian's child, or the only process).

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, LogFormat};
use crate::daemon;
use crate::settings::BAD_CONFIG;
use crate::supervise::{guardian, watchdog};

/// The `electd` binary: one of its three processes, chosen by its arguments.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == watchdog::MODE) {
        return watchdog::main(args);
    }
    let (args, guarded) = match guardian::Guarded::from_args(args) {
        Ok(guarded) => (guarded.args.clone(), Some(guarded)),
        Err(args) => (args, None),
    };
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                // A reader that stops early (`electd --help | head`) is no
                // failure of ours: write what it takes, never panic.
                use std::io::Write;
                let _ = write!(std::io::stdout(), "{err}");
                return ExitCode::SUCCESS;
            }
            let rendered = err.to_string();
            let line = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("electd: {}", line.trim_start_matches("error: "));
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let mut settings = match cli.validate() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("electd: {message}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    match guarded {
        Some(guarded) => {
            settings.election = settings.election.with_on_claim(guarded.hook());
        }
        // A node that may lead gets a guardian.
        None if !settings.observe && !settings.no_guardian => {
            init_logging(settings.log_format);
            return guardian::main(&args, &settings.election);
        }
        None => {}
    }
    if settings.exec.is_some()
        && let Err(err) = rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
    {
        // Without it, what a dead watchdog leaves would go to init, out of reach.
        eprintln!("electd: --exec needs to be a child subreaper, and cannot: {err}");
        return ExitCode::FAILURE;
    }
    init_logging(settings.log_format);
    daemon::run_electd(settings)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
