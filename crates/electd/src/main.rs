//! `electd`, the binary: everything is in the library's [`electd::main`].

fn main() -> std::process::ExitCode {
    electd::main()
}
