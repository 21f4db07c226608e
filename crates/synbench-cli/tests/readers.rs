//! The readers never panic and never score a damaged file silently: every
//! field of every file a run folder holds (`results.json`, the scale files,
//! and `run.json` of a killed run) is mutated — dropped, duplicated,
//! truncated, retyped, set to NaN, set out of its range — and each mutation
//! must end either in an error that names the file and a field, or in scores
//! identical to the unmutated folder's: read through the library (what
//! `synbench.load` calls, in this process, a panic caught) and, one in 25,
//! through the binary (`synbench score DIR`: exit 2 with the error, never 101).
//!
//! The fields are enumerated, not sampled at random: each distinct field
//! (array indices folded) at its first and its last occurrence, with every
//! mutation that applies to its JSON type.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};
use synbench_experiment::{RunScores, SavedRun};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-readers-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small identity run (d = 6, 2 scales, 120 + 120, two ε) in `dir/out`.
fn identity_run(dir: &Path) -> PathBuf {
    let config = dir.join("config.toml");
    fs::write(
        &config,
        "[model]\narch = \"identity\"\nbatch_size = 50\n[data]\nshape = [6]\nscales = [0.5, 1.5]\nn_train = 120\n\
         n_test = 120\nseed = 5\n[probe]\nepsilons = [0.0, 0.2]\n[score]\nthresholds = [0.6, 0.8]\n[output]\ndir = \"out\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_synbench")).args(["run"]).arg(&config).arg("--quiet").output().unwrap();
    assert!(out.status.success(), "synbench run: {}", String::from_utf8_lossy(&out.stderr));
    dir.join("out")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mutation {
    Drop,
    Duplicate,
    Truncate,
    Retype,
    NaN,
    OutOfRange,
}

const MUTATIONS: [Mutation; 6] =
    [Mutation::Drop, Mutation::Duplicate, Mutation::Truncate, Mutation::Retype, Mutation::NaN, Mutation::OutOfRange];

/// A step into a JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every path in `value` (the root excluded), depth first.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The field a path is of, indices folded (`replicates[].train[].accuracy`).
fn field_of(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

fn get<'a>(value: &'a Value, path: &[Step]) -> &'a Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &v[k.as_str()],
        Step::Index(i) => &v[*i],
    })
}

fn parent_mut<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path[..path.len() - 1].iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// JSON text of `value` with the entry at `path` written twice (a duplicate
/// key for an object entry, which `Value` cannot hold).
fn with_duplicate_key(value: &Value, path: &[Step]) -> String {
    fn write(value: &Value, path: Option<&[Step]>) -> String {
        match value {
            Value::Object(map) => {
                let mut parts = Vec::new();
                for (k, v) in map {
                    let here = path.and_then(|p| match p.first() {
                        Some(Step::Key(key)) if key == k => Some(&p[1..]),
                        _ => None,
                    });
                    let text = format!("{}: {}", Value::String(k.clone()), write(v, here.filter(|r| !r.is_empty())));
                    if here.is_some_and(<[Step]>::is_empty) {
                        parts.push(text.clone());
                    }
                    parts.push(text);
                }
                format!("{{{}}}", parts.join(", "))
            }
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let here = path.and_then(|p| match p.first() {
                            Some(Step::Index(j)) if *j == i => Some(&p[1..]),
                            _ => None,
                        });
                        write(v, here.filter(|r| !r.is_empty()))
                    })
                    .collect();
                format!("[{}]", parts.join(", "))
            }
            other => other.to_string(),
        }
    }
    write(value, Some(path))
}

/// The file's text after `mutation` at `path`, or `None` where it does not apply.
fn mutate(value: &Value, path: &[Step], mutation: Mutation) -> Option<String> {
    let target = get(value, path).clone();
    let mut v = value.clone();
    let last = path.last()?;
    let set = |v: &mut Value, new: Value| {
        let parent = parent_mut(v, path);
        match last {
            Step::Key(k) => parent[k.as_str()] = new,
            Step::Index(i) => parent[*i] = new,
        }
    };
    match mutation {
        Mutation::Drop => {
            let parent = parent_mut(&mut v, path);
            match (parent, last) {
                (Value::Object(map), Step::Key(k)) => drop(map.remove(k)),
                (Value::Array(items), Step::Index(i)) => drop(items.remove(*i)),
                _ => return None,
            }
        }
        Mutation::Duplicate => match last {
            Step::Key(_) => return Some(with_duplicate_key(value, path)),
            Step::Index(i) => {
                let Value::Array(items) = parent_mut(&mut v, path) else { return None };
                items.insert(*i, target);
            }
        },
        Mutation::Truncate => match target {
            Value::Array(items) if !items.is_empty() => set(&mut v, Value::Array(items[..items.len() / 2].to_vec())),
            Value::String(s) if !s.is_empty() => {
                set(&mut v, Value::String(s.chars().take(s.chars().count() / 2).collect()))
            }
            _ => return None,
        },
        Mutation::Retype => {
            let new = match target {
                Value::Number(n) => Value::String(n.to_string()),
                Value::String(_) => Value::from(1),
                Value::Bool(b) => Value::String(b.to_string()),
                Value::Array(_) => Value::Object(Map::new()),
                Value::Object(_) => Value::Array(Vec::new()),
                Value::Null => Value::from(0),
            };
            set(&mut v, new);
        }
        Mutation::NaN => match target {
            // The spelling synbench writes for a non-finite score…
            Value::Number(_) => set(&mut v, Value::String("NaN".into())),
            _ => return None,
        },
        Mutation::OutOfRange => match target {
            // …and a value no field of ours takes: negative, beyond every count and score.
            Value::Number(n) => set(&mut v, Value::from(-(n.as_f64().unwrap_or(0.0).abs() + 1.5))),
            _ => return None,
        },
    }
    Some(serde_json::to_string_pretty(&v).unwrap())
}

/// The paths to mutate: each field (indices folded) at its first and last occurrence.
fn chosen_paths(value: &Value) -> Vec<Vec<Step>> {
    let mut all = Vec::new();
    paths(value, &mut Vec::new(), &mut all);
    let mut by_field: BTreeMap<String, Vec<Vec<Step>>> = BTreeMap::new();
    for p in all {
        by_field.entry(field_of(&p)).or_default().push(p);
    }
    let mut chosen = Vec::new();
    for (_, mut occurrences) in by_field {
        let last = occurrences.pop().unwrap();
        if let Some(first) = occurrences.into_iter().next() {
            chosen.push(first);
        }
        chosen.push(last);
    }
    chosen
}

/// The scores the library reads from `dir`, or its error's text; a panic fails the test.
fn library(dir: &Path, what: &str) -> Result<RunScores, String> {
    match catch_unwind(AssertUnwindSafe(|| SavedRun::load(dir).and_then(|run| run.scores()))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => panic!("the library panicked on {what}"),
    }
}

/// `synbench score DIR`: `Ok(stdout)` or `Err(stderr)`; exit code 101 (a panic) fails the test.
fn cli(dir: &Path, what: &str) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_synbench")).arg("score").arg(dir).output().unwrap();
    match out.status.code() {
        Some(0) => Ok(String::from_utf8(out.stdout).unwrap()),
        Some(2) => Err(String::from_utf8(out.stderr).unwrap()),
        other => panic!("synbench score exited with {other:?} on {what}: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// Whether `error` names `file` and a field (`` `field` ``, or the text of a missing/unknown one).
fn names_file_and_field(error: &str, file: &Path) -> bool {
    let names_field = error.contains(": `") || error.contains("missing field") || error.contains("unknown field");
    error.contains(&file.display().to_string()) && names_field
}

#[derive(Default)]
struct Tally {
    mutations: usize,
    errors: usize,
    identical: usize,
    through_cli: usize,
}

/// Mutates every chosen field of every JSON file in `dir` and checks each outcome.
fn check_folder(dir: &Path, tally: &mut Tally) {
    let baseline = library(dir, "the unmutated folder").expect("the unmutated folder reads");
    let baseline_cli = cli(dir, "the unmutated folder").expect("synbench score reads the unmutated folder");
    let mut files: Vec<PathBuf> =
        ["run.json", "results.json"].iter().map(|f| dir.join(f)).filter(|p| p.is_file()).collect();
    let mut scales: Vec<PathBuf> = fs::read_dir(dir.join("scales"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    scales.sort();
    files.extend(scales);
    let mut failures = Vec::new();
    for file in &files {
        let original = fs::read_to_string(file).unwrap();
        let value: Value = serde_json::from_str(&original).unwrap();
        // run.json is read only for a run without results.json.
        if file.ends_with("run.json") && dir.join("results.json").is_file() {
            continue;
        }
        for path in chosen_paths(&value) {
            for mutation in MUTATIONS {
                let Some(text) = mutate(&value, &path, mutation) else { continue };
                let what = format!("{mutation:?} of `{}` in {}", field_of(&path), file.display());
                fs::write(file, &text).unwrap();
                tally.mutations += 1;
                match library(dir, &what) {
                    // Debug text compares NaN scores (no threshold area) as equal, bit for bit otherwise.
                    Ok(scores) if format!("{scores:?}") == format!("{baseline:?}") => tally.identical += 1,
                    Ok(_) => failures.push(format!("{what}: scored differently without an error")),
                    Err(e) if names_file_and_field(&e, file) => tally.errors += 1,
                    Err(e) => failures.push(format!("{what}: the error does not name the file and a field: {e}")),
                }
                // One mutation in 25 also through the binary (a tch build loads
                // LibTorch at each start, 0.4 s).
                if tally.mutations.is_multiple_of(25) {
                    tally.through_cli += 1;
                    match cli(dir, &what) {
                        Ok(stdout) if stdout == baseline_cli => {}
                        Ok(_) => failures.push(format!("{what}: synbench score printed other scores")),
                        Err(e) if names_file_and_field(&e, file) => {}
                        Err(e) => failures.push(format!("{what}: synbench score's error names no file and field: {e}")),
                    }
                }
            }
        }
        fs::write(file, &original).unwrap();
    }
    if !failures.is_empty() {
        let report = std::env::temp_dir().join("synbench-readers-failures.txt");
        fs::write(&report, failures.join("\n")).unwrap();
        panic!(
            "{} of {} mutations misread (all in {}):\n{}",
            failures.len(),
            tally.mutations,
            report.display(),
            failures[..failures.len().min(30)].join("\n")
        );
    }
}

#[test]
fn every_mutation_of_every_field_is_an_error_naming_it_or_changes_nothing() {
    let dir = scratch("mutations");
    let finished = identity_run(&dir);
    let mut tally = Tally::default();
    check_folder(&finished, &mut tally);
    // A killed run: run.json and the finished scales.
    fs::remove_file(finished.join("results.json")).unwrap();
    check_folder(&finished, &mut tally);
    eprintln!(
        "{} mutations: {} errors naming file and field, {} with identical scores; {} also through `synbench score`",
        tally.mutations, tally.errors, tally.identical, tally.through_cli
    );
    assert!(tally.mutations > 500 && tally.errors > tally.identical, "too few mutations checked");
    fs::remove_dir_all(&dir).unwrap();
}
