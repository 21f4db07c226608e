//! Library side of the `synbench` command: everything the binary does, so the
//! binary itself only parses arguments and prints.
#![cfg_attr(feature = "models", doc = include_str!("../README.md"))]
#![deny(missing_docs)]

pub mod analysis;
#[cfg(feature = "models")]
pub mod commands;
#[cfg(feature = "models")]
pub mod config;
pub mod conformance;
pub mod logging;
#[cfg(feature = "models")]
pub mod output;
#[cfg(feature = "models")]
pub mod pipeline;
pub mod plot;
