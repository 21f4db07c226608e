//! The names of a run folder's and a sweep folder's files and their schema
//! tags: a leaf module every reader and writer shares (it imports only the
//! crate's error type).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ExperimentError, Result};

/// `run.json` in a run folder: the resolved plan, written before the first scale.
pub const RUN_FILE: &str = "run.json";
/// `results.json` in a run folder: written last, so a folder with it is complete.
pub const RESULTS_FILE: &str = "results.json";
/// The folder of the per-scale files.
pub const SCALES_DIR: &str = "scales";
/// `scores.csv` in a run folder.
pub const SCORES_CSV: &str = "scores.csv";
/// `table.md` in a run folder.
pub const TABLE_MD: &str = "table.md";
/// `report.html` in a run or a sweep folder.
pub const REPORT_FILE: &str = "report.html";
/// `sweep.json` in a sweep folder.
pub const SWEEP_FILE: &str = "sweep.json";
/// `failures.json` in a sweep folder.
pub const FAILURES_FILE: &str = "failures.json";
/// `leaderboard.csv` in a sweep folder.
pub const LEADERBOARD_CSV: &str = "leaderboard.csv";
/// `leaderboard.md` in a sweep folder.
pub const LEADERBOARD_MD: &str = "leaderboard.md";

/// Schema tag of `run.json`.
pub const RUN_SCHEMA: &str = "synbench-run/1";
/// Schema tag of a per-scale file.
pub const SCALE_SCHEMA: &str = "synbench-scale/3";
/// Scale-file schemas that are read (a finished run of an earlier version).
pub const READABLE_SCALE_SCHEMAS: [&str; 2] = [SCALE_SCHEMA, "synbench-scale/2"];
/// Schema tag of `results.json`.
pub const RESULT_SCHEMA: &str = "synbench-result/4";
/// Earlier `results.json` schemas that are still read.
pub const READABLE_RESULT_SCHEMAS: [&str; 3] = [RESULT_SCHEMA, "synbench-result/3", "synbench-result/2"];
/// Schema tag of `sweep.json`.
pub const SWEEP_SCHEMA: &str = "synbench-sweep/1";
/// Schema tag of `failures.json`.
pub const FAILURES_SCHEMA: &str = "synbench-failures/1";

/// The file of scale `index` in `dir`.
pub fn scale_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(SCALES_DIR).join(scale_file_name(index))
}

/// `scale_NNN.json`.
pub fn scale_file_name(index: usize) -> String {
    format!("scale_{index:03}.json")
}

/// The finished scale files in `dir/scales`, sorted by name.
pub fn scale_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let scale_dir = dir.join(SCALES_DIR);
    if !scale_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(&scale_dir)
        .map_err(|e| ExperimentError::io(&scale_dir, "cannot list", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("scale_"))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Whether `dir` holds a run (its `run.json` or `results.json`).
pub fn is_run_folder(dir: &Path) -> bool {
    dir.join(RUN_FILE).is_file() || dir.join(RESULTS_FILE).is_file()
}
