//! A `tch` build links LibTorch dynamically; torch-sys's build script says
//! where it found it (`DEP_TCH_LIBTORCH_LIB`, from its `links = "tch"`).
//! Embedding that folder as the binary's run path lets `synbench` start
//! without `LD_LIBRARY_PATH` (LibTorch's own libraries find their CUDA
//! dependencies through their run paths). When that folder is gone, the
//! `synbench` launcher (src/launch.rs) says so instead.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let unix = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux" || os == "macos");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB")
        && unix
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{lib}");
        // For the launcher's message (src/launch.rs) and its test.
        println!("cargo:rustc-env=SYNBENCH_LIBTORCH_LIB={lib}");
        // The libraries torch-sys links from there (those that exist, as it decides).
        let linked: Vec<String> =
            ["torch_cuda", "torch_cuda_cu", "torch_cuda_cpp", "torch_hip", "torch_cpu", "torch", "c10"]
                .iter()
                .map(|name| format!("lib{name}.so"))
                .filter(|file| std::path::Path::new(&lib).join(file).is_file())
                .collect();
        println!("cargo:rustc-env=SYNBENCH_LIBTORCH_LINKED={}", linked.join(":"));
    }
}
