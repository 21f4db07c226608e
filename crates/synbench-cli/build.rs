//! A `tch` build links LibTorch dynamically; torch-sys's build script says
//! where it found it (`DEP_TCH_LIBTORCH_LIB`, from its `links = "tch"`).
//! Embedding that folder as the binary's run path lets `synbench` start
//! without `LD_LIBRARY_PATH` (LibTorch's own libraries find their CUDA
//! dependencies through their run paths).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let unix = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux" || os == "macos");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB")
        && unix
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{lib}");
    }
}
