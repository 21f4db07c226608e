//! Library side of the `synbench` command: what the binary does beyond the
//! run itself (which is synbench-experiment's), so the binary only parses
//! arguments and prints.
#![cfg_attr(feature = "models", doc = include_str!("../README.md"))]
#![deny(missing_docs)]

pub mod analysis;
pub mod app;
pub mod commands;
pub mod conformance;
pub mod logging;
/// `run` and `encode`: the subcommands that need an encoder (feature `models`).
#[cfg(feature = "models")]
pub mod run;
