//! Library side of the `synbench` command: everything the binary does, so the
//! binary itself only parses arguments and prints.
#![deny(missing_docs)]

#[cfg(feature = "models")]
pub mod config;
pub mod conformance;
#[cfg(feature = "models")]
pub mod output;
#[cfg(feature = "models")]
pub mod pipeline;
