//! The checks of every file read back against the plan it belongs to: a
//! scale file against the resolved plan (every ε in order, both estimators'
//! outcomes of matching length, the jackknife's group count and each
//! replicate's arrays, the nested refits, accuracies in [0, 1], bounds finite
//! and ≥ 0, sample counts that add up), `results.json`, `run.json`,
//! `sweep.json` and `failures.json` for completeness and shape. A file that
//! fails is an error naming the file and the field (`replicates[3].train`)
//! and what was expected, never a panic and never a silent score.
//!
//! The checks return `(field, message)`; the readers attach the file and the
//! remedy.

use std::collections::BTreeSet;

use synbench_probe::JACKKNIFE_GROUPS;

use crate::layout::{FAILURES_SCHEMA, READABLE_RESULT_SCHEMAS, READABLE_SCALE_SCHEMAS, RUN_SCHEMA, SWEEP_SCHEMA};
use crate::options::{Estimator, Named};
use crate::resolved::{ResolvedPlan, RunFile};
use crate::schema::{EpsilonJson, FailuresFile, OutcomeJson, ResultsFile, ScaleFile, SweepFile};

/// What is wrong with a file: the field's path in it and the message.
pub type Problem = (String, String);

type Check = std::result::Result<(), Problem>;

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    (field.into(), message.into())
}

fn length(field: &str, found: usize, expected: usize, what: &str) -> Check {
    if found == expected {
        Ok(())
    } else {
        Err(problem(field, format!("has {found} entries, expected {expected} ({what})")))
    }
}

fn outcome(field: &str, o: &OutcomeJson) -> Check {
    if !(o.accuracy.is_finite() && (0.0..=1.0).contains(&o.accuracy)) {
        return Err(problem(format!("{field}.accuracy"), format!("is {}, expected an accuracy in [0, 1]", o.accuracy)));
    }
    if !(o.bound.is_finite() && o.bound >= 0.0) {
        return Err(problem(format!("{field}.bound"), format!("is {}, expected a finite scaled bound ≥ 0", o.bound)));
    }
    Ok(())
}

fn outcomes(field: &str, list: &[OutcomeJson], epsilons: usize) -> Check {
    length(field, list.len(), epsilons, "one per ε of the plan")?;
    list.iter().enumerate().try_for_each(|(i, o)| outcome(&format!("{field}[{i}]"), o))
}

/// One ε's outcomes of a pass over `samples` test samples.
fn epsilon_outcomes(field: &str, list: &[EpsilonJson], epsilons: &[f64], samples: u64) -> Check {
    length(field, list.len(), epsilons.len(), "one per ε of the plan")?;
    for (i, (e, &expected)) in list.iter().zip(epsilons).enumerate() {
        let at = format!("{field}[{i}]");
        if e.epsilon != expected {
            return Err(problem(
                format!("{at}.epsilon"),
                format!("is {}, expected the plan's ε {expected}", e.epsilon),
            ));
        }
        outcome(&format!("{at}.reference"), &e.reference)?;
        outcome(&format!("{at}.exact"), &e.exact)?;
        if e.samples != samples {
            return Err(problem(format!("{at}.samples"), format!("is {}, expected {samples} test samples", e.samples)));
        }
        if e.correct > e.samples {
            return Err(problem(
                format!("{at}.correct"),
                format!("is {}, more than the {} test samples", e.correct, e.samples),
            ));
        }
    }
    Ok(())
}

/// Samples of a split of `n` in jackknife group `g` of `groups` (`i ≡ g mod groups`).
fn group_size(n: u64, g: usize, groups: usize) -> u64 {
    let (g, groups) = (g as u64, groups as u64);
    if g >= n { 0 } else { (n - g).div_ceil(groups) }
}

/// A scale file against the resolved plan of its run.
pub fn scale_file(file: &ScaleFile, plan: &ResolvedPlan) -> Check {
    if !READABLE_SCALE_SCHEMAS.contains(&file.schema.as_str()) {
        return Err(problem("schema", format!("is {:?}, expected one of {READABLE_SCALE_SCHEMAS:?}", file.schema)));
    }
    let eps = &plan.probe.epsilons;
    let (n_train, n_test) = (plan.data.n_train, plan.data.n_test);
    outcome("raw", &file.raw)?;
    epsilon_outcomes("representation", &file.representation, eps, n_test)?;
    let l2 = plan.probe.norm == "l2";
    if let Some(population) = &file.population {
        if !l2 {
            return Err(problem("population", format!("is set, but the plan's attack is {:?}", plan.probe.norm)));
        }
        outcomes("population", population, eps.len())?;
    }
    let version3 = file.schema == READABLE_SCALE_SCHEMAS[0];
    let groups = if version3 { JACKKNIFE_GROUPS } else { 0 };
    length("replicates", file.replicates.len(), groups, "one per jackknife group")?;
    let with_population: BTreeSet<bool> = file.replicates.iter().map(|r| r.population.is_some()).collect();
    if with_population.len() > 1 {
        return Err(problem("replicates", "some replicates carry the population estimate and some do not"));
    }
    for (g, r) in file.replicates.iter().enumerate() {
        let at = format!("replicates[{g}]");
        outcomes(&format!("{at}.train"), &r.train, eps.len())?;
        let samples = n_test - group_size(n_test, g, groups);
        epsilon_outcomes(&format!("{at}.test"), &r.test, eps, samples)?;
        if let Some(population) = &r.population {
            if file.population.is_none() {
                return Err(problem(format!("{at}.population"), "is set, but the scale has no population estimate"));
            }
            outcomes(&format!("{at}.population"), population, eps.len())?;
        }
    }
    let mut previous = 0;
    for (k, n) in file.nested.iter().enumerate() {
        let at = format!("nested[{k}]");
        if !(n.n_train > previous && n.n_train < n_train) {
            return Err(problem(
                format!("{at}.n_train"),
                format!("is {}, expected a train size above {previous} and below the plan's {n_train}", n.n_train),
            ));
        }
        previous = n.n_train;
        epsilon_outcomes(&format!("{at}.representation"), &n.representation, eps, n_test)?;
        if let Some(population) = &n.population {
            outcomes(&format!("{at}.population"), population, eps.len())?;
        }
    }
    Ok(())
}

/// The scales of one run agree with each other: the population estimate,
/// the replicates' population estimates and the nested train sizes are
/// carried by every scale or by none (a run's feature width is one, so
/// they are). Returns the first scale (by position in `files`) that parts
/// from the first, with the field and the message (which names the first
/// scale's file, `first`: either of the two may be the damaged one).
pub fn scales_agree(
    files: &[ScaleFile],
    first_path: &std::path::Path,
) -> std::result::Result<(), (usize, String, String)> {
    let Some(first) = files.first() else { return Ok(()) };
    let shape = |f: &ScaleFile| {
        (
            f.population.is_some(),
            f.replicates.first().is_some_and(|r| r.population.is_some()),
            f.nested.iter().map(|n| (n.n_train, n.population.is_some())).collect::<Vec<_>>(),
        )
    };
    let expected = shape(first);
    let theirs = format!("scale {} ({})", first.index, first_path.display());
    for (i, file) in files.iter().enumerate().skip(1) {
        let found = shape(file);
        let carried = |v: bool| if v { "carries it" } else { "does not" };
        if found.0 != expected.0 {
            let message = format!("{}, but {theirs} {}", carried(found.0), carried(expected.0));
            return Err((i, "population".into(), message));
        }
        if found.1 != expected.1 {
            let message = format!(
                "the replicates' population estimates: this scale {}, {theirs} {}",
                carried(found.1),
                carried(expected.1)
            );
            return Err((i, "replicates".into(), message));
        }
        if found.2 != expected.2 {
            let message = format!("train sizes {:?}, but {theirs} has {:?}", found.2, expected.2);
            return Err((i, "nested".into(), message));
        }
    }
    Ok(())
}

/// The parts of a resolved plan that reading a run back relies on.
pub fn plan(plan: &ResolvedPlan, field: &str) -> Check {
    let at = |name: &str| format!("{field}.{name}");
    if plan.data.scales.is_empty() {
        return Err(problem(at("data.scales"), "is empty, expected the plan's scale grid"));
    }
    if let Some(i) = plan.data.scales.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(problem(at(&format!("data.scales[{i}]")), "expected a finite mean scale > 0"));
    }
    if plan.probe.epsilons.is_empty() {
        return Err(problem(at("probe.epsilons"), "is empty, expected at least one ε"));
    }
    if let Some(i) = plan.probe.epsilons.iter().position(|e| !(e.is_finite() && *e >= 0.0)) {
        return Err(problem(at(&format!("probe.epsilons[{i}]")), "expected a finite ε ≥ 0"));
    }
    if plan.score.thresholds.is_empty() {
        return Err(problem(at("score.thresholds"), "is empty, expected at least one threshold"));
    }
    if let Some(i) = plan.score.thresholds.iter().position(|t| !(0.0..=1.0).contains(t)) {
        return Err(problem(at(&format!("score.thresholds[{i}]")), "expected an accuracy threshold in [0, 1]"));
    }
    if plan.data.n_train < crate::config::MIN_TRAIN || plan.data.n_test < 1 {
        return Err(problem(
            at("data"),
            format!("n_train = {}, n_test = {}: too few samples", plan.data.n_train, plan.data.n_test),
        ));
    }
    let named =
        |name: &str, check: fn(&str) -> Result<(), String>, value: &str| check(value).map_err(|m| problem(at(name), m));
    named("probe.averaging", |v| synbench_probe::Averaging::from_name(v).map(drop), &plan.probe.averaging)?;
    named("probe.norm", |v| synbench_probe::AttackNorm::from_name(v).map(drop), &plan.probe.norm)?;
    named("score.mode", |v| synbench_theory::ScoreMode::from_name(v).map(drop), &plan.score.mode)?;
    named("score.estimator", |v| Estimator::from_name(v).map(drop), &plan.score.estimator)?;
    Ok(())
}

/// The recorded hash of a plan is the plan's: a plan edited (or damaged)
/// after its run started no longer hashes to what its scale files carry.
fn hash_of(plan: &ResolvedPlan, recorded: &str, field: &str) -> Check {
    let hash = plan.hash();
    if hash == recorded {
        Ok(())
    } else {
        Err(problem(
            field,
            format!("is {recorded:?}, but the plan in this file hashes to {hash:?}: the file was edited or damaged"),
        ))
    }
}

/// `run.json`.
pub fn run_file(file: &RunFile) -> Check {
    if file.schema != RUN_SCHEMA {
        return Err(problem("schema", format!("is {:?}, expected {RUN_SCHEMA:?}", file.schema)));
    }
    plan(&file.plan, "plan")?;
    hash_of(&file.plan, &file.plan_hash, "plan_hash")
}

/// `results.json`: its own arrays agree with its plan.
pub fn results_file(file: &ResultsFile) -> Check {
    if !READABLE_RESULT_SCHEMAS.contains(&file.schema.as_str()) {
        return Err(problem("schema", format!("is {:?}, expected one of {READABLE_RESULT_SCHEMAS:?}", file.schema)));
    }
    plan(&file.plan, "plan")?;
    hash_of(&file.plan, &file.provenance.plan_hash, "provenance.plan_hash")?;
    let (eps, thresholds) = (&file.plan.probe.epsilons, &file.plan.score.thresholds);
    if &file.epsilons != eps {
        return Err(problem("epsilons", format!("is {:?}, but the plan's are {eps:?}", file.epsilons)));
    }
    if &file.thresholds != thresholds {
        return Err(problem("thresholds", format!("is {:?}, but the plan's are {thresholds:?}", file.thresholds)));
    }
    length("scales", file.scales.len(), file.plan.data.scales.len(), "one per scale of the plan")?;
    for (i, s) in file.scales.iter().enumerate() {
        if s.index != i || s.scale != file.plan.data.scales[i] {
            return Err(problem(
                format!("scales[{i}]"),
                format!("holds scale {} (s = {}), expected scale {i}", s.index, s.scale),
            ));
        }
        length(&format!("scales[{i}].representation"), s.representation.len(), eps.len(), "one per ε")?;
    }
    length("scores", file.scores.len(), eps.len(), "one per ε")?;
    for (i, s) in file.scores.iter().enumerate() {
        let at = format!("scores[{i}]");
        if s.epsilon != eps[i] {
            return Err(problem(
                format!("{at}.epsilon"),
                format!("is {}, expected the plan's ε {}", s.epsilon, eps[i]),
            ));
        }
        length(&format!("{at}.reference"), s.reference.len(), thresholds.len(), "one per threshold")?;
        length(&format!("{at}.exact"), s.exact.len(), thresholds.len(), "one per threshold")?;
    }
    length("best_epsilon", file.best_epsilon.len(), thresholds.len(), "one per threshold")?;
    if let Some(dim) = file.feature_dim
        && dim == 0
    {
        return Err(problem("feature_dim", "is 0, expected the features' width"));
    }
    Ok(())
}

/// `sweep.json`: model folders that are plain, distinct names.
pub fn sweep_file(file: &SweepFile) -> Check {
    if file.schema != SWEEP_SCHEMA {
        return Err(problem("schema", format!("is {:?}, expected {SWEEP_SCHEMA:?}", file.schema)));
    }
    let mut seen = BTreeSet::new();
    for (i, m) in file.models.iter().enumerate() {
        folder_name(&format!("models[{i}].name"), &m.name)?;
        if !seen.insert(m.name.as_str()) {
            return Err(problem(format!("models[{i}].name"), format!("{:?} is listed twice", m.name)));
        }
        if file.shards > 0 && m.shard >= file.shards {
            return Err(problem(
                format!("models[{i}].shard"),
                format!("is {}, expected one of the {} shards", m.shard, file.shards),
            ));
        }
    }
    Ok(())
}

/// `failures.json`.
pub fn failures_file(file: &FailuresFile) -> Check {
    if file.schema != FAILURES_SCHEMA {
        return Err(problem("schema", format!("is {:?}, expected {FAILURES_SCHEMA:?}", file.schema)));
    }
    for (i, f) in file.failures.iter().enumerate() {
        folder_name(&format!("failures[{i}].model"), &f.model)?;
        if f.attempts == 0 {
            return Err(problem(format!("failures[{i}].attempts"), "is 0, expected the failed attempts (≥ 1)"));
        }
    }
    Ok(())
}

/// A model's folder name under a sweep folder: not empty, no path.
fn folder_name(field: &str, name: &str) -> Check {
    if name.trim().is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(problem(field, format!("{name:?} is not a folder name under the sweep folder")));
    }
    Ok(())
}
