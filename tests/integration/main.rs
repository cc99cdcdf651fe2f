//! Integration tests: the real binary against real servers on loopback.

mod support;

mod cli;
mod dns;
mod docker;
mod empty_root;
mod exec;
mod exec_target;
mod file;
mod grpc;
mod http;
mod k8s;
mod mixed;
mod postgres;
mod service_ip;
mod signals;
mod tcp;
mod unix;
