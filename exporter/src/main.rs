//! `partial-save`'s entry point: the tool is the library (`src/lib.rs`).

fn main() -> std::process::ExitCode {
    partial_save::main()
}
