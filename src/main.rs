use clap::Parser;

use darlings::cli::Cli;
use darlings::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match darlings::app::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("darlings: error: {}", darlings::sanitize::terminal_safe(&format!("{err:#}")));
            ExitCode::Incomplete.into()
        }
    }
}
