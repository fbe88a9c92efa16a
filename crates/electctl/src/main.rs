//! `electctl`, the binary: everything is in the library's [`electctl::main`].

fn main() -> std::process::ExitCode {
    electctl::main()
}
