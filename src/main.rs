//! holdup: holds a program back until the services it depends on are really ready.
//!
//! `main` only hands the command line to [`app::run`], which reads it, runs, and returns the
//! exit code, or never returns once the command is exec'd.

mod app;
mod attempt;
mod board;
mod cli;
mod condition;
mod events;
mod exec;
mod exit;
mod http_client;
mod keep;
mod kube;
mod live;
mod log;
mod net;
mod pace;
mod paths;
mod plan;
mod probe;
mod redact;
mod report;
mod schedule;
mod serve;
mod summary;
mod termination;
mod tls;
mod usage;
mod wait;
mod words;

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(app::run(std::env::args_os().collect()))
}
