//! A sweep folder read back: protocols parsed per model, failures recorded
//! under the lock by concurrent writers, and the leaderboard's ranking,
//! states and numbers checked against each run's own scores.

use std::fs;
use std::path::{Path, PathBuf};

use synbench_experiment::config::parse_protocol;
use synbench_experiment::layout::{FAILURES_FILE, SWEEP_FILE, SWEEP_SCHEMA};
use synbench_experiment::runs::load_runs;
use synbench_experiment::sweep::{
    Failure, ModelState, SweepFile, SweepModel, clear_failure, read_failures, record_failure,
};
use synbench_experiment::{EncoderInfo, Experiment, Leaderboard, ModelSpec, SavedRun, StartOptions, StartPolicy, io};
use synbench_probe::ndarray::{Array2, ArrayView2};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-sweep-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A protocol with a `[model]` table that a sweep ignores.
const PROTOCOL: &str = "[model]\narch = \"vit\"\npreset = \"vit_tiny_patch16_224\"\nweights = \"missing.safetensors\"\n\
    [data]\nshape = [8]\nscales = [0.4, 0.8, 1.2]\nn_train = 200\nn_test = 200\nseed = 3\n\
    [probe]\nepsilons = [0.0, 0.3]\n[score]\nthresholds = [0.6, 0.7]\n";

/// Runs `name` in `sweep/name` with features `encode(x)`, stopping after
/// `stop_after` scales (as a killed process) or finishing.
fn run_model(sweep: &Path, name: &str, encode: impl Fn(ArrayView2<'_, f32>) -> Array2<f32>, stop_after: Option<usize>) {
    let mut plan = parse_protocol(&sweep.join("protocol.toml"), PROTOCOL, name).unwrap();
    assert_eq!(plan.encoder.model, ModelSpec::External);
    plan.output_dir = Some(sweep.join(name));
    let info = EncoderInfo { device: Some("cuda:3".into()), ..EncoderInfo::described(format!("{name} (test)")) };
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    let mut experiment = Experiment::start(plan, info, options).unwrap();
    let (mut folded, n_test) = (0, experiment.plan().n_test);
    while let Some(batch) = experiment.next_batch().unwrap() {
        experiment.fold(&batch, encode(batch.inputs.view()).view()).unwrap();
        if batch.split == synbench_data::Split::Test && batch.samples.end == n_test {
            folded += 1;
            if stop_after == Some(folded) {
                return; // dropped: the scales in flight land, as the first `stop_after`
            }
        }
    }
    experiment.finish().unwrap();
}

fn failure(model: &str, error: &str) -> Failure {
    Failure {
        model: model.into(),
        spec: model.into(),
        error: error.into(),
        kind: "RuntimeError".into(),
        traceback: String::new(),
        attempts: 0,
        shard: "0/1".into(),
        host: "here".into(),
        unix_time: 0,
    }
}

#[test]
fn protocols_ignore_model_tables_and_name_the_run() {
    let dir = scratch("protocol");
    let plan = parse_protocol(&dir.join("p.toml"), PROTOCOL, "resnet18.a1_in1k").unwrap();
    assert_eq!(plan.model_name, "resnet18.a1_in1k");
    assert_eq!(plan.encoder.model, ModelSpec::External);
    // Without [model] at all, and the checks of the rest still apply.
    let bare = PROTOCOL.split("[data]").nth(1).unwrap();
    assert!(parse_protocol(&dir.join("p.toml"), &format!("[data]{bare}"), "m").is_ok());
    let bad = format!("[data]{}", bare.replace("n_test = 200", "n_test = 0"));
    let err = parse_protocol(&dir.join("p.toml"), &bad, "m").unwrap_err().to_string();
    assert!(err.contains("p.toml:") && err.contains("data.n_test"), "{err}");
    let err = parse_protocol(&dir.join("p.toml"), PROTOCOL, " ").unwrap_err().to_string();
    assert!(err.contains("model.name"), "{err}");
}

#[test]
fn failures_count_attempts_clear_on_success_and_survive_concurrent_writers() {
    let dir = scratch("failures");
    assert!(read_failures(&dir).unwrap().is_empty());
    assert_eq!(record_failure(&dir, failure("a", "out of memory")).unwrap().attempts, 1);
    let again = record_failure(&dir, failure("a", "out of memory again")).unwrap();
    assert_eq!((again.attempts, again.error.as_str()), (2, "out of memory again"));
    // Eight writers at once (as the shards of an array): none is lost.
    std::thread::scope(|s| {
        for i in 0..8 {
            let dir = &dir;
            s.spawn(move || record_failure(dir, failure(&format!("m{i}"), "boom")).unwrap());
        }
    });
    let names: Vec<String> = read_failures(&dir).unwrap().into_iter().map(|f| f.model).collect();
    assert_eq!(names, ["a", "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
    assert!(clear_failure(&dir, "m3").unwrap());
    assert!(!clear_failure(&dir, "m3").unwrap(), "cleared once");
    assert_eq!(read_failures(&dir).unwrap().len(), 8);
    fs::write(dir.join(FAILURES_FILE), "{\"schema\": \"synbench-failures/0\", \"failures\": []}").unwrap();
    let err = read_failures(&dir).unwrap_err().to_string();
    assert!(err.contains("failures.json") && err.contains("synbench-failures/1"), "{err}");
}

#[test]
fn the_leaderboard_ranks_every_model_and_says_where_each_stands() {
    let dir = scratch("leaderboard");
    // Three encoders of different quality: the identity, a noisy copy
    // (noise added deterministically), and a projection onto 2 of 8 axes.
    run_model(&dir, "identity", |x| x.to_owned(), None);
    run_model(
        &dir,
        "noisy",
        |x| {
            let mut y = x.to_owned();
            y.indexed_iter_mut().for_each(|((i, j), v)| *v += (((i * 7 + j * 13) % 17) as f32 - 8.0) * 0.4);
            y
        },
        None,
    );
    run_model(
        &dir,
        "narrow",
        |x| {
            x.columns().into_iter().take(2).fold(Array2::zeros((x.nrows(), 0)), |mut m, c| {
                m.push_column(c).unwrap();
                m
            })
        },
        None,
    );
    run_model(&dir, "killed", |x| x.to_owned(), Some(1));
    fs::create_dir_all(dir.join("broken")).unwrap();
    record_failure(&dir, failure("broken", "RuntimeError: bad output shape")).unwrap();
    let models = ["identity", "noisy", "narrow", "killed", "broken", "never"];
    let sweep = SweepFile {
        schema: SWEEP_SCHEMA.into(),
        models_file: "models.txt".into(),
        protocol: "protocol.toml".into(),
        shards: 2,
        models: models
            .iter()
            .enumerate()
            .map(|(i, m)| SweepModel { name: (*m).into(), spec: (*m).into(), line: i + 1, shard: i % 2 })
            .collect(),
    };
    io::write_json(&dir.join(SWEEP_FILE), &sweep).unwrap();

    let board = Leaderboard::collect(&dir, None).unwrap();
    assert_eq!(board.thresholds, [0.6, 0.7]);
    assert_eq!(board.sort_by, 0.7, "0.7 by default");
    // Each scored row is the run's own score, and rows are ranked by t = 0.7.
    let scored: Vec<_> = board.rows.iter().filter(|r| r.epsilon.is_some()).collect();
    assert_eq!(scored.len(), 4 * 2, "four models with scales, two ε each");
    for row in &scored {
        let run = SavedRun::load(&dir.join(&row.model)).unwrap();
        let own = run.scores().unwrap();
        let e = run.epsilons.iter().position(|&e| Some(e) == row.epsilon).unwrap();
        let same = &own.reference.of(run.mode)[e];
        let bits = |v: &[f64]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&same.scores), bits(&row.scores), "{}", row.model);
    }
    let key = |s: f64| if s.is_nan() { f64::NEG_INFINITY } else { s };
    assert!(scored.windows(2).all(|w| key(w[0].scores[1]) >= key(w[1].scores[1])), "ranked by t = 0.7");
    let state = |m: &str| board.rows.iter().find(|r| r.model == m).unwrap().state.clone();
    assert_eq!(state("identity"), ModelState::Finished);
    assert_eq!(state("killed"), ModelState::Partial { finished: 1, planned: 3 });
    assert_eq!(state("broken"), ModelState::Failed { error: "RuntimeError: bad output shape".into(), attempts: 1 });
    assert_eq!(state("never"), ModelState::Pending);
    let width = |m: &str| board.rows.iter().find(|r| r.model == m).unwrap().feature_dim;
    assert_eq!((width("identity"), width("narrow"), width("killed")), (Some(8), Some(2), None));
    let identity = board.rows.iter().find(|r| r.model == "identity").unwrap();
    assert_eq!(identity.device.as_deref(), Some("cuda:3"), "the driver's device");
    assert!(identity.images_per_second.is_some_and(|v| v > 0.0));
    // The identity keeps every bit of the data: it ranks above its noisy copy.
    let first = |m: &str| board.rows.iter().position(|r| r.model == m).unwrap();
    assert!(first("identity") < first("noisy"), "{}", board.markdown());
    // Unscored models come last, in list order.
    let tail: Vec<&str> = board.rows[8..].iter().map(|r| r.model.as_str()).collect();
    assert_eq!(tail, ["broken", "never"]);

    let csv = board.csv();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "rank,model,epsilon,score_0.6,score_0.7,feature_dim,images_per_second,device,state,scales_finished,\
         scales_planned,attempts,error,protocol,diff_to_top,diff_to_top_stderr,diff_to_top_ci_low,\
         diff_to_top_ci_high,rank_group"
    );
    // The top row leads rank group 1 and is 0 from itself; every other scored
    // row has its paired difference, below 0 by the ranking, with its se.
    assert_eq!((scored[0].to_top, scored[0].rank_group), (Some((0.0, 0.0)), Some(1)));
    for row in scored[1..].iter().filter(|r| r.scores[1].is_finite()) {
        let (d, se) = row.to_top.unwrap();
        assert!(d <= 0.0 && se.is_finite() && se >= 0.0, "{}: {d} ± {se}", row.model);
        assert!(row.rank_group.is_some_and(|g| g >= 1));
    }
    let groups: Vec<usize> = scored.iter().filter_map(|r| r.rank_group).collect();
    assert_eq!(groups.len(), 6, "every row with a score at t = 0.7 (the killed run's is NaN)");
    assert!(groups.windows(2).all(|w| w[0] <= w[1]), "groups follow the ranking: {groups:?}");
    // Two columns of 8 carry little signal: "narrow" is distinguishable from the identity.
    let group_of = |m: &str| board.rows.iter().find(|r| r.model == m).unwrap().rank_group.unwrap();
    assert!(group_of("narrow") > group_of("identity"), "{}", board.markdown());
    assert!(board.rows.iter().filter(|r| r.epsilon.is_none()).all(|r| r.to_top.is_none() && r.rank_group.is_none()));
    assert_eq!(csv.lines().count(), 1 + 8 + 2);
    assert!(csv.lines().any(|l| l.starts_with(",broken,,,,,,,failed,,,1,RuntimeError: bad output shape")), "{csv}");
    let md = board.markdown();
    assert!(md.contains("| partial (1/3 scales) |") && md.contains("- broken failed (1 attempt(s))"), "{md}");
    let written = board.write(&dir).unwrap();
    assert_eq!(fs::read_to_string(&written[0]).unwrap(), csv);

    // `synbench table DIR` (or DIR/*/) reads the model folders, skipping
    // those without a scored scale (`broken`, `never`, a `logs/` folder).
    fs::create_dir_all(dir.join("logs")).unwrap();
    let names = |runs: Vec<SavedRun>| runs.into_iter().map(|r| r.model).collect::<Vec<_>>();
    assert_eq!(names(load_runs(std::slice::from_ref(&dir)).unwrap()), ["identity", "noisy", "narrow", "killed"]);
    let globbed: Vec<PathBuf> = ["broken", "identity", "logs", "narrow"].iter().map(|m| dir.join(m)).collect();
    assert_eq!(names(load_runs(&globbed).unwrap()), ["identity", "narrow"]);
    let err = load_runs(&[dir.join("logs")]).unwrap_err().to_string();
    assert!(err.contains("not a synbench run folder"), "one folder that is not a run is an error: {err}");
    let err = load_runs(&[dir.join("logs"), dir.join("broken")]).unwrap_err().to_string();
    assert!(err.contains("none of the 2 folders"), "{err}");

    // Ranking by another threshold, and one that is not a threshold.
    let by_06 = Leaderboard::collect(&dir, Some(0.6)).unwrap();
    let scored: Vec<_> = by_06.rows.iter().filter(|r| r.epsilon.is_some()).collect();
    assert!(scored.windows(2).all(|w| key(w[0].scores[0]) >= key(w[1].scores[0])));
    let err = Leaderboard::collect(&dir, Some(0.8)).unwrap_err().to_string();
    assert!(err.contains("0.8") && err.contains("[0.6, 0.7]"), "{err}");
}

#[test]
fn runs_of_different_protocols_are_not_ranked_together() {
    let dir = scratch("mixed");
    run_model(&dir, "a", |x| x.to_owned(), None);
    let text = PROTOCOL.replace("thresholds = [0.6, 0.7]", "thresholds = [0.6, 0.8]");
    let mut plan = parse_protocol(&dir.join("other.toml"), &text, "b").unwrap();
    plan.output_dir = Some(dir.join("b"));
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    let mut experiment = Experiment::start(plan, EncoderInfo::described("b"), options).unwrap();
    while let Some(batch) = experiment.next_batch().unwrap() {
        experiment.fold(&batch, batch.inputs.view()).unwrap();
    }
    experiment.finish().unwrap();
    let err = Leaderboard::collect(&dir, None).unwrap_err().to_string();
    assert!(err.contains("different protocols") && err.contains("[0.6, 0.8]"), "{err}");
    // Another data seed (same thresholds): a table of its own, the differing field named.
    fs::remove_dir_all(dir.join("b")).unwrap();
    let text = PROTOCOL.replace("seed = 3\n", "seed = 4\n");
    assert_ne!(text, PROTOCOL, "the protocol names its data seed");
    let mut plan = parse_protocol(&dir.join("other.toml"), &text, "c").unwrap();
    plan.output_dir = Some(dir.join("c"));
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    let mut experiment = Experiment::start(plan, EncoderInfo::described("c"), options).unwrap();
    while let Some(batch) = experiment.next_batch().unwrap() {
        experiment.fold(&batch, batch.inputs.view()).unwrap();
    }
    experiment.finish().unwrap();
    let board = Leaderboard::collect(&dir, None).unwrap();
    assert_eq!(board.protocols.len(), 2);
    assert!(board.protocols[1].iter().any(|f| f.starts_with("data.seed")), "{:?}", board.protocols);
    let c: Vec<_> = board.rows.iter().filter(|r| r.model == "c").collect();
    assert!(c.iter().all(|r| r.protocol == 1 && r.rank_group.is_some()));
    assert_eq!(c[0].to_top, Some((0.0, 0.0)), "c is the top of its own table");
    let md = board.markdown();
    assert!(md.contains("### Protocol 2") && md.contains("data.seed"), "{md}");
    assert_eq!(board.ranks().iter().flatten().filter(|&&r| r == 1).count(), 2, "a rank 1 per table");
    let err = Leaderboard::collect(&dir.join("nothing"), None).unwrap_err().to_string();
    assert!(err.contains("nothing") && err.contains("no such folder"), "{err}");
}
