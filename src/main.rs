fn main() -> std::process::ExitCode {
    hancha::cli::main()
}
