//! File IO shared by every writer and reader: atomic writes (a temp file in
//! the same folder, then a rename, so a killed process never leaves half a
//! file) and typed JSON reads whose errors name the file.

use std::fs::{self, File, TryLockError};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ExperimentError, Result};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    fs::write(&tmp, bytes).map_err(|e| ExperimentError::io(&tmp, "cannot write", e))?;
    fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, "cannot move the finished file to", e))
}

/// Writes `value` as pretty JSON (with a final newline) atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ExperimentError::schema(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, (text + "\n").as_bytes())
}

/// Reads a JSON file into `T`; the error names the file and, for a value
/// that does not fit `T`, the field's path in the file (`replicates[3].train`)
/// and the line.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| ExperimentError::io(path, "cannot read", e))?;
    parse_json(path, &text)
}

/// [`read_json`] of text that came from `path`.
pub fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = format!("not a valid file of its kind: {}", e.inner());
        match field_of(&e.path().to_string(), &e.inner().to_string()) {
            Some(field) => ExperimentError::schema_field(path, field, message),
            None => ExperimentError::schema(path, message),
        }
    })?;
    de.end().map_err(|e| ExperimentError::schema(path, format!("not a valid file of its kind: {e}")))?;
    Ok(value)
}

/// The field a deserialisation error is about: its path in the file, and for
/// a missing, unknown or duplicate field (whose path is the object holding
/// it) the field's name after it; `None` for the file as a whole.
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", None) => None,
        (".", Some(name)) => Some(name.to_string()),
        (path, Some(name)) => Some(format!("{path}.{name}")),
        (path, None) => Some(path.to_string()),
    }
}

/// Creates a folder and its parents.
pub fn create_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| ExperimentError::io(path, "cannot create", e))
}

/// The lock file of a run folder.
pub const RUN_LOCK: &str = ".lock";

/// Takes `dir`'s run lock (an exclusive advisory lock on `dir/.lock`,
/// released when the returned file closes — also when the process dies),
/// creating the folder; `None` when another process holds it.
pub fn try_lock_run(dir: &Path) -> Result<Option<File>> {
    create_dir_all(dir)?;
    let path = dir.join(RUN_LOCK);
    let file = File::create(&path).map_err(|e| ExperimentError::io(&path, "cannot create", e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(ExperimentError::io(&path, "cannot lock", e)),
    }
}
