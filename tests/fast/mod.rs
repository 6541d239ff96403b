//! The fast tier: what plain `cargo test` runs. Nothing here mounts or needs a server.

mod architecture;
pub(crate) mod cli_errors;
mod config;
mod format_vectors;
mod fs_conflict;
mod fs_layer;
mod fs_model;
mod fs_names;
mod fs_stream;
mod hostile_bucket;
mod name_vectors;
mod ops_completions;
mod ops_deb;
mod ops_man;
mod ops_status;
mod ops_systemd;
pub(crate) mod store_conformance;
mod tools_cli;
pub(crate) mod tools_doctor;
mod tools_files;
mod tools_rewrap;
mod tools_verify;
mod upgrade_vector;
