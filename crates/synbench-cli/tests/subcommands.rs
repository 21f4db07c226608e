//! The subcommands besides `run`, end to end through the binary: snapshots of
//! the formatted outputs, `score` reproducing a run's own scores, `table`
//! over several runs, `correlate` against scores whose correlation is known,
//! `encode` against timm's own output, and `probe` on separable features.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray_npy::{read_npy, write_npy};
use synbench_probe::ndarray::{self, Array1, Array2};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-sub-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn synbench<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synbench")).args(args).output().unwrap()
}

fn ok<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = synbench(args);
    assert!(out.status.success(), "synbench {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn failing<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = synbench(args);
    assert!(!out.status.success(), "synbench {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// A small identity run (d = 8, 4 scales, 512 + 512) in `dir/out`.
fn identity_run(dir: &Path, seed: u64, dim: usize) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[model]
arch = "identity"
batch_size = 100
[data]
shape = [{dim}]
scales = [0.5, 1.0, 1.5, 2.5]
n_train = 512
n_test = 512
seed = {seed}
[probe]
epsilons = [0.0, 0.2]
[score]
thresholds = [0.6, 0.7, 0.8, 0.9]
[output]
dir = "out"
"#
        ),
    )
    .unwrap();
    ok(&["run", config.to_str().unwrap(), "--quiet"]);
    dir.join("out")
}

/// The run's table.md as formatted (4 decimals); the CSV's layout is
/// snapshotted on hand-built rows in synbench-experiment, its numbers are
/// checked numerically below.
#[test]
fn snapshot_of_a_fixed_small_run_table() {
    let out = identity_run(&scratch("snapshot"), 7, 8);
    insta::assert_snapshot!("table_md", std::fs::read_to_string(out.join("table.md")).unwrap());
}

#[test]
fn score_rescoring_reproduces_the_run_and_switches_modes() {
    let dir = scratch("score");
    let out = identity_run(&dir, 5, 8);
    let csv = dir.join("rescored.csv");
    ok(&["score", out.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    assert_eq!(std::fs::read(&csv).unwrap(), std::fs::read(out.join("scores.csv")).unwrap());

    // --mode exact gives results.json's exact scores.
    let exact = dir.join("exact.csv");
    ok(&["score", out.to_str().unwrap(), "--mode", "exact", "--csv", exact.to_str().unwrap()]);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(&exact).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 16, "8 rows of each estimator");
    for (i, row) in rows.iter().enumerate() {
        let (estimator, block) = if i < 8 {
            ("reference", &results["scores"][i / 4])
        } else {
            ("population", &results["scores"][(i - 8) / 4]["population"])
        };
        let (score, stderr) = (block["exact"][i % 4].as_f64().unwrap(), row[4].parse::<f64>().unwrap());
        assert_eq!(row[3].parse::<f64>().unwrap(), score, "row {row:?}");
        let interval = &block["uncertainty"]["exact"];
        assert_eq!(stderr, interval["stderr"][i % 4].as_f64().unwrap(), "row {row:?}");
        assert_eq!(row[5].parse::<f64>().unwrap(), interval["ci_low"][i % 4].as_f64().unwrap());
        assert_eq!((row[7], row[8]), (estimator, "exact"));
    }

    // A killed run (no results.json) still rescores from its finished scales.
    std::fs::remove_file(out.join("results.json")).unwrap();
    std::fs::remove_file(out.join("scales/scale_003.json")).unwrap();
    let partial = ok(&["score", out.to_str().unwrap()]);
    assert!(partial.contains("partial run, 3 finished scale(s) only"), "{partial}");
}

#[test]
fn table_over_several_runs_labels_repeated_models_by_folder() {
    let a = identity_run(&scratch("table-a"), 1, 8);
    let b = identity_run(&scratch("table-b"), 2, 8);
    let table = ok(&["table", a.to_str().unwrap(), b.to_str().unwrap(), "--thresholds", "0.6,0.8"]);
    let header = table.lines().next().unwrap();
    assert_eq!(header, "| model | ε | t=0.6 | t=0.8 |");
    // 2 runs × 2 ε + one best-ε row each, labelled by their (distinct)
    // paths, in the reference table and again in the population one.
    assert!(table.contains("\n### population estimator\n"), "{table}");
    for run in [&a, &b] {
        let label = format!("| identity ({}) |", run.display());
        assert_eq!(table.lines().filter(|l| l.starts_with(&label)).count(), 6, "{table}");
    }
}

#[test]
fn correlate_recovers_known_correlations() {
    let runs: Vec<PathBuf> = (0..4)
        .map(|i| {
            let dir = scratch(&format!("corr-{i}"));
            let run = identity_run(&dir, 10 + i, 4 + 4 * i as usize);
            let named = dir.join(format!("model{i}"));
            std::fs::rename(&run, &named).unwrap();
            named
        })
        .collect();
    // Downstream "accuracies" that are exact affine maps of the ε = 0,
    // t = 0.6 scores: Pearson, Spearman and Kendall are ±1 there.
    let csv_path = runs[0].with_file_name("scores_only.csv");
    let mut scores = Vec::new();
    for run in &runs {
        ok(&["score", run.to_str().unwrap(), "--csv", csv_path.to_str().unwrap()]);
        let text = std::fs::read_to_string(&csv_path).unwrap();
        let first = text.lines().nth(1).unwrap().split(',').nth(3).unwrap().parse::<f64>().unwrap();
        scores.push(first);
    }
    let mut downstream = String::from("model,rising,falling\n");
    for (i, s) in scores.iter().enumerate() {
        downstream.push_str(&format!("model{i},{},{}\n", 2.0 * s + 1.0, 5.0 - 3.0 * s));
    }
    let down = runs[0].with_file_name("downstream.csv");
    std::fs::write(&down, downstream).unwrap();
    let out_csv = runs[0].with_file_name("correlations.csv");
    let mut args: Vec<&str> = vec!["correlate"];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    args.extend(["--downstream", down.to_str().unwrap(), "--csv", out_csv.to_str().unwrap()]);
    ok(&args);
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[1] == "0" && f[2] == "0.6" {
            let sign = if f[0] == "rising" { 1.0 } else { -1.0 };
            for value in &f[4..7] {
                assert!((value.parse::<f64>().unwrap() - sign).abs() < 1e-12, "{line}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "{text}");

    // A run the downstream file does not name is an error that says so.
    std::fs::write(&down, "model,task\nmodel0,0.5\n").unwrap();
    let err = failing(&args[..args.len() - 2]);
    assert!(err.contains("downstream.csv: no row for the run") && err.contains("model1"), "{err}");
}

fn safetensors_f32(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (view.shape().to_vec(), values)
}

#[test]
fn encode_matches_timm_on_a_committed_checkpoint() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../synbench-models/tests/fixtures");
    let dir = scratch("encode");
    let (shape, input) = safetensors_f32(&fixtures.join("vit_p8_d64_token.io.safetensors"), "input");
    let (out_shape, expected) = safetensors_f32(&fixtures.join("vit_p8_d64_token.io.safetensors"), "output");
    let x = ndarray::ArrayD::from_shape_vec(shape, input).unwrap();
    write_npy(dir.join("x.npy"), &x).unwrap();
    let weights = fixtures.join("vit_p8_d64_token.safetensors");
    std::fs::write(
        dir.join("vit.toml"),
        format!(
            "[model]\narch = \"vit\"\nimg_size = 32\npatch_size = 8\nembed_dim = 64\ndepth = 2\nnum_heads = 4\nweights = {:?}\n",
            weights.to_str().unwrap()
        ),
    )
    .unwrap();
    let (config, x_path, f_path) = (dir.join("vit.toml"), dir.join("x.npy"), dir.join("f.npy"));
    let args = ["encode", "--config", config.to_str().unwrap(), "--input", x_path.to_str().unwrap()];
    ok(&[&args[..], &["--output", f_path.to_str().unwrap()]].concat());
    let features: Array2<f32> = read_npy(&f_path).unwrap();
    assert_eq!(features.shape(), out_shape.as_slice());
    let worst = features.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "max |synbench encode − timm| = {worst}");

    // A shape the model cannot take names the input and what it expects.
    write_npy(dir.join("bad.npy"), &Array2::<f32>::zeros((2, 10))).unwrap();
    let bad = dir.join("bad.npy");
    let err = failing(&[
        "encode",
        "--config",
        config.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
        "--output",
        f_path.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.npy") && err.contains("[3, 32, 32]"), "{err}");
}

#[test]
fn encode_identity_returns_its_input() {
    let dir = scratch("encode-id");
    std::fs::write(dir.join("id.toml"), "[model]\narch = \"identity\"\nbatch_size = 3\n").unwrap();
    let x = Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f32 * 0.25 - 3.0);
    write_npy(dir.join("x.npy"), &x).unwrap();
    let (config, x_path, f_path) = (dir.join("id.toml"), dir.join("x.npy"), dir.join("f.npy"));
    ok(&[
        "encode",
        "--config",
        config.to_str().unwrap(),
        "--input",
        x_path.to_str().unwrap(),
        "--output",
        f_path.to_str().unwrap(),
    ]);
    let features: Array2<f32> = read_npy(&f_path).unwrap();
    assert_eq!(features, x);
}

/// Two Gaussian classes in 2-D: separated by ±1 (spread 0.4) along the first
/// axis, and by only ±0.1 but with spread 0.1 along the second. The standard
/// probe leans on the second axis (its Fisher weight 20 beats 12.5), which an
/// ℓ∞ attack of radius 0.5 flips at will; the robust probe drops it.
fn two_classes(n: usize, seed: u64) -> (Array2<f32>, Array1<i64>) {
    // A small LCG keeps the test free of RNG crates; Box–Muller for normals.
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut uniform = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal = move || (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
    let mut x = Array2::zeros((n, 2));
    let mut y = Array1::zeros(n);
    for i in 0..n {
        let label = (i % 2) as i64;
        let sign = if label == 1 { 1.0 } else { -1.0 };
        x[[i, 0]] = (sign * 1.0 + 0.4 * normal()) as f32;
        x[[i, 1]] = (sign * 0.1 + 0.1 * normal()) as f32;
        y[i] = label;
    }
    (x, y)
}

#[test]
fn probe_reports_clean_and_attacked_accuracy() {
    let dir = scratch("probe");
    let (xtr, ytr) = two_classes(2000, 1);
    let (xte, yte) = two_classes(2000, 2);
    for (name, x) in [("xtr", &xtr), ("xte", &xte)] {
        write_npy(dir.join(format!("{name}.npy")), x).unwrap();
    }
    for (name, y) in [("ytr", &ytr), ("yte", &yte)] {
        write_npy(dir.join(format!("{name}.npy")), y).unwrap();
    }
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let json = p("report.json");
    let args: Vec<String> = [
        "probe",
        "--train",
        &p("xtr.npy"),
        "--train-labels",
        &p("ytr.npy"),
        "--test",
        &p("xte.npy"),
        "--test-labels",
        &p("yte.npy"),
        "--epsilon",
        "0.5",
        "--norm",
        "linf",
        "--json",
        &json,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    ok(&args);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Relative radius: ε · ‖(μ₁ − μ₀)/2‖∞ of the train features ≈ 0.5 · 1.0.
    let radius = report["radius"].as_f64().unwrap();
    assert!((radius - 0.5).abs() < 0.05, "radius {radius}");
    let standard = &report["probes"][0];
    let robust = &report["probes"][1];
    assert_eq!(standard["probe"], "standard");
    // The first axis alone gives Φ(2.5) ≈ 0.994 clean.
    assert!(standard["clean_accuracy"].as_f64().unwrap() > 0.97, "{report}");
    // The robust probe trades clean accuracy for attacked accuracy.
    let (s_att, r_att) =
        (standard["attacked_accuracy"].as_f64().unwrap(), robust["attacked_accuracy"].as_f64().unwrap());
    assert!(r_att > s_att + 0.2, "robust attacked {r_att} vs standard {s_att}");
    assert!(robust["clean_accuracy"].as_f64().unwrap() >= r_att);

    // Labels other than 0/1 are refused, naming the file.
    write_npy(dir.join("ybad.npy"), &Array1::from(vec![0i64, 2, 1, 0])).unwrap();
    let mut bad = args.clone();
    bad[4] = p("ybad.npy");
    let err = failing(&bad);
    assert!(err.contains("ybad.npy") && err.contains("label 1 is 2"), "{err}");
}

/// A `tch` binary carries the run path to the LibTorch it was built with
/// (build.rs), so it starts — and runs a TorchScript module — with no
/// `LD_LIBRARY_PATH` at all.
#[cfg(feature = "tch")]
#[test]
fn a_tch_binary_runs_torchscript_without_ld_library_path() {
    let dir = scratch("tch-rpath");
    let module =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../synbench-models/tests/fixtures/torchscript/resnet_basic_c16.pt");
    let config = dir.join("ts.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\narch = \"torchscript\"\nweights = \"{}\"\nbackend = \"tch\"\n[data]\nshape = [3, 32, 32]\n",
            module.display()
        ),
    )
    .unwrap();
    let input = dir.join("x.npy");
    write_npy(&input, &ndarray::Array4::<f32>::from_elem((2, 3, 32, 32), 0.5)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_synbench"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["encode", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.join("f.npy"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let features: Array2<f32> = read_npy(dir.join("f.npy")).unwrap();
    assert_eq!(features.dim(), (2, 64), "resnet_basic_c16's width");
    assert_eq!(features.row(0), features.row(1), "two equal inputs, two equal feature rows");
    assert!(features.iter().any(|&v| v != 0.0));
}

/// A tch build's `synbench` is a launcher: when the LibTorch it was built
/// against has gone (here: both binaries patched to point at a folder that
/// does not exist, as if the venv had moved), it names the missing libraries
/// and what to do instead of failing in the dynamic loader; with
/// `LD_LIBRARY_PATH` at a LibTorch it runs; without `synbench-tch` beside it,
/// it says so.
#[cfg(all(feature = "tch", target_os = "linux", target_env = "gnu"))]
#[test]
fn a_tch_launcher_explains_a_missing_libtorch() {
    let dir = scratch("tch-launcher");
    let lib = env!("SYNBENCH_LIBTORCH_LIB");
    let moved = format!("{}X", &lib[..lib.len() - 1]);
    for (name, built) in
        [("synbench", env!("CARGO_BIN_EXE_synbench")), ("synbench-tch", env!("CARGO_BIN_EXE_synbench-tch"))]
    {
        let bytes = std::fs::read(built).unwrap();
        let (from, to) = (lib.as_bytes(), moved.as_bytes());
        let mut patched = Vec::with_capacity(bytes.len());
        let (mut i, mut hits) = (0, 0);
        while i < bytes.len() {
            if bytes[i..].starts_with(from) {
                patched.extend_from_slice(to);
                i += from.len();
                hits += 1;
            } else {
                patched.push(bytes[i]);
                i += 1;
            }
        }
        assert!(hits >= 1, "{name} does not carry {lib}");
        let path = dir.join(name);
        std::fs::write(&path, patched).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let launcher = dir.join("synbench");
    let out = Command::new(&launcher).env_remove("LD_LIBRARY_PATH").arg("--version").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("libtorch_cpu.so") && err.contains("libc10.so"), "names the missing libraries: {err}");
    assert!(err.contains(&format!("{moved} (its run path), which is no longer there")), "{err}");
    assert!(err.contains("LD_LIBRARY_PATH") && err.contains("cargo xtask setup libtorch"), "{err}");

    // LD_LIBRARY_PATH at the real LibTorch: the loader finds it, the command runs.
    let out = Command::new(&launcher).env("LD_LIBRARY_PATH", lib).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("synbench "));

    std::fs::remove_file(dir.join("synbench-tch")).unwrap();
    let out = Command::new(&launcher).arg("--version").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("synbench-tch, which is not there") && err.contains("--features tch"), "{err}");
}

#[test]
fn encode_runs_each_family_from_a_timm_checkpoint_as_a_user_would() {
    // A user with a downloaded checkpoint writes timm's constructor
    // arguments under [model]; synbench encode must give timm's features.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../synbench-models/tests/fixtures");
    let dir = scratch("encode-families");
    for (name, model) in [
        (
            "vit_dinov2_reg4_ls",
            "arch = \"vit\"\nimg_size = 28\npatch_size = 14\nembed_dim = 48\ndepth = 2\nnum_heads = 3\n\
             reg_tokens = 4\ninit_values = 1e-5\nno_embed_class = true",
        ),
        (
            "vit_dynamic_56to28",
            "arch = \"vit\"\nimg_size = 28\npatch_size = 14\nembed_dim = 48\ndepth = 2\nnum_heads = 3\n\
             init_values = 1e-5\ndynamic_img_size = true",
        ),
        (
            "vit_clip_prenorm_quickgelu",
            "arch = \"vit\"\nimg_size = 32\npatch_size = 8\nembed_dim = 64\ndepth = 2\nnum_heads = 4\n\
             pre_norm = true\nact_layer = \"quick_gelu\"",
        ),
        (
            "vit_deit_distilled",
            "arch = \"vit\"\nimg_size = 32\npatch_size = 8\nembed_dim = 64\ndepth = 2\nnum_heads = 4\ndist_token = true",
        ),
        (
            "vit_map_siglip",
            "arch = \"vit\"\nimg_size = 32\npatch_size = 8\nembed_dim = 64\ndepth = 2\nnum_heads = 4\n\
             class_token = false\nglobal_pool = \"map\"",
        ),
        (
            "resnext_tiered_bottleneck",
            "arch = \"resnet\"\nblock = \"bottleneck\"\nlayers = [1, 1, 1, 1]\nchannels = [8, 16, 16, 24]\n\
             stem_type = \"deep_tiered\"\nstem_width = 16\ncardinality = 2\nbase_width = 32",
        ),
        ("resnet_basic_c8", "arch = \"resnet\"\nlayers = [1, 1, 1, 1]\nchannels = [8, 16, 24, 32]"),
        (
            "convnext_convmlp_headfirst",
            "arch = \"convnext\"\ndepths = [1, 1, 1, 1]\ndims = [8, 16, 24, 32]\nconv_mlp = true\n\
             head_norm_first = true\nls_init_value = \"none\"",
        ),
        ("convnext_d8", "arch = \"convnext\"\ndepths = [1, 1, 2, 1]\ndims = [8, 16, 24, 32]"),
    ] {
        let io = fixtures.join(format!("{name}.io.safetensors"));
        let (shape, input) = safetensors_f32(&io, "input");
        let (out_shape, expected) = safetensors_f32(&io, "output");
        let x = ndarray::ArrayD::from_shape_vec(shape.clone(), input).unwrap();
        let x_path = dir.join(format!("{name}.x.npy"));
        write_npy(&x_path, &x).unwrap();
        let weights = fixtures.join(format!("{name}.safetensors"));
        let config = dir.join(format!("{name}.toml"));
        let toml =
            format!("[model]\n{model}\nweights = {:?}\n[data]\nshape = {:?}\n", weights.to_str().unwrap(), &shape[1..]);
        std::fs::write(&config, toml).unwrap();
        let f_path = dir.join(format!("{name}.f.npy"));
        ok(&[
            "encode",
            "--config",
            config.to_str().unwrap(),
            "--input",
            x_path.to_str().unwrap(),
            "--output",
            f_path.to_str().unwrap(),
        ]);
        let features: Array2<f32> = read_npy(&f_path).unwrap();
        assert_eq!(features.shape(), out_shape.as_slice(), "{name}");
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = features.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{name}: max |synbench encode − timm| = {worst} (scale {scale})");
    }
}
