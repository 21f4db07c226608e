//! The report page: `report.html`, one self-contained file for a run folder
//! or a sweep folder — styles, script, data and figures inline (SVG), no
//! network — that reads the same [`RunScores`] the tables and figures read
//! and draws its figures with [`crate::plot`], the code the PNG/SVG files
//! come from.
//!
//! * **A run**: the score tables of both estimators with their 95 %
//!   intervals and the best ε, the three figures (bound vs threshold with the
//!   jackknife band, accuracy vs scale, score vs train size), the warnings,
//!   and the provenance (resolved plan, generator revision, versions, device,
//!   stage times, peak memory) folded under a heading.
//! * **A sweep**: the leaderboard as a table (every score with its interval,
//!   the population estimate at the ranking threshold, width, images/s,
//!   device, state); a figure overlaying the bound curves (with bands) of
//!   the rows ticked in the table; the score at a chosen threshold against
//!   the feature width, both estimators with intervals; then one section per
//!   model, as a run's page has it (the sweep's protocol once at the top,
//!   each model's own plan fields in its section).
//!
//! Reading needs no script: tables and figures are static HTML and SVG, the
//! overlay shows its default selection (the best row of the five best
//! models). The script only adds sorting (a column's button), filtering (a
//! text box: model or family) and selection (the table's tick boxes, the
//! width figure's threshold). A sweep's figures share their axes: each
//! frame is drawn once (an SVG `<symbol>`), each model's bound curves once
//! in `currentColor` and `<use>`d by its section and by the overlay, which
//! keeps a 200-model page small. Light and dark mode follow the reader's
//! system; figures sit on white in both; printing opens every section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use synbench_probe::Averaging;

use crate::error::Result;
use crate::io::write_atomic;
use crate::layout::{REPORT_FILE, is_run_folder};
use crate::options::Estimator;
use crate::plot::{self, Frame, Kind, Plot};
use crate::resolved::ResolvedPlan;
use crate::saved::SavedRun;
use crate::schema::{Failure, ResultsFile};
use crate::scoring::RunScores;
use crate::sweep::{Collected, CollectedModel, ModelState};
use crate::table::ScoreTable;

/// Rows of the overlay ticked by default: the best row of this many models.
const DEFAULT_OVERLAY: usize = 5;
/// Lines of more points than this are drawn without markers on a page.
const MARKERS_UP_TO: usize = 16;

const STYLE: &str = include_str!("../assets/report.css");
const SCRIPT: &str = include_str!("../assets/report.js");

/// Writes `dir/report.html` for the run or sweep folder `dir` (a run folder
/// holds `run.json` or `results.json`; any other folder is read as a sweep,
/// ranked at `sort_by` as [`crate::Leaderboard::collect`] ranks). Its path.
pub fn write(dir: &Path, sort_by: Option<f64>) -> Result<PathBuf> {
    if is_run_folder(dir) {
        let run = SavedRun::load(dir)?;
        let scores = run.scores()?;
        write_run(&run, &scores, run.results.as_ref())
    } else {
        write_sweep(dir, &crate::sweep::collect(dir, sort_by)?)
    }
}

/// Writes `report.html` into the folder of `run`; its path.
pub fn write_run(run: &SavedRun, scores: &RunScores, results: Option<&ResultsFile>) -> Result<PathBuf> {
    let path = run.dir.join(REPORT_FILE);
    write_atomic(&path, run_html(run, scores, results)?.as_bytes())?;
    Ok(path)
}

/// Writes `dir/report.html` of the collected sweep in `dir`; its path.
pub fn write_sweep(dir: &Path, sweep: &Collected) -> Result<PathBuf> {
    let path = dir.join(REPORT_FILE);
    let title = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let title = title.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    write_atomic(&path, sweep_html(&title, sweep)?.as_bytes())?;
    Ok(path)
}

/// The page of one run.
pub fn run_html(run: &SavedRun, scores: &RunScores, results: Option<&ResultsFile>) -> Result<String> {
    let model = ModelView {
        name: &run.model,
        anchor: "m-0".into(),
        state: if run.is_partial() {
            ModelState::Partial { finished: run.records.len(), planned: run.planned_scales }
        } else {
            ModelState::Finished
        },
        run: Some((run, scores)),
        results,
        failure: None,
    };
    let figures = Figures::new(std::slice::from_ref(&model))?;
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>SynBench: {}</h1><p>{}</p></header>\n<main>\n",
        esc(&run.model),
        esc(&protocol_line(&run.plan, run.averaging))
    );
    let rank_at = if run.thresholds.contains(&0.7) { 0.7 } else { run.thresholds[0] };
    model_section(&mut body, &model, &figures, None, true, rank_at)?;
    body.push_str("</main>\n");
    Ok(page(&format!("SynBench: {}", run.model), &figures.defs, &body))
}

/// The page of a sweep called `title`.
pub fn sweep_html(title: &str, sweep: &Collected) -> Result<String> {
    let results: Vec<Option<&ResultsFile>> =
        sweep.models.iter().map(|m| m.run.as_ref().and_then(|(r, _)| r.results.as_ref())).collect();
    let models: Vec<ModelView<'_>> =
        sweep.models.iter().zip(&results).enumerate().map(|(i, (m, r))| ModelView::of(i, m, *r)).collect();
    let figures = Figures::new(&models)?;
    let board = &sweep.board;
    let protocol = models.iter().find_map(|m| m.run.map(|(r, _)| r.plan.clone()));
    let mut body = String::new();
    let scored = models.iter().filter(|m| m.run.is_some()).count();
    let _ = writeln!(body, "<header><h1>SynBench sweep: {}</h1>", esc(title));
    let _ = writeln!(
        body,
        "<p>{} models ({} scored). Ranked by the SynBench-score at t = {}; {} score mode, {} averaging.{}</p>",
        models.len(),
        scored,
        board.sort_by,
        board.mode.name(),
        board.averaging.name(),
        protocol.as_ref().map_or(String::new(), |p| format!(" {}", esc(&protocol_line(p, board.averaging))))
    );
    body.push_str(
        "<nav aria-label=\"Contents\"><a href=\"#leaderboard\">Leaderboard</a> · <a href=\"#curves\">Curves</a> · \
         <a href=\"#width\">Score vs width</a> · <a href=\"#models\">Models</a> · <a href=\"#protocol\">Protocol</a></nav>\n\
         </header>\n<main>\n",
    );
    leaderboard(&mut body, sweep, &models, &figures);
    overlay(&mut body, sweep, &models, &figures);
    width_figures(&mut body, sweep, &models)?;
    body.push_str("<section id=\"models\"><h2>Models</h2>\n");
    for model in &models {
        model_section(&mut body, model, &figures, protocol.as_ref(), false, board.sort_by)?;
    }
    body.push_str("</section>\n<section id=\"protocol\"><h2>Protocol</h2>\n");
    match &protocol {
        Some(plan) => {
            let _ = writeln!(
                body,
                "<details><summary>The resolved plan of the sweep's first scored model (every model's own plan \
                 fields are in its section)</summary><pre>{}</pre></details>",
                esc(&json(plan))
            );
        }
        None => body.push_str("<p>No model has a finished scale yet.</p>\n"),
    }
    body.push_str("</section>\n</main>\n");
    Ok(page(&format!("SynBench sweep: {title}"), &figures.defs, &body))
}

/// A model as the page shows it.
struct ModelView<'a> {
    name: &'a str,
    /// The id of its section.
    anchor: String,
    state: ModelState,
    run: Option<(&'a SavedRun, &'a RunScores)>,
    results: Option<&'a ResultsFile>,
    failure: Option<&'a Failure>,
}

impl<'a> ModelView<'a> {
    fn of(index: usize, model: &'a CollectedModel, results: Option<&'a ResultsFile>) -> Self {
        Self {
            name: &model.name,
            anchor: format!("m-{index}"),
            state: model.state.clone(),
            run: model.run.as_ref().map(|(r, s)| (r, s)),
            results,
            failure: model.failure.as_ref(),
        }
    }

    /// The model's family: its Burn architecture, else its name's leading letters.
    fn family(&self) -> String {
        let arch = self.run.map(|(r, _)| r.plan.model.arch.clone());
        match arch {
            Some(a) if a != "external" && a != "identity" => a,
            _ => {
                let lead: String = self.name.chars().take_while(char::is_ascii_alphabetic).collect();
                if lead.is_empty() { self.name.to_string() } else { lead.to_ascii_lowercase() }
            }
        }
    }
}

/// The figures of a page: the shared frames (as `<symbol>`s) and each
/// model's plots.
struct Figures {
    /// The hidden `<svg>` of symbols: frames, and every model's bound curves.
    defs: String,
    /// Per model: its plots of each kind (none without scores).
    plots: Vec<Vec<(Kind, Plot)>>,
    /// Per model: whether its scales are the page's (then its raw curve
    /// is the frames'; a partial run draws its own).
    shared_raw: Vec<bool>,
    /// The frame of each kind the page draws.
    frames: Vec<(Kind, Frame)>,
}

impl Figures {
    fn new(models: &[ModelView<'_>]) -> Result<Self> {
        let mut plots = Vec::new();
        let mut figures = Vec::new();
        for model in models {
            let Some((run, scores)) = model.run else {
                plots.push(Vec::new());
                figures.push(None);
                continue;
            };
            let figure = run.figure(scores);
            let kinds = figure.kinds();
            plots.push(
                kinds
                    .into_iter()
                    .map(|k| Ok((k, Plot::of(k, &figure)?.markers_up_to(MARKERS_UP_TO))))
                    .collect::<Result<Vec<_>>>()?,
            );
            figures.push(Some(figure));
        }
        // The page's scales: the most scales any model has (every finished run of a sweep's protocol).
        let page_scales = figures.iter().flatten().map(|f| &f.scales).max_by_key(|s| s.len()).cloned();
        let shared_raw: Vec<bool> =
            figures.iter().map(|f| f.as_ref().is_some_and(|f| Some(&f.scales) == page_scales.as_ref())).collect();
        let mut defs = String::new();
        let mut frames = Vec::new();
        for kind in [Kind::BoundVsThreshold, Kind::AccuracyVsScale, Kind::ScoreVsN] {
            let of_kind: Vec<&Plot> = plots.iter().flatten().filter(|(k, _)| *k == kind).map(|(_, p)| p).collect();
            if of_kind.is_empty() {
                continue;
            }
            let mut frame = Frame::fit(kind, of_kind.iter().copied());
            let with_page_scales = plots.iter().zip(&shared_raw).filter(|(_, s)| **s);
            if let Some((_, plot)) = with_page_scales.flat_map(|(p, _)| p).find(|(k, _)| *k == kind) {
                frame = frame.with_raw(plot);
            }
            symbol(&mut defs, &frame_id(kind), &frame.svg()?);
            frames.push((kind, frame.clone()));
            if kind == Kind::BoundVsThreshold {
                // Each model's bound curve per ε, once, in currentColor.
                for (m, model_plots) in plots.iter().enumerate() {
                    let Some((_, plot)) = model_plots.iter().find(|(k, _)| *k == kind) else { continue };
                    for (e, one) in plot.per_series().iter().enumerate() {
                        symbol(&mut defs, &curve_id(m, e), &frame.data_svg(one, true)?);
                    }
                }
            }
        }
        let defs = format!(
            "<svg class=\"defs\" aria-hidden=\"true\" width=\"0\" height=\"0\" focusable=\"false\">{defs}</svg>\n"
        );
        Ok(Self { defs, plots, shared_raw, frames })
    }

    fn plot(&self, model: usize, kind: Kind) -> Option<&Plot> {
        self.plots.get(model)?.iter().find(|(k, _)| *k == kind).map(|(_, p)| p)
    }

    /// The frame the page's figures of `kind` share (drawn where a model has that kind).
    fn frame(&self, kind: Kind) -> &Frame {
        &self.frames.iter().find(|(k, _)| *k == kind).expect("a frame of every kind a model has").1
    }
}

fn frame_id(kind: Kind) -> String {
    format!("f-{}", kind.stem())
}

fn curve_id(model: usize, epsilon: usize) -> String {
    format!("c-{model}-{epsilon}")
}

fn symbol(defs: &mut String, id: &str, children: &str) {
    let (w, h) = plot::SIZE;
    let _ = write!(defs, "<symbol id=\"{id}\" viewBox=\"0 0 {w} {h}\">{children}</symbol>");
}

/// An `<svg>` of the figure size, with `children`, labelled for screen readers.
fn svg(label: &str, class: &str, children: &str) -> String {
    let (w, h) = plot::SIZE;
    format!(
        "<svg class=\"{class}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\">{children}</svg>",
        esc(label)
    )
}

fn use_of(id: &str, extra: &str) -> String {
    let (w, h) = plot::SIZE;
    format!("<use href=\"#{id}\" width=\"{w}\" height=\"{h}\"{extra}/>")
}

fn legend_html(entries: &[plot::LegendEntry]) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for (label, colour, points) in entries {
        let class = if *points { "sw dot" } else { "sw" };
        let _ = write!(out, "<li><span class=\"{class}\" style=\"background:{colour}\"></span>{}</li>", esc(label));
    }
    out.push_str("</ul>");
    out
}

/// The protocol in one line: scales, samples, ε, thresholds.
fn protocol_line(plan: &ResolvedPlan, averaging: Averaging) -> String {
    let d = &plan.data;
    let (first, last) = (d.scales.first().copied().unwrap_or(f64::NAN), d.scales.last().copied().unwrap_or(f64::NAN));
    format!(
        "Data {:?}, {} scales ({first} … {last}), {} train + {} test per scale, seed {}; ε ∈ {:?} ({}); {} averaging.",
        d.shape,
        d.scales.len(),
        d.n_train,
        d.n_test,
        d.seed,
        plan.probe.epsilons,
        plan.probe.norm,
        averaging.name()
    )
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// HTML-escapes text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { "—".into() }
}

/// A score cell: the value (which the script sorts by), its 95 % interval below.
fn score_cell(score: f64, stderr: f64) -> String {
    let ci = if stderr.is_finite() && score.is_finite() {
        let (lo, hi) = crate::scoring::interval(score, stderr);
        format!("<small>{}–{}</small>", num(lo), num(hi))
    } else {
        String::new()
    };
    format!("<td>{}{ci}</td>", num(score))
}

/// A paired difference's cell: the signed value, its 95 % interval below.
fn difference_cell(d: f64, se: f64) -> String {
    let ci = if se.is_finite() {
        let (lo, hi) = crate::scoring::interval(d, se);
        format!("<small>{lo:+.4}–{hi:+.4}</small>")
    } else {
        String::new()
    };
    if d.is_finite() { format!("<td>{d:+.4}{ci}</td>") } else { "<td>—</td>".into() }
}

fn state_text(state: &ModelState) -> String {
    match state {
        ModelState::Partial { finished, planned } => format!("partial ({finished} of {planned} scales)"),
        ModelState::Failed { attempts, .. } => format!("failed ({attempts} attempt(s))"),
        other => other.name().to_string(),
    }
}

fn leaderboard(out: &mut String, sweep: &Collected, models: &[ModelView<'_>], figures: &Figures) {
    let board = &sweep.board;
    let sort_column = board.thresholds.iter().position(|&t| t == board.sort_by).unwrap_or(0);
    out.push_str(
        "<section id=\"leaderboard\"><h2>Leaderboard</h2>\n<div class=\"controls\"><label for=\"filter\">Filter \
         rows</label> <input id=\"filter\" type=\"search\" placeholder=\"model or family\" autocomplete=\"off\"> \
         <span id=\"shown\" aria-live=\"polite\"></span></div>\n<div class=\"scroll\"><table id=\"board\">\n",
    );
    let _ = writeln!(
        out,
        "<caption>One row per model and ε: the reference estimator's SynBench-score ({} mode) with its 95 % \
         jackknife interval; “pop.” is the population estimate at t = {}; “Δ top”: the paired difference to the \
         top row at t = {} with its 95 % interval; “group”: the rank group (rows not distinguishable from its best \
         row: paired t-tests at 95 %, Holm's correction).{} Tick rows to overlay their curves.</caption>",
        board.mode.name(),
        board.sort_by,
        board.sort_by,
        if board.protocols.len() > 1 {
            let groups: Vec<String> = board
                .protocols
                .iter()
                .enumerate()
                .skip(1)
                .map(|(k, d)| format!("protocol {} differs in {}", k + 1, d.join("; ")))
                .collect();
            format!(" Runs of other plans are ranked apart: {}.", esc(&groups.join("; ")))
        } else {
            String::new()
        }
    );
    let th = |label: &str, kind: &str| {
        format!("<th scope=\"col\" data-kind=\"{kind}\"><button type=\"button\">{label}</button></th>")
    };
    out.push_str("<thead><tr><th scope=\"col\">plot</th>");
    out.push_str(&th("rank", "num"));
    out.push_str(&th("model", "text"));
    out.push_str(&th("family", "text"));
    out.push_str(&th("ε", "num"));
    for t in &board.thresholds {
        out.push_str(&th(&format!("t = {t}"), "num"));
    }
    out.push_str(&th(&format!("pop. t = {}", board.sort_by), "num"));
    out.push_str(&th("Δ top", "num"));
    out.push_str(&th("group", "num"));
    let several = board.protocols.len() > 1;
    if several {
        out.push_str(&th("protocol", "num"));
    }
    for (label, kind) in [("width", "num"), ("img/s", "num"), ("device", "text"), ("state", "text")] {
        out.push_str(&th(label, kind));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut ticked = std::collections::BTreeSet::new();
    let ranks = board.ranks();
    for (rank, row) in board.rows.iter().enumerate() {
        let Some(m) = models.iter().position(|v| v.name == row.model) else { continue };
        let model = &models[m];
        let e = row.epsilon.and_then(|eps| model.run.and_then(|(r, _)| r.epsilons.iter().position(|&x| x == eps)));
        let has_curve = e.is_some() && figures.plot(m, Kind::BoundVsThreshold).is_some();
        let ticks = has_curve && ticked.len() < DEFAULT_OVERLAY && ticked.insert(m);
        let _ = write!(
            out,
            "<tr data-row=\"{rank}\" data-model=\"{}\" data-family=\"{}\">",
            esc(&model.name.to_lowercase()),
            esc(&model.family())
        );
        match e {
            Some(e) if has_curve => {
                let _ = write!(
                    out,
                    "<td><input type=\"checkbox\" class=\"pick\" data-curve=\"{}\" aria-label=\"overlay {} at ε = \
                     {}\"{}></td>",
                    curve_id(m, e),
                    esc(model.name),
                    board.rows[rank].epsilon.unwrap_or(f64::NAN),
                    if ticks { " checked" } else { "" }
                );
            }
            _ => out.push_str("<td></td>"),
        }
        let rank_text = ranks[rank].map_or(String::new(), |r| r.to_string());
        let _ = write!(
            out,
            "<td>{rank_text}</td><th scope=\"row\"><a href=\"#{}\">{}</a></th><td class=\"t\">{}</td><td>{}</td>",
            model.anchor,
            esc(model.name),
            esc(&model.family()),
            row.epsilon.map_or("—".into(), |v| v.to_string())
        );
        let scores = model.run.map(|(_, s)| s);
        let reference = e.and_then(|e| scores.map(|s| &s.reference.of(board.mode)[e]));
        for t in 0..board.thresholds.len() {
            match reference {
                Some(r) => out.push_str(&score_cell(r.scores[t], r.stderr[t])),
                None => out.push_str("<td>—</td>"),
            }
        }
        let population = e.and_then(|e| scores.and_then(|s| s.population.as_ref()).map(|p| &p.of(board.mode)[e]));
        match population {
            Some(p) => out.push_str(&score_cell(p.scores[sort_column], p.stderr[sort_column])),
            None => out.push_str("<td>—</td>"),
        }
        match row.to_top {
            Some((d, se)) => out.push_str(&difference_cell(d, se)),
            None => out.push_str("<td>—</td>"),
        }
        let _ = write!(out, "<td>{}</td>", row.rank_group.map_or("—".into(), |g| g.to_string()));
        if several {
            let _ = write!(out, "<td>{}</td>", row.epsilon.map_or(String::new(), |_| (row.protocol + 1).to_string()));
        }
        let opt = |v: Option<String>| v.unwrap_or_default();
        let width = opt(row.feature_dim.map(|d| d.to_string()));
        let speed = row.images_per_second.map(|v| format!("{v:.1}"));
        let error = match &row.state {
            ModelState::Failed { error, .. } => format!("<span class=\"error\">{}</span>", esc(error)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<td>{width}</td><td>{}</td><td class=\"t\">{}</td><td class=\"t state {}\">{}{error}</td></tr>",
            opt(speed),
            esc(&opt(row.device.clone())),
            row.state.name(),
            esc(&state_text(&row.state))
        );
    }
    out.push_str("</tbody></table></div>\n</section>\n");
}

fn overlay(out: &mut String, sweep: &Collected, models: &[ModelView<'_>], figures: &Figures) {
    let board = &sweep.board;
    out.push_str("<section id=\"curves\"><h2>Bound curves</h2>\n<figure class=\"fig wide\">");
    let mut layers = use_of(&frame_id(Kind::BoundVsThreshold), "");
    let mut legend = String::from("<ul class=\"legend\" id=\"overlay-legend\">");
    let mut ticked = std::collections::BTreeSet::new();
    for row in &board.rows {
        let Some(m) = models.iter().position(|v| v.name == row.model) else { continue };
        let model = &models[m];
        let Some(e) =
            row.epsilon.and_then(|eps| model.run.and_then(|(r, _)| r.epsilons.iter().position(|&x| x == eps)))
        else {
            continue;
        };
        if figures.plot(m, Kind::BoundVsThreshold).is_none() {
            continue;
        }
        let on = ticked.len() < DEFAULT_OVERLAY && ticked.insert(m);
        let colour = if on { plot::css_colour(ticked.len() - 1) } else { plot::css_colour(0) };
        let id = curve_id(m, e);
        let off = if on { "" } else { " off" };
        layers.push_str(&use_of(&id, &format!(" class=\"layer{off}\" data-curve=\"{id}\" style=\"color:{colour}\"")));
        let _ = write!(
            legend,
            "<li{} data-curve=\"{id}\"><span class=\"sw\" style=\"background:{colour}\"></span>{} ε = {}</li>",
            if on { "" } else { " class=\"off\"" },
            esc(model.name),
            row.epsilon.unwrap_or(f64::NAN)
        );
    }
    legend.push_str("</ul>");
    let palette = plot::css_palette();
    let overlay = svg("bound curves of the ticked rows", "overlay", &layers);
    out.push_str(&overlay.replacen(
        "class=\"overlay\"",
        &format!("class=\"overlay\" data-palette=\"{}\"", palette.join(" ")),
        1,
    ));
    let _ = writeln!(
        out,
        "<figcaption>Expected scaled bound against the threshold accuracy, with 95 % jackknife bands, of the rows \
         ticked in the leaderboard{}. {legend}</figcaption></figure>\n</section>",
        if figures.shared_raw.iter().any(|s| *s) { "; black: the raw data" } else { "" }
    );
}

fn width_figures(out: &mut String, sweep: &Collected, models: &[ModelView<'_>]) -> Result<()> {
    let board = &sweep.board;
    out.push_str("<section id=\"width\"><h2>Score against feature width</h2>\n");
    let scored: Vec<(&ModelView<'_>, usize, &RunScores)> = models
        .iter()
        .filter_map(|m| {
            let (run, scores) = m.run?;
            let width = m.results.and_then(|r| r.feature_dim).or(run.feature_dim)?;
            Some((m, width, scores))
        })
        .collect();
    let epsilon = scored.first().and_then(|(_, _, s)| s.epsilons.first().copied());
    let Some(epsilon) = epsilon else {
        out.push_str("<p>No finished model records its feature width yet.</p>\n</section>\n");
        return Ok(());
    };
    let plots: Vec<Plot> = board
        .thresholds
        .iter()
        .enumerate()
        .map(|(t, &threshold)| {
            let points: Vec<plot::WidthPoint> = scored
                .iter()
                .map(|(_, width, s)| plot::WidthPoint {
                    width: *width,
                    reference: (s.reference.of(board.mode)[0].scores[t], s.reference.of(board.mode)[0].stderr[t]),
                    population: s
                        .population
                        .as_ref()
                        .map(|p| (p.of(board.mode)[0].scores[t], p.of(board.mode)[0].stderr[t])),
                })
                .collect();
            Plot::score_vs_width(threshold, &points)
        })
        .collect();
    let frame = Frame::fit(Kind::ScoreVsWidth, &plots).titled("SynBench-score at the chosen threshold");
    let mut defs = String::new();
    symbol(&mut defs, &frame_id(Kind::ScoreVsWidth), &frame.svg()?);
    let _ = write!(
        out,
        "<div class=\"controls\"><label for=\"width-t\">Threshold</label> <select id=\"width-t\">{}</select></div>\n\
         <figure class=\"fig wide\"><svg class=\"defs\" aria-hidden=\"true\" width=\"0\" height=\"0\">{defs}</svg>",
        board
            .thresholds
            .iter()
            .enumerate()
            .map(|(t, v)| format!(
                "<option value=\"{t}\"{}>t = {v}</option>",
                if *v == board.sort_by { " selected" } else { "" }
            ))
            .collect::<String>()
    );
    for (t, plot) in plots.iter().enumerate() {
        let off = if board.thresholds[t] == board.sort_by { "" } else { " off" };
        let children = use_of(&frame_id(Kind::ScoreVsWidth), "") + &frame.data_svg(plot, false)?;
        let svg = svg(&format!("score at t = {} against feature width", board.thresholds[t]), "wfig", &children);
        out.push_str(&svg.replacen("class=\"wfig\"", &format!("class=\"wfig{off}\" data-t=\"{t}\""), 1));
    }
    let legend = plots.first().map(|p| legend_html(&p.legend())).unwrap_or_default();
    let _ = writeln!(
        out,
        "<figcaption>The SynBench-score at ε = {epsilon} against log2 of the feature width, one point per model with \
         its 95 % interval ({} models with a recorded width): where the reference estimator's width bias parts \
         it from the population estimate. {legend}</figcaption></figure>\n</section>",
        scored.len()
    );
    Ok(())
}

/// One model's section: tables, figures, warnings, provenance.
fn model_section(
    out: &mut String,
    model: &ModelView<'_>,
    figures: &Figures,
    protocol: Option<&ResolvedPlan>,
    open: bool,
    rank_at: f64,
) -> Result<()> {
    let m: usize = model.anchor.trim_start_matches("m-").parse().unwrap_or(0);
    let headline = model.run.map(|(run, scores)| {
        let s = scores.headline_scores();
        let t = scores.scoring.thresholds.iter().position(|&t| t == rank_at).unwrap_or(0);
        let best = s.iter().map(|x| x.scores[t]).filter(|v| v.is_finite()).fold(f64::NAN, f64::max);
        format!("best score {} at t = {} ({})", num(best), scores.scoring.thresholds[t], run.encoder)
    });
    let _ = writeln!(
        out,
        "<section class=\"model\" id=\"{id}\" aria-labelledby=\"{id}-h\"><details{}><summary><h3 id=\"{id}-h\">{}</h3> \
         <span class=\"state {}\">{}</span> <span class=\"muted\">{}</span></summary>",
        if open { " open" } else { "" },
        esc(model.name),
        model.state.name(),
        esc(&state_text(&model.state)),
        esc(&headline.unwrap_or_default()),
        id = model.anchor,
    );
    if let Some(failure) = model.failure {
        let _ = writeln!(
            out,
            "<p class=\"error\">Last attempt failed ({} attempt(s), {}, shard {}): {}</p>",
            failure.attempts,
            esc(&failure.kind),
            esc(&failure.shard),
            esc(&failure.error)
        );
        if !failure.traceback.is_empty() {
            let _ =
                writeln!(out, "<details><summary>Traceback</summary><pre>{}</pre></details>", esc(&failure.traceback));
        }
    }
    if let Some((run, scores)) = model.run {
        for estimator in Estimator::ALL {
            if let Some(table) = ScoreTable::of_run(&run.model, scores, estimator, Vec::new()) {
                score_table(out, &table);
            }
        }
        out.push_str("<div class=\"figs\">");
        for kind in [Kind::BoundVsThreshold, Kind::AccuracyVsScale, Kind::ScoreVsN] {
            let Some(plot) = figures.plot(m, kind) else { continue };
            let mut children = use_of(&frame_id(kind), "");
            let legend = plot.legend();
            if kind == Kind::BoundVsThreshold {
                for (e, one) in plot.per_series().iter().enumerate() {
                    let colour = one.legend().first().map(|l| l.1.clone()).unwrap_or_default();
                    children.push_str(&use_of(&curve_id(m, e), &format!(" style=\"color:{colour}\"")));
                }
                if !figures.shared_raw[m] {
                    children.push_str(&figures.frame(kind).data_svg(&plot.raw_only(), false)?);
                }
            } else {
                let drawn = if figures.shared_raw[m] { plot.without_raw() } else { plot.clone() };
                children.push_str(&figures.frame(kind).data_svg(&drawn, false)?);
            }
            let title = match kind {
                Kind::BoundVsThreshold => "Expected scaled bound against the threshold accuracy (95 % jackknife bands)",
                Kind::AccuracyVsScale => "Test accuracy against the mean scale",
                _ => {
                    "SynBench-score at the first threshold against the train samples per scale (95 % interval at the full size)"
                }
            };
            let _ = write!(
                out,
                "<figure class=\"fig\">{}<figcaption>{title}. {}</figcaption></figure>",
                svg(&format!("{}: {title}", model.name), kind.stem(), &children),
                legend_html(&legend)
            );
        }
        out.push_str("</div>\n");
        let warnings = model.results.map(|r| r.warnings.as_slice()).unwrap_or_default();
        if !warnings.is_empty() {
            out.push_str("<h4>Warnings</h4><ul class=\"warnings\">");
            for w in warnings {
                let _ = write!(out, "<li>{}</li>", esc(w));
            }
            out.push_str("</ul>\n");
        }
        provenance(out, run, model.results, protocol);
    }
    out.push_str("</details></section>\n");
    Ok(())
}

fn score_table(out: &mut String, table: &ScoreTable) {
    let _ = write!(
        out,
        "<div class=\"scroll\"><table class=\"scores\"><caption>{} estimator, {} mode, {} averaging: SynBench-score \
         with its 95 % interval</caption><thead><tr><th scope=\"col\">ε</th>",
        table.estimator.name(),
        table.mode.name(),
        table.averaging.name()
    );
    for t in &table.thresholds {
        let _ = write!(out, "<th scope=\"col\">t = {t}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", row.epsilon);
        for (s, se) in row.scores.iter().zip(&row.stderr) {
            out.push_str(&score_cell(*s, *se));
        }
        out.push_str("</tr>");
    }
    for (_, best) in table.best_epsilons() {
        out.push_str("<tr class=\"best\"><th scope=\"row\">best ε</th>");
        for b in best {
            let _ = write!(out, "<td>{}</td>", b.map_or("—".to_string(), |e| e.to_string()));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
}

fn provenance(out: &mut String, run: &SavedRun, results: Option<&ResultsFile>, protocol: Option<&ResolvedPlan>) {
    let plan = &run.plan;
    out.push_str("<details class=\"prov\"><summary>Provenance</summary><dl>");
    let mut item = |k: &str, v: String| {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    };
    item("encoder", run.encoder.clone());
    item("generator", format!("revision {}", plan.generator_revision));
    if let Some(r) = results {
        let p = &r.provenance;
        item("synbench", format!("{} (git {}), Burn {}", p.synbench_version, p.git_hash, p.crate_versions.burn));
        item("device", format!("{} on {}, {}", p.device, p.backend, p.precision));
        item("seeds", format!("data {} ({}), model {}", p.data_seed, p.data_generator, p.model_seed));
        item("feature width", r.feature_dim.map_or("—".into(), |d| d.to_string()));
        item("finished", format!("{} UTC", utc(p.finished_unix)));
        let s = &p.stage_seconds;
        item(
            "seconds",
            format!(
                "{:.1} in all: generation {:.1}, encoding {:.1}, statistics {:.1}, probe {:.1}, waiting {:.1}, \
                 workers' wait {:.1}, score {:.1}",
                p.seconds, s.generation, s.encoding, s.statistics, s.probe, s.waiting, s.workers_wait, s.score
            ),
        );
        item(
            "images",
            format!(
                "{} encoded, {} scales computed, {} images/s",
                p.images_encoded,
                p.scales_computed,
                p.encoder_images_per_second.map_or("—".into(), |v| format!("{v:.1}"))
            ),
        );
        item("peak memory", p.peak_rss_mib.map_or("—".into(), |v| format!("{v:.0} MiB")));
        item("plan hash", p.plan_hash.clone());
        item("config", p.config_file.clone());
    }
    out.push_str("</dl>");
    match protocol {
        Some(protocol) => {
            let changes = plan.changes_from(protocol);
            let others: Vec<String> =
                changes.iter().filter(|c| !c.field.starts_with("model.")).map(ToString::to_string).collect();
            let _ = write!(out, "<p>The model's plan section:</p><pre>{}</pre>", esc(&json(&plan.model)));
            if others.is_empty() {
                out.push_str("<p>Its other plan fields are the sweep's protocol.</p>");
            } else {
                let _ = write!(out, "<p>Fields that differ from the sweep's protocol: {}</p>", esc(&others.join("; ")));
            }
        }
        None => {
            let _ = write!(out, "<p>The resolved plan:</p><pre>{}</pre>", esc(&json(&plan)));
        }
    }
    out.push_str("</details>\n");
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (the civil calendar of H. Hinnant's `civil_from_days`).
fn utc(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The whole page.
fn page(title: &str, defs: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"synbench {}\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<a class=\"skip\" href=\"#main\">Skip to the \
         content</a>\n{defs}{}\n<footer><p>Written by synbench {}. Every number on this page is read from the \
         folder's files; <code>synbench report DIR</code> writes it again.</p></footer>\n<script>\n{SCRIPT}</script>\n\
         </body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(title),
        body.replacen("<main>", "<main id=\"main\">", 1),
        env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use synbench_probe::jackknife::{Nested, Replicate};
    use synbench_probe::{EpsilonOutcome, JACKKNIFE_GROUPS};
    use synbench_theory::{ScaleOutcome, expected_scaled_bound, raw_reference};

    use super::*;
    use crate::schema::ScaleRecord;
    use crate::sweep::{LeaderboardRow, collect_rows};

    #[test]
    fn escapes_and_dates() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // As `date -u -d @1796556471` prints it.
        assert_eq!(utc(1_796_556_471), "2026-12-06 11:27:51");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
    }

    const PROTOCOL: &str = r#"
[model]
arch = "identity"
name = "NAME"
[data]
shape = [4]
scales = [0.5, 1.0, 2.0, 3.0]
n_train = 400
n_test = 400
normalize = "none"
[probe]
epsilons = [0.0, 0.2]
[score]
thresholds = [0.6, 0.7]
"#;

    fn outcome(accuracy: f64) -> ScaleOutcome {
        ScaleOutcome { accuracy, scaled_bound: expected_scaled_bound(accuracy).unwrap() }
    }

    fn eps(epsilon: f64, accuracy: f64) -> EpsilonOutcome {
        let o = outcome(accuracy);
        EpsilonOutcome { epsilon, reference: o, exact: o, correct: (accuracy * 400.0) as u64, samples: 400 }
    }

    /// A run of hand-picked accuracies: `quality` below the raw data's at
    /// every scale, the jackknife groups spread evenly around them.
    fn run(name: &str, quality: f64, scales: usize) -> (SavedRun, RunScores) {
        let text = PROTOCOL.replace("NAME", name);
        let plan = crate::config::parse(Path::new("protocol.toml"), &text).unwrap();
        let resolved = ResolvedPlan::of(&plan);
        let records: Vec<ScaleRecord> = resolved.data.scales[..scales]
            .iter()
            .enumerate()
            .map(|(index, &scale)| {
                let raw = raw_reference(scale).unwrap();
                let at = |e: f64, d: f64| (raw.accuracy - quality - 0.02 * e + d).clamp(0.51, 0.999);
                let group = |g: usize| 0.004 * (g as f64 - 4.5);
                ScaleRecord {
                    index,
                    scale,
                    raw,
                    epsilons: vec![eps(0.0, at(0.0, 0.0)), eps(0.2, at(1.0, 0.0))],
                    population: Some(vec![outcome(at(0.0, 0.01)), outcome(at(1.0, 0.01))]),
                    replicates: (0..JACKKNIFE_GROUPS)
                        .map(|g| Replicate {
                            train: vec![outcome(at(0.0, group(g))), outcome(at(1.0, group(g)))],
                            test: vec![eps(0.0, at(0.0, -group(g))), eps(0.2, at(1.0, -group(g)))],
                            population: Some(vec![
                                outcome(at(0.0, 0.01 + group(g))),
                                outcome(at(1.0, 0.01 + group(g))),
                            ]),
                        })
                        .collect(),
                    nested: vec![Nested {
                        n_train: 200,
                        epsilons: vec![eps(0.0, at(0.0, -0.03)), eps(0.2, at(1.0, -0.03))],
                        population: Some(vec![outcome(at(0.0, 0.0)), outcome(at(1.0, 0.0))]),
                    }],
                }
            })
            .collect();
        let mut saved =
            SavedRun::from_plan(format!("/runs/{name}").into(), &resolved, "random init".into(), records).unwrap();
        if scales < resolved.data.scales.len() {
            saved.encoder = format!("partial run ({scales} of 4 scales)");
        }
        let scores = saved.scores().unwrap();
        (saved, scores)
    }

    /// The page between `<body>` and the script (the stylesheet and the script are files of their own).
    fn body(html: &str) -> &str {
        let start = html.find("<body>").unwrap();
        let end = html.find("<script>").unwrap();
        &html[start..end]
    }

    #[test]
    fn a_run_page_of_hand_built_results() {
        let (run, scores) = run("toy_encoder", 0.05, 4);
        let html = run_html(&run, &scores, None).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert_eq!(html.matches("<table class=\"scores\">").count(), 2);
        insta::assert_snapshot!("run_report", body(&html));
    }

    #[test]
    fn a_sweep_page_of_hand_built_results() {
        let good = run("good_encoder", 0.02, 4);
        let weak = run("weak_encoder", 0.12, 4);
        let partial = run("half_done", 0.06, 2);
        let failure = Failure {
            model: "broken".into(),
            spec: "broken".into(),
            error: "RuntimeError: <CUDA> out of memory".into(),
            kind: "RuntimeError".into(),
            traceback: "Traceback (most recent call last): ...".into(),
            attempts: 2,
            shard: "0/1".into(),
            host: "node1".into(),
            unix_time: 0,
        };
        let models = vec![
            CollectedModel { name: "weak_encoder".into(), state: ModelState::Finished, run: Some(weak), failure: None },
            CollectedModel { name: "good_encoder".into(), state: ModelState::Finished, run: Some(good), failure: None },
            CollectedModel {
                name: "half_done".into(),
                state: ModelState::Partial { finished: 2, planned: 4 },
                run: Some(partial),
                failure: None,
            },
            CollectedModel {
                name: "broken".into(),
                state: ModelState::Failed { error: failure.error.clone(), attempts: 2 },
                run: None,
                failure: Some(failure),
            },
        ];
        let board = collect_rows(&models, None).unwrap();
        let ranked: Vec<(&str, Option<f64>)> =
            board.rows.iter().map(|r: &LeaderboardRow| (r.model.as_str(), r.epsilon)).collect();
        assert_eq!(ranked[0].0, "good_encoder");
        assert_eq!(ranked.last(), Some(&("broken", None)));
        let html = sweep_html("toy sweep", &Collected { board, models }).unwrap();
        // Escaped text, one section per model, the overlay's default selection.
        assert!(html.contains("RuntimeError: &lt;CUDA&gt; out of memory") && !html.contains("<CUDA>"));
        assert_eq!(html.matches("<section class=\"model\"").count(), 4);
        assert_eq!(html.matches(" checked>").count(), 3);
        insta::assert_snapshot!("sweep_report", body(&html));

        // A sweep with nothing scored yet still has a page: the failure, no figures.
        let only = vec![CollectedModel {
            name: "broken".into(),
            state: ModelState::Failed { error: "boom".into(), attempts: 1 },
            run: None,
            failure: None,
        }];
        let board = collect_rows(&only, None).unwrap();
        let html = sweep_html("empty", &Collected { board, models: only }).unwrap();
        assert!(html.contains("boom") && html.contains("No finished model records its feature width yet"));
        assert!(!html.contains("<symbol"));
    }
}
