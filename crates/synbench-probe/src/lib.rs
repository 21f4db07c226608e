//! The ε-robust Bayes probe of SPEC §3 on encoder representations, and robust
//! linear probing on real features (SPEC §6).
//!
//! Invariant: consumes plain `ndarray` features and labels, uses
//! `synbench-theory` for the QCQP, does no IO and knows nothing of encoders.
#![deny(missing_docs)]
