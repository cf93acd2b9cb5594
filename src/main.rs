fn main() -> std::process::ExitCode {
    lamb::run()
}
