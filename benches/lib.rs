//! Criterion benchmarks of synbench-rs live in this package's bench targets.
