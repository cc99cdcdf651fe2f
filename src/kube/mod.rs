//! The Kubernetes API client every part of holdup shares: where the API server is and who
//! holdup is there ([`config`], in-cluster or a kubeconfig read through [`yaml`], with exec
//! credential plugins in [`plugin`]), the requests and the refusals in words ([`api`]),
//! resources, queries and the Role rules they need ([`resource`]), the watch stream
//! ([`watch`]), and which pod holdup runs in ([`pod`]).
//!
//! It sits beneath the probes so that `k8s://` targets and what reports on the pod itself
//! use one client, and neither imports the other.

pub mod api;
pub mod config;
pub mod plugin;
pub mod pod;
pub mod resource;
pub mod watch;
pub mod yaml;
