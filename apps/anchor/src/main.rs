use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    anchor::main(anchor::Cli::parse())
}
