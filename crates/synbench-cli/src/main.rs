//! The `synbench` binary. In a build without LibTorch it is the command
//! itself; in a `tch` build it is a launcher that links nothing of LibTorch,
//! checks that the dynamic loader can find LibTorch for `synbench-tch` (the
//! command, built beside it) and then becomes it — so a missing LibTorch gets
//! a message that says what to do instead of a loader error before `main`.

#[cfg(not(feature = "tch"))]
// The flex backend allocates a fresh buffer per tensor op; glibc serves the
// large ones with mmap and munmap, so every forward pass page-faults its
// activations back in (≈ 7 % of samples in kernel page-fault and page-clear
// code under perf). mimalloc reuses the freed pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(feature = "tch"))]
fn main() -> std::process::ExitCode {
    synbench_cli::app::main()
}

#[cfg(feature = "tch")]
mod launch;

#[cfg(feature = "tch")]
fn main() -> std::process::ExitCode {
    launch::main()
}
