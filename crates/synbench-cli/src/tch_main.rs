//! `synbench-tch`: the `synbench` command of a `tch` build, linked with
//! LibTorch. Users run `synbench`, the launcher beside it (src/launch.rs),
//! which checks that LibTorch can be loaded and then execs this binary.

// As in src/main.rs: mimalloc reuses the pages flex's per-op buffers free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    synbench_cli::app::main()
}
