//! The launcher of a `tch` build (see src/main.rs).
//!
//! The command proper, `synbench-tch`, is linked against LibTorch's shared
//! libraries; if the dynamic loader cannot find one of them (the venv it was
//! built against was removed or moved, the binary was copied to another
//! machine), it fails before `main` with `cannot open shared object file`.
//! This binary links only the standard library, so it always starts. When
//! the LibTorch libraries the build linked are all still in the folder it
//! linked them from (the run path), it execs `synbench-tch` at once with the
//! same arguments, so signals, exit codes and the terminal are the command's
//! own. Otherwise, on glibc, it asks the loader which libraries
//! `synbench-tch` would get (`LD_TRACE_LOADED_OBJECTS`, what `ldd` does: the
//! loader resolves them with the binary's run path, `LD_LIBRARY_PATH` and the
//! system cache, and exits without running it; ≈ 0.7 s with CUDA's
//! libraries, hence not on the common path) and, if one is missing, says
//! what to do instead of running it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The command this launcher runs, built beside it.
const COMMAND: &str = "synbench-tch";

/// The folder of the LibTorch the build linked (build.rs, from torch-sys),
/// embedded in `synbench-tch` as its run path.
const BUILT_AGAINST: Option<&str> = option_env!("SYNBENCH_LIBTORCH_LIB");

/// The LibTorch libraries the build linked from there, `:`-separated.
const LINKED: Option<&str> = option_env!("SYNBENCH_LIBTORCH_LINKED");

pub fn main() -> ExitCode {
    let command = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(format!("{COMMAND}{}", std::env::consts::EXE_SUFFIX)),
        Err(err) => return fail(&format!("cannot tell where this synbench binary is ({err})")),
    };
    if !command.is_file() {
        return fail(&format!(
            "this synbench is the launcher of a LibTorch (tch) build and runs {}, which is not there.\n  \
             Build the two together: `cargo build --release -p synbench-cli --features tch` (or `cargo xtask run CONFIG` \
             for a config with backend = \"tch\"); copy both binaries when you move them.",
            command.display()
        ));
    }
    if !still_in_place() {
        let missing = missing_libraries(&command);
        if !missing.is_empty() {
            return fail(&missing_message(&command, &missing));
        }
    }
    exec(&command, std::env::args_os().skip(1).collect())
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Whether every LibTorch library the build linked is still in the folder
/// it was linked from.
fn still_in_place() -> bool {
    match (BUILT_AGAINST, LINKED) {
        (Some(dir), Some(linked)) => linked.split(':').all(|lib| Path::new(dir).join(lib).is_file()),
        _ => false,
    }
}

/// The shared libraries the loader would not find for `command`, by name
/// (empty when all are found, or when the loader cannot be asked: then the
/// command runs and the loader speaks for itself).
fn missing_libraries(command: &Path) -> Vec<String> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return Vec::new();
    }
    // Under LD_TRACE_LOADED_OBJECTS glibc's loader lists the libraries and
    // exits; no argument is passed, so were it ignored the command would
    // only print its usage.
    let Ok(out) = Command::new(command).env("LD_TRACE_LOADED_OBJECTS", "1").output() else {
        return Vec::new();
    };
    parse_not_found(&String::from_utf8_lossy(&out.stdout))
}

/// The names on `name => not found` lines of the loader's trace.
fn parse_not_found(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter_map(|line| line.trim().strip_suffix("=> not found").map(|name| name.trim().to_string()))
        .collect()
}

fn missing_message(command: &Path, missing: &[String]) -> String {
    let built = match BUILT_AGAINST {
        Some(dir) if still_in_place() => format!(
            "It was built against the LibTorch in {dir} (its run path), which is still there: a library \
             LibTorch itself needs is gone (a CUDA or cuDNN package of that PyTorch install?)."
        ),
        Some(dir) => format!("It was built against the LibTorch in {dir} (its run path), which is no longer there."),
        None => "It was built without a recorded LibTorch folder.".to_string(),
    };
    format!(
        "this synbench runs on LibTorch (the tch backend), and the dynamic loader cannot find {} for {}.\n  \
         {built}\n  \
         To run it: reinstall that PyTorch (the project's venv: `cargo xtask setup libtorch`); or set LD_LIBRARY_PATH \
         to the lib folder of a PyTorch 2.9.0 install (python -c \"import torch, os; \
         print(os.path.join(os.path.dirname(torch.__file__), 'lib'))\"); or rebuild against the LibTorch you have \
         (`cargo xtask run CONFIG` for a config with backend = \"tch\"). The default build \
         (`cargo build --release -p synbench-cli`, backend flex) needs no LibTorch.",
        missing.join(", "),
        command.display()
    )
}

#[cfg(unix)]
fn exec(command: &PathBuf, args: Vec<OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    // exec returns only when it failed; usage and errors still say `synbench`.
    let err = Command::new(command).arg0("synbench").args(args).exec();
    fail(&format!("cannot run {}: {err}", command.display()))
}

#[cfg(not(unix))]
fn exec(command: &PathBuf, args: Vec<OsString>) -> ExitCode {
    match Command::new(command).args(args).status() {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| c.clamp(0, 255) as u8)),
        Err(err) => fail(&format!("cannot run {}: {err}", command.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_trace_names_what_is_missing() {
        let trace = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                     \tlibtorch_cpu.so => not found\n\
                     \tlibc10.so => /opt/torch/lib/libc10.so (0x00007f)\n\
                     \tlibtorch.so => not found\n";
        assert_eq!(parse_not_found(trace), ["libtorch_cpu.so", "libtorch.so"]);
        assert!(parse_not_found("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n").is_empty());
    }
}
