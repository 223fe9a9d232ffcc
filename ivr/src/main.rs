fn main() -> std::process::ExitCode {
    ivr::cli::main()
}
