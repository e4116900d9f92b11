fn main() -> std::process::ExitCode {
    fieldcheck_server::cli::main()
}
