//! `partial-save` as the end-to-end tests run it: the same library as the shipped binary, built
//! by Cargo before the tests (an integration test only gets its own package's binaries).

fn main() -> std::process::ExitCode {
    partial_save::main()
}
