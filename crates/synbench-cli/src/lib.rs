//! Library side of the `synbench` command: everything the binary does, so the
//! binary itself only parses arguments and prints.
#![deny(missing_docs)]

pub mod conformance;
