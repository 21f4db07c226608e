//! The paper's two figures, as SVG and PNG (plotters, with an embedded
//! DejaVu Sans so no system font library is needed):
//!
//! * `bound_vs_threshold` — the expected scaled bound E_curve(a_t) against the
//!   threshold accuracy a_t (SPEC §4), for the raw data and for the
//!   representation at each ε; SynBench-score(t) is the ratio of the areas
//!   right of t;
//!   The representation's curves carry a band: the pointwise 95 % interval
//!   from the run's jackknife replicates (SPEC §7), computed by
//!   [`crate::scoring`];
//! * `accuracy_vs_scale` — test accuracy against the mean scale s, the raw
//!   data's Φ(s) beside the representation at each ε;
//! * `score_vs_n` — the score at the first threshold against the train size
//!   (nested prefixes of the train split, then all of it), the reference and
//!   the population estimator at each ε, with the 95 % interval at the full
//!   size: how far from converged in n the reference score is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use synbench_probe::T975;
use synbench_theory::{ScaleOutcome, expected_bound_curve, reference_threshold_grid};

use crate::error::{ExperimentError, Result};
use crate::scoring::BandPoint;

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 600);

/// One line of a figure.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Per-scale outcomes, in scale order.
    pub outcomes: Vec<ScaleOutcome>,
    /// The pointwise 95 % band of its bound curve, `(a_t, low, high)`
    /// ([`crate::scoring::RunScores::bands`]; none: no band).
    pub band: Option<Vec<BandPoint>>,
}

/// One line of `score_vs_n`: `(n_train, score, stderr)` points.
#[derive(Debug, Clone)]
pub struct SizeSeries {
    /// Legend label.
    pub label: String,
    /// Whether it is the population estimator's (drawn dashed).
    pub population: bool,
    /// Index of its ε (its colour).
    pub epsilon_index: usize,
    /// Points by train size; stderr NaN where unknown.
    pub points: Vec<(f64, f64, f64)>,
}

/// What a figure shows.
#[derive(Debug, Clone)]
pub struct Figure<'a> {
    /// First title line (the model).
    pub title: &'a str,
    /// Second title line (the encoder in words: "random init" shows here).
    pub subtitle: &'a str,
    /// Mean scales.
    pub scales: &'a [f64],
    /// The raw data's reference outcomes.
    pub raw: &'a [ScaleOutcome],
    /// The representation, one series per ε.
    pub representation: &'a [Series],
    /// The score by train size (empty: no `score_vs_n` figure).
    pub by_size: &'a [SizeSeries],
    /// The threshold `by_size` is scored at.
    pub size_threshold: f64,
}

fn register_embedded_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ExperimentError::Plot("the embedded DejaVu Sans font could not be loaded".into())) }
}

fn colour(i: usize) -> RGBColor {
    // Colour-blind-safe (Okabe–Ito) after the black raw curve.
    const PALETTE: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(240, 228, 66),
    ];
    PALETTE[i % PALETTE.len()]
}

fn drawing_error<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ExperimentError {
    move |e| ExperimentError::Plot(format!("cannot draw {what}: {e}"))
}

/// Writes `<stem>.svg` and `<stem>.png` for both figures into `dir`; returns the paths.
pub fn write_figures(dir: &Path, figure: &Figure<'_>) -> Result<Vec<PathBuf>> {
    register_embedded_font()?;
    let mut written = Vec::new();
    let mut kinds = vec![("bound_vs_threshold", Kind::BoundVsThreshold), ("accuracy_vs_scale", Kind::AccuracyVsScale)];
    if figure.by_size.iter().any(|s| s.points.len() > 1) {
        kinds.push(("score_vs_n", Kind::ScoreVsN));
    }
    for (stem, kind) in kinds {
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        // Draw to a temp name and rename, like every other output.
        let svg_tmp = dir.join(format!(".{stem}.svg.tmp"));
        let png_tmp = dir.join(format!(".{stem}.tmp.png"));
        {
            let root = SVGBackend::new(&svg_tmp, SIZE).into_drawing_area();
            draw(&root, kind, figure)?;
            root.present().map_err(drawing_error(stem))?;
        }
        {
            let root = BitMapBackend::new(&png_tmp, SIZE).into_drawing_area();
            draw(&root, kind, figure)?;
            root.present().map_err(drawing_error(stem))?;
        }
        for (tmp, path) in [(svg_tmp, &svg), (png_tmp, &png)] {
            std::fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, "cannot move the drawn figure to", e))?;
        }
        written.extend([svg, png]);
    }
    Ok(written)
}

#[derive(Clone, Copy)]
enum Kind {
    BoundVsThreshold,
    AccuracyVsScale,
    ScoreVsN,
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, kind: Kind, figure: &Figure<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    match kind {
        Kind::BoundVsThreshold => draw_bound_vs_threshold(root, figure),
        Kind::AccuracyVsScale => draw_accuracy_vs_scale(root, figure),
        Kind::ScoreVsN => draw_score_vs_n(root, figure),
    }
}

/// One figure's frame: ranges, axis titles, where the legend goes, and
/// whether the points get markers (a step curve has none; scales do).
struct Axes {
    name: &'static str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'static str,
    y_desc: String,
    legend: SeriesLabelPosition,
    markers: bool,
}

type Line = (String, RGBColor, Vec<(f64, f64)>);

/// A shaded interval: colour and `(x, low, high)` points.
type Band = (RGBColor, Vec<(f64, f64, f64)>);

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    figure: &Figure<'_>,
    axes: Axes,
    bands: Vec<Band>,
    lines: Vec<Line>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = drawing_error(axes.name);
    root.fill(&WHITE).map_err(&err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{} — {}", figure.title, figure.subtitle), ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(axes.x, axes.y)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc.as_str())
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(&err)?;
    for (colour, points) in bands {
        let mut outline: Vec<(f64, f64)> = points.iter().map(|&(x, lo, _)| (x, lo)).collect();
        outline.extend(points.iter().rev().map(|&(x, _, hi)| (x, hi)));
        chart.draw_series(std::iter::once(Polygon::new(outline, colour.mix(0.18).filled()))).map_err(&err)?;
    }
    for (label, colour, points) in lines {
        let style = ShapeStyle::from(&colour).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(&err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if axes.markers {
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled()))).map_err(&err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(axes.legend)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(&err)?;
    Ok(())
}

fn draw_bound_vs_threshold<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let grid = reference_threshold_grid();
    let curve = |outcomes: &[ScaleOutcome]| -> Result<Vec<(f64, f64)>> {
        let values = expected_bound_curve(outcomes, &grid)?;
        Ok(grid.iter().copied().zip(values).filter(|(_, v)| v.is_finite()).collect())
    };
    let mut lines = vec![("raw data".to_string(), BLACK, curve(figure.raw)?)];
    let mut bands = Vec::new();
    for (i, series) in figure.representation.iter().enumerate() {
        lines.push((series.label.clone(), colour(i), curve(&series.outcomes)?));
        if let Some(band) = &series.band {
            bands.push((colour(i), band.clone()));
        }
    }
    let top = lines.iter().flat_map(|(_, _, c)| c.iter().map(|p| p.1)).fold(0.0, f64::max);
    let axes = Axes {
        name: "bound_vs_threshold",
        x: 0.6..1.0,
        y: 0.0..if top > 0.0 { top * 1.08 } else { 1.0 },
        x_desc: "threshold accuracy a_t",
        y_desc: "expected scaled bound E(a_t)".into(),
        legend: SeriesLabelPosition::UpperRight,
        markers: false,
    };
    draw_lines(root, figure, axes, bands, lines)
}

fn draw_accuracy_vs_scale<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let lo = figure.scales.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = figure.scales.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let pad = 0.03 * (hi - lo);
    let points = |outcomes: &[ScaleOutcome]| -> Vec<(f64, f64)> {
        figure.scales.iter().copied().zip(outcomes.iter().map(|o| o.accuracy)).collect()
    };
    let mut lines = vec![("raw data Φ(s)".to_string(), BLACK, points(figure.raw))];
    for (i, series) in figure.representation.iter().enumerate() {
        lines.push((series.label.clone(), colour(i), points(&series.outcomes)));
    }
    let axes = Axes {
        name: "accuracy_vs_scale",
        x: (lo - pad)..(hi + pad),
        y: 0.4..1.02,
        x_desc: "mean scale s",
        y_desc: "test accuracy".into(),
        legend: SeriesLabelPosition::LowerRight,
        markers: true,
    };
    draw_lines(root, figure, axes, Vec::new(), lines)
}

fn draw_score_vs_n<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // log2 of the train size on x, so n/4, n/2, n are evenly spaced.
    let xs: Vec<f64> = figure.by_size.iter().flat_map(|s| s.points.iter().map(|p| p.0.log2())).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    let (mut bottom, mut top) = (f64::INFINITY, f64::NEG_INFINITY);
    for series in figure.by_size {
        let c = colour(series.epsilon_index);
        let c = if series.population { RGBColor(c.0 / 2, c.1 / 2, c.2 / 2) } else { c };
        let points: Vec<(f64, f64)> =
            series.points.iter().filter(|p| p.1.is_finite()).map(|&(n, v, _)| (n.log2(), v)).collect();
        for &(n, v, se) in &series.points {
            if v.is_finite() && se.is_finite() {
                let (l, h) = (v - T975 * se, v + T975 * se);
                bottom = bottom.min(l);
                top = top.max(h);
                let w = 0.04 * (hi - lo);
                bands.push((c, vec![(n.log2() - w, l, h), (n.log2() + w, l, h)]));
            }
        }
        for &(_, v) in &points {
            bottom = bottom.min(v);
            top = top.max(v);
        }
        lines.push((series.label.clone(), c, points));
    }
    let (bottom, top) = if top > bottom { (bottom, top) } else { (0.0, 1.0) };
    let pad = 0.08 * (top - bottom).max(0.05);
    let pad_x = 0.1 * (hi - lo);
    let axes = Axes {
        name: "score_vs_n",
        x: (lo - pad_x)..(hi + pad_x),
        y: (bottom - pad)..(top + pad),
        x_desc: "log2 of the train samples per scale",
        y_desc: format!("SynBench-score at t = {}", figure.size_threshold),
        legend: SeriesLabelPosition::LowerRight,
        markers: true,
    };
    draw_lines(root, figure, axes, bands, lines)
}
