//! Integration tests: the real binary against real servers on loopback.

mod support;

mod cli;
mod exec;
mod http;
mod k8s;
mod signals;
mod tcp;
