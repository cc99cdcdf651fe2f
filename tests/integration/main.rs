//! Integration tests: the real binary against real servers on loopback.

mod support;

mod amqp;
mod cli;
mod dns;
mod docker;
mod empty_root;
mod exec;
mod exec_target;
mod faults;
mod file;
mod grpc;
mod http;
mod k8s;
mod k8s_events;
mod k8s_exec;
mod k8s_objects;
mod lists;
mod live;
mod mixed;
mod modes;
mod mysql;
mod pod_condition;
mod postgres;
mod redis;
mod reporting;
mod serve;
mod service_ip;
mod signals;
mod tcp;
mod unix;
