//! Cross-crate tests of synbench-rs live in this package's test targets.
