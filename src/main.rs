//! The `wxcube` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    wxcube::cli::main()
}
