//! holdup: holds a program back until the services it depends on are really ready.
//!
//! `main` only parses the command line (clap exits with 2 on a usage error) and hands over
//! to [`app::run`], which returns the exit code, or never returns once the command is exec'd.

mod app;
mod attempt;
mod cli;
mod exec;
mod exit;
mod http_client;
mod log;
mod net;
mod probe;
mod redact;
mod schedule;
mod tls;
mod words;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    ExitCode::from(app::run(cli::Args::parse()))
}
