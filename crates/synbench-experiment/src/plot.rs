//! The paper's figures, drawn once with plotters (an embedded DejaVu Sans,
//! so no system font library is needed) onto any backend: the run folder's
//! SVG and PNG files ([`write_figures`]) and the report page's inline SVG
//! ([`crate::report`]) come from the same drawing code.
//!
//! * `bound_vs_threshold` — the expected scaled bound E_curve(a_t) against the
//!   threshold accuracy a_t (SPEC §4), for the raw data and for the
//!   representation at each ε; SynBench-score(t) is the ratio of the areas
//!   right of t. The representation's curves carry a band: the pointwise
//!   95 % interval from the run's jackknife replicates (SPEC §7), computed
//!   by [`crate::scoring`];
//! * `accuracy_vs_scale` — test accuracy against the mean scale s, the raw
//!   data's Φ(s) beside the representation at each ε;
//! * `score_vs_n` — the score at the first threshold against the train size
//!   (nested prefixes of the train split, then all of it), the reference and
//!   the population estimator at each ε, with the 95 % interval at the full
//!   size: how far from converged in n the reference score is;
//! * `score_vs_width` (a sweep's) — the score at one threshold against the
//!   models' feature width, both estimators with their 95 % intervals:
//!   where the reference and the population estimator part ways.
//!
//! A figure is a [`Plot`] (its lines and bands, in data coordinates) put on
//! a [`Frame`] (the axes: ranges, mesh, labels). A file draws both at once; a
//! report draws each frame once and every model's plot on it separately
//! ([`Frame::svg`], [`Frame::data_svg`]), so the plots of a sweep share
//! their axes and the page holds each frame once.

use std::fmt::Write as _;
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

/// Width and height of every figure, in pixels (the SVG's view box).
pub const SIZE: (u32, u32) = (900, 600);

/// The colour a plot drawn for [`Frame::data_svg`] with `current_colour`
/// uses, replaced by SVG's `currentColor` (so a `<use>` of it takes the
/// colour of the element that uses it).
const SENTINEL: RGBColor = RGBColor(1, 2, 3);

/// One line of a figure.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Palette index of its colour.
    pub colour: usize,
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
    /// Whether it is the population estimator's (drawn darker).
    pub population: bool,
    /// Index of its ε (its colour).
    pub epsilon_index: usize,
    /// Points by train size; stderr NaN where unknown.
    pub points: Vec<(f64, f64, f64)>,
}

/// One model of `score_vs_width`.
#[derive(Debug, Clone)]
pub struct WidthPoint {
    /// The model's feature width.
    pub width: usize,
    /// The reference estimator's score and stderr.
    pub reference: (f64, f64),
    /// The population estimator's, where the run carries it.
    pub population: Option<(f64, f64)>,
}

/// What a run's figures show.
#[derive(Debug, Clone)]
pub struct Figure {
    /// First title line (the model).
    pub title: String,
    /// Second title line (the encoder in words: "random init" shows here).
    pub subtitle: String,
    /// Mean scales.
    pub scales: Vec<f64>,
    /// The raw data's reference outcomes.
    pub raw: Vec<ScaleOutcome>,
    /// The representation, one series per ε.
    pub representation: Vec<Series>,
    /// The score by train size (empty: no `score_vs_n` figure).
    pub by_size: Vec<SizeSeries>,
    /// The threshold `by_size` is scored at.
    pub size_threshold: f64,
}

impl Figure {
    /// The kinds of figure it has: the paper's two, and `score_vs_n` with nested train sizes.
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds = vec![Kind::BoundVsThreshold, Kind::AccuracyVsScale];
        if self.by_size.iter().any(|s| s.points.len() > 1) {
            kinds.push(Kind::ScoreVsN);
        }
        kinds
    }
}

/// A kind of figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// E(a_t) against a_t.
    BoundVsThreshold,
    /// Test accuracy against the mean scale.
    AccuracyVsScale,
    /// The score against the train size.
    ScoreVsN,
    /// The score against the feature width (a sweep's).
    ScoreVsWidth,
}

impl Kind {
    /// Its file stem.
    pub fn stem(self) -> &'static str {
        match self {
            Kind::BoundVsThreshold => "bound_vs_threshold",
            Kind::AccuracyVsScale => "accuracy_vs_scale",
            Kind::ScoreVsN => "score_vs_n",
            Kind::ScoreVsWidth => "score_vs_width",
        }
    }
}

fn register_embedded_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ExperimentError::Plot("the embedded DejaVu Sans font could not be loaded".into())) }
}

/// Colour-blind-safe (Okabe–Ito) palette, after the black raw curve.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The palette's colour `i` as CSS `#rrggbb` (a report's legends).
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The whole palette as CSS colours.
pub fn css_palette() -> Vec<String> {
    (0..PALETTE.len()).map(css_colour).collect()
}

/// The colour of a population-estimator line of ε colour `i`.
fn darker(c: RGBColor) -> RGBColor {
    RGBColor(c.0 / 2, c.1 / 2, c.2 / 2)
}

fn drawing_error<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ExperimentError {
    move |e| ExperimentError::Plot(format!("cannot draw {what}: {e}"))
}

/// A line of a plot.
#[derive(Debug, Clone)]
struct Line {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
    /// Joined by segments (else markers only).
    joined: bool,
    /// Markers at the points.
    markers: bool,
    /// The raw data's curve (the same for every model of a sweep).
    raw: bool,
    /// The series it belongs to (its ε; `None`: no series, as the raw curve).
    series: Option<usize>,
}

/// A shaded interval: colour and `(x, low, high)` points.
#[derive(Debug, Clone)]
struct Band {
    colour: RGBColor,
    points: Vec<(f64, f64, f64)>,
    /// The series it belongs to.
    series: Option<usize>,
}

/// A figure's content in data coordinates, before it is put on a [`Frame`].
#[derive(Debug, Clone)]
pub struct Plot {
    /// The y axis title (it names the threshold of a score figure).
    y_desc: String,
    bands: Vec<Band>,
    lines: Vec<Line>,
}

/// One entry of a plot's legend: label, CSS colour, whether drawn as points.
pub type LegendEntry = (String, String, bool);

impl Plot {
    /// The plot of `kind` of a run's `figure`.
    pub fn of(kind: Kind, figure: &Figure) -> Result<Self> {
        match kind {
            Kind::BoundVsThreshold => bound_vs_threshold(figure),
            Kind::AccuracyVsScale => Ok(accuracy_vs_scale(figure)),
            Kind::ScoreVsN => Ok(score_vs_n(figure)),
            Kind::ScoreVsWidth => Err(ExperimentError::Plot("score_vs_width is a sweep's figure, not a run's".into())),
        }
    }

    /// `score_vs_width` of a sweep's models at `threshold`: log2 of the
    /// width across, each estimator's score with its 95 % interval.
    pub fn score_vs_width(threshold: f64, points: &[WidthPoint]) -> Self {
        let mut bands = Vec::new();
        let mut lines = Vec::new();
        for (population, label, c) in [(false, "reference", colour(0)), (true, "population", colour(1))] {
            let mut drawn = Vec::new();
            for p in points {
                let Some((score, stderr)) = (if population { p.population } else { Some(p.reference) }) else {
                    continue;
                };
                if !score.is_finite() {
                    continue;
                }
                // Population points a little right of the reference ones, so both intervals show.
                let x = (p.width as f64).log2() + if population { 0.04 } else { -0.04 };
                drawn.push((x, score));
                if stderr.is_finite() {
                    let (lo, hi) = (score - T975 * stderr, score + T975 * stderr);
                    bands.push(Band {
                        colour: c,
                        points: vec![(x - 0.015, lo, hi), (x + 0.015, lo, hi)],
                        series: None,
                    });
                }
            }
            lines.push(Line {
                label: format!("{label} estimator"),
                colour: c,
                points: drawn,
                joined: false,
                markers: true,
                raw: false,
                series: None,
            });
        }
        Self { y_desc: format!("SynBench-score at t = {threshold}"), bands, lines }
    }

    /// The raw data's curve alone.
    pub fn raw_only(&self) -> Self {
        Self { bands: Vec::new(), lines: self.lines.iter().filter(|l| l.raw).cloned().collect(), ..self.clone() }
    }

    /// Everything but the raw data's curve.
    pub fn without_raw(&self) -> Self {
        Self { lines: self.lines.iter().filter(|l| !l.raw).cloned().collect(), ..self.clone() }
    }

    /// One plot per series (ε), each with its line and band, in series order.
    pub fn per_series(&self) -> Vec<Self> {
        let count = self.lines.iter().filter_map(|l| l.series).max().map_or(0, |m| m + 1);
        (0..count)
            .map(|i| Self {
                lines: self.lines.iter().filter(|l| l.series == Some(i)).cloned().collect(),
                bands: self.bands.iter().filter(|b| b.series == Some(i)).cloned().collect(),
                ..self.clone()
            })
            .collect()
    }

    /// Draws markers only on lines of at most `max` points (a page of
    /// many models keeps its size).
    pub fn markers_up_to(mut self, max: usize) -> Self {
        for line in &mut self.lines {
            line.markers &= line.points.len() <= max || !line.joined;
        }
        self
    }

    /// Its legend, for a page that writes it beside the figure.
    pub fn legend(&self) -> Vec<LegendEntry> {
        self.lines
            .iter()
            .map(|l| {
                let RGBColor(r, g, b) = l.colour;
                (l.label.clone(), format!("#{r:02x}{g:02x}{b:02x}"), !l.joined)
            })
            .collect()
    }

    /// Every point it draws (with `bands`, the bands by both ends), for the axes' ranges.
    fn extent(&self, bands: bool) -> impl Iterator<Item = (f64, f64)> + '_ {
        let lines = self.lines.iter().flat_map(|l| l.points.iter().copied());
        let bands = self
            .bands
            .iter()
            .filter(move |_| bands)
            .flat_map(|b| b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
        lines.chain(bands).filter(|(x, y)| x.is_finite() && y.is_finite())
    }

    /// The same plot in one colour, `SENTINEL`, to be replaced by `currentColor`.
    fn in_sentinel(&self) -> Self {
        let mut plot = self.clone();
        plot.lines.iter_mut().for_each(|l| l.colour = SENTINEL);
        plot.bands.iter_mut().for_each(|b| b.colour = SENTINEL);
        plot
    }
}

fn bound_vs_threshold(figure: &Figure) -> Result<Plot> {
    let grid = reference_threshold_grid();
    let curve = |outcomes: &[ScaleOutcome]| -> Result<Vec<(f64, f64)>> {
        let values = expected_bound_curve(outcomes, &grid)?;
        Ok(grid.iter().copied().zip(values).filter(|(a, v)| v.is_finite() && *a >= 0.6).collect())
    };
    let line = |label: String, colour, points, series: Option<usize>| Line {
        label,
        colour,
        points,
        joined: true,
        markers: false,
        raw: series.is_none(),
        series,
    };
    let mut lines = vec![line("raw data".into(), BLACK, curve(&figure.raw)?, None)];
    let mut bands = Vec::new();
    for (i, series) in figure.representation.iter().enumerate() {
        lines.push(line(series.label.clone(), colour(series.colour), curve(&series.outcomes)?, Some(i)));
        if let Some(band) = &series.band {
            let points = band.iter().copied().filter(|p| p.0 >= 0.6).collect();
            bands.push(Band { colour: colour(series.colour), points, series: Some(i) });
        }
    }
    Ok(Plot { y_desc: "expected scaled bound E(a_t)".into(), bands, lines })
}

fn accuracy_vs_scale(figure: &Figure) -> Plot {
    let points = |outcomes: &[ScaleOutcome]| -> Vec<(f64, f64)> {
        figure.scales.iter().copied().zip(outcomes.iter().map(|o| o.accuracy)).collect()
    };
    let line = |label: String, colour, points, series: Option<usize>| Line {
        label,
        colour,
        points,
        joined: true,
        markers: true,
        raw: series.is_none(),
        series,
    };
    let mut lines = vec![line("raw data Φ(s)".into(), BLACK, points(&figure.raw), None)];
    for (i, series) in figure.representation.iter().enumerate() {
        lines.push(line(series.label.clone(), colour(series.colour), points(&series.outcomes), Some(i)));
    }
    Plot { y_desc: "test accuracy".into(), bands: Vec::new(), lines }
}

fn score_vs_n(figure: &Figure) -> Plot {
    // log2 of the train size on x, so n/4, n/2, n are evenly spaced.
    let xs: Vec<f64> = figure.by_size.iter().flat_map(|s| s.points.iter().map(|p| p.0.log2())).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let w = if hi > lo { 0.04 * (hi - lo) } else { 0.08 };
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    for (i, series) in figure.by_size.iter().enumerate() {
        let c = colour(series.epsilon_index);
        let c = if series.population { darker(c) } else { c };
        for &(n, v, se) in &series.points {
            if v.is_finite() && se.is_finite() {
                let (l, h) = (v - T975 * se, v + T975 * se);
                let points = vec![(n.log2() - w, l, h), (n.log2() + w, l, h)];
                bands.push(Band { colour: c, points, series: Some(i) });
            }
        }
        let points = series.points.iter().filter(|p| p.1.is_finite()).map(|&(n, v, _)| (n.log2(), v)).collect();
        lines.push(Line {
            label: series.label.clone(),
            colour: c,
            points,
            joined: true,
            markers: true,
            raw: false,
            series: Some(i),
        });
    }
    Plot { y_desc: format!("SynBench-score at t = {}", figure.size_threshold), bands, lines }
}

/// A figure's axes: its kind's titles and the ranges that hold every plot
/// it was fitted to.
#[derive(Debug, Clone)]
pub struct Frame {
    kind: Kind,
    y_desc: String,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    /// The raw data's curve, drawn with the frame (a sweep's models share it).
    raw: Option<Plot>,
}

impl Frame {
    /// The axes of `kind` that hold all of `plots` (of that kind).
    pub fn fit<'a>(kind: Kind, plots: impl IntoIterator<Item = &'a Plot>) -> Self {
        let mut y_desc = None;
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for plot in plots {
            y_desc.get_or_insert_with(|| plot.y_desc.clone());
            for (x, y) in plot.extent(kind != Kind::BoundVsThreshold) {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
        }
        let spread = |lo: f64, hi: f64, half: f64| {
            if hi > lo {
                (lo, hi)
            } else if lo.is_finite() {
                (lo - half, lo + half)
            } else {
                (0.0, 1.0)
            }
        };
        let (x, y) = match kind {
            Kind::BoundVsThreshold => (0.6..1.0, 0.0..if y1 > 0.0 && y1.is_finite() { y1 * 1.08 } else { 1.0 }),
            Kind::AccuracyVsScale => {
                let (lo, hi) = spread(x0, x1, 0.5);
                let pad = 0.03 * (hi - lo);
                ((lo - pad)..(hi + pad), 0.4..1.02)
            }
            Kind::ScoreVsN | Kind::ScoreVsWidth => {
                let (lo, hi) = spread(x0, x1, 1.0);
                let (bottom, top) = spread(y0, y1, 0.5);
                let pad = 0.08 * (top - bottom).max(0.05);
                let pad_x = 0.1 * (hi - lo);
                ((lo - pad_x)..(hi + pad_x), (bottom - pad)..(top + pad))
            }
        };
        Self { kind, y_desc: y_desc.unwrap_or_default(), x, y, raw: None }
    }

    /// The same axes with another y axis title.
    pub fn titled(mut self, y_desc: &str) -> Self {
        self.y_desc = y_desc.into();
        self
    }

    /// The same axes, drawing `plot`'s raw data curve with the mesh.
    pub fn with_raw(mut self, plot: &Plot) -> Self {
        self.raw = Some(plot.raw_only());
        self
    }

    fn x_desc(&self) -> &'static str {
        match self.kind {
            Kind::BoundVsThreshold => "threshold accuracy a_t",
            Kind::AccuracyVsScale => "mean scale s",
            Kind::ScoreVsN => "log2 of the train samples per scale",
            Kind::ScoreVsWidth => "log2 of the feature width",
        }
    }

    fn legend(&self) -> SeriesLabelPosition {
        match self.kind {
            Kind::BoundVsThreshold => SeriesLabelPosition::UpperRight,
            _ => SeriesLabelPosition::LowerRight,
        }
    }

    /// The axes alone (mesh, labels, titles, the raw curve if set), on a
    /// transparent ground: the SVG's children, without the `<svg>` element.
    pub fn svg(&self) -> Result<String> {
        self.svg_of(Part::Frame, None)
    }

    /// `plot`'s lines and bands alone, in this frame's coordinates: the
    /// SVG's children. With `current_colour` every colour is `currentColor`.
    pub fn data_svg(&self, plot: &Plot, current_colour: bool) -> Result<String> {
        if current_colour {
            let svg = self.svg_of(Part::Data, Some(&plot.in_sentinel()))?;
            let RGBColor(r, g, b) = SENTINEL;
            Ok(svg.replace(&format!("#{r:02X}{g:02X}{b:02X}"), "currentColor"))
        } else {
            self.svg_of(Part::Data, Some(plot))
        }
    }

    fn svg_of(&self, part: Part, plot: Option<&Plot>) -> Result<String> {
        register_embedded_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
            self.draw(&root, part, plot, None)?;
            root.present().map_err(drawing_error(self.kind.stem()))?;
        }
        Ok(compact(svg_children(&out)))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        part: Part,
        plot: Option<&Plot>,
        caption: Option<&str>,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let err = drawing_error(self.kind.stem());
        if part == Part::Whole {
            root.fill(&WHITE).map_err(&err)?;
        }
        let mut builder = ChartBuilder::on(root);
        if let Some(caption) = caption {
            builder.caption(caption, ("sans-serif", 18));
        }
        // A page shows its figures at about half their size: larger labels there.
        let (font, x_area, y_area) = if part == Part::Whole { (14, 48, 64) } else { (22, 64, 96) };
        let mut chart = builder
            .margin(16)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(self.x.clone(), self.y.clone())
            .map_err(&err)?;
        if part != Part::Data {
            let mut mesh = chart.configure_mesh();
            mesh.x_desc(self.x_desc())
                .y_desc(self.y_desc.as_str())
                .label_style(("sans-serif", font))
                .axis_desc_style(("sans-serif", font));
            if part == Part::Frame {
                // A page's frames keep the labelled grid lines only (the fine ones are most of a frame's bytes).
                mesh.light_line_style(TRANSPARENT);
            }
            mesh.draw().map_err(&err)?;
        }
        let mut layers: Vec<&Plot> = Vec::new();
        if part == Part::Frame {
            layers.extend(&self.raw);
        }
        if part != Part::Frame {
            layers.extend(plot);
        }
        for plot in layers {
            // Bands are clipped to the axes (a wide interval would otherwise paint over the labels).
            let clip = |v: f64| v.clamp(self.y.start, self.y.end);
            for band in &plot.bands {
                let mut outline: Vec<(f64, f64)> = band.points.iter().map(|&(x, lo, _)| (x, clip(lo))).collect();
                outline.extend(band.points.iter().rev().map(|&(x, _, hi)| (x, clip(hi))));
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, band.colour.mix(0.18).filled())))
                    .map_err(&err)?;
            }
            for line in &plot.lines {
                let style = ShapeStyle::from(&line.colour).stroke_width(2);
                let c = line.colour;
                if line.joined {
                    let drawn = chart.draw_series(LineSeries::new(line.points.iter().copied(), style)).map_err(&err)?;
                    drawn
                        .label(line.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
                if line.markers {
                    let drawn =
                        chart.draw_series(line.points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(&err)?;
                    if !line.joined {
                        drawn.label(line.label.clone()).legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
                    }
                }
            }
        }
        if part == Part::Whole {
            chart
                .configure_series_labels()
                .position(self.legend())
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(&err)?;
        }
        Ok(())
    }
}

/// Which part of a figure to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Ground, caption, axes, lines, legend: a figure file.
    Whole,
    /// The axes alone (a report's shared frame).
    Frame,
    /// The lines and bands alone.
    Data,
}

/// The children of the one `<svg>` element plotters writes.
fn svg_children(svg: &str) -> &str {
    let start = svg.find("<svg").and_then(|i| svg[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
    let end = svg.rfind("</svg>").unwrap_or(svg.len());
    svg[start..end].trim()
}

/// The same SVG, smaller and drawn the same: default attributes dropped,
/// and every polyline and polygon written as a path of relative moves
/// (`h`, `v`, `l`; `z` closing a polygon) without the points that lie on a
/// straight horizontal or vertical run between their neighbours (a step
/// curve's flat parts, in whole pixels).
fn compact(svg: &str) -> String {
    let svg = svg.replace(" opacity=\"1\"", "").replace(" stroke=\"none\" stroke-width=\"1\"", "");
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg.as_str();
    loop {
        let next = ["<polyline ", "<polygon "].iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min();
        let Some((i, tag)) = next else { break };
        let Some(len) = rest[i..].find("/>") else { break };
        let element = &rest[i + tag.len()..i + len];
        let (Some(a), closed) = (element.find("points=\""), tag == "<polygon ") else { break };
        let b = a + "points=\"".len() + element[a + "points=\"".len()..].find('"').unwrap_or(0);
        out.push_str(&rest[..i]);
        out.push_str("<path ");
        out.push_str(&element[..a]);
        out.push_str("d=\"");
        out.push_str(&path_data(&simplify_points(&element[a + "points=\"".len()..b]), closed));
        out.push_str(&element[b..]);
        out.push_str("/>");
        rest = &rest[i + len + 2..];
    }
    out.push_str(rest);
    out
}

fn parse_points(list: &str) -> Vec<(i64, i64)> {
    list.split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

fn simplify_points(list: &str) -> Vec<(i64, i64)> {
    let points = parse_points(list);
    let mut kept: Vec<(i64, i64)> = Vec::with_capacity(points.len());
    for (i, &p) in points.iter().enumerate() {
        if kept.last() == Some(&p) {
            continue;
        }
        if let (Some(&prev), Some(&next)) = (kept.last(), points.get(i + 1))
            && ((prev.1 == p.1 && p.1 == next.1 && (prev.0 - p.0).signum() == (p.0 - next.0).signum())
                || (prev.0 == p.0 && p.0 == next.0 && (prev.1 - p.1).signum() == (p.1 - next.1).signum()))
        {
            continue;
        }
        kept.push(p);
    }
    kept
}

/// SVG path data through `points`: an absolute move, then relative lines.
fn path_data(points: &[(i64, i64)], closed: bool) -> String {
    let mut d = String::new();
    let mut at = (0, 0);
    for (i, &(x, y)) in points.iter().enumerate() {
        let (dx, dy) = (x - at.0, y - at.1);
        let _ = match (i, dx, dy) {
            (0, _, _) => write!(d, "M{x},{y}"),
            (_, _, 0) => write!(d, "h{dx}"),
            (_, 0, _) => write!(d, "v{dy}"),
            _ => write!(d, "l{dx},{dy}"),
        };
        at = (x, y);
    }
    if closed {
        d.push('z');
    }
    d
}

/// Writes `<stem>.svg` and `<stem>.png` of each of the figure's kinds into
/// `dir`; returns the paths.
pub fn write_figures(dir: &Path, figure: &Figure) -> Result<Vec<PathBuf>> {
    register_embedded_font()?;
    let caption = format!("{} — {}", figure.title, figure.subtitle);
    let mut written = Vec::new();
    for kind in figure.kinds() {
        let stem = kind.stem();
        let plot = Plot::of(kind, figure)?;
        let frame = Frame::fit(kind, [&plot]);
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        // Draw to a temp name and rename, like every other output.
        let svg_tmp = dir.join(format!(".{stem}.svg.tmp"));
        let png_tmp = dir.join(format!(".{stem}.tmp.png"));
        {
            let root = SVGBackend::new(&svg_tmp, SIZE).into_drawing_area();
            frame.draw(&root, Part::Whole, Some(&plot), Some(&caption))?;
            root.present().map_err(drawing_error(stem))?;
        }
        {
            let root = BitMapBackend::new(&png_tmp, SIZE).into_drawing_area();
            frame.draw(&root, Part::Whole, Some(&plot), Some(&caption))?;
            root.present().map_err(drawing_error(stem))?;
        }
        for (tmp, path) in [(svg_tmp, &svg), (png_tmp, &png)] {
            std::fs::rename(&tmp, path).map_err(|e| ExperimentError::io(path, "cannot move the drawn figure to", e))?;
        }
        written.extend([svg, png]);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplified_points_drop_only_the_inner_points_of_straight_runs() {
        assert_eq!(simplify_points("0,5 1,5 2,5 3,4 3,3 3,2 4,2 "), [(0, 5), (2, 5), (3, 4), (3, 2), (4, 2)]);
        // A run that turns back keeps its turning point; repeats go.
        assert_eq!(simplify_points("0,5 2,5 1,5 1,5"), [(0, 5), (2, 5), (1, 5)]);
        assert_eq!(path_data(&[(10, 5), (12, 5), (13, 4), (13, 2)], true), "M10,5h2l1,-1v-2z");
        assert_eq!(
            compact(
                r##"<g><polyline fill="none" opacity="1" points="0,1 1,1 2,1 "/><polygon fill="#000000" points="1,1 3,1 3,4"/></g>"##
            ),
            r##"<g><path fill="none" d="M0,1h2"/><path fill="#000000" d="M1,1h2v3z"/></g>"##
        );
    }

    fn outcome(accuracy: f64) -> ScaleOutcome {
        ScaleOutcome { accuracy, scaled_bound: synbench_theory::expected_scaled_bound(accuracy).unwrap() }
    }

    #[test]
    fn frame_and_data_share_coordinates_and_current_colour_replaces_the_colours() {
        let scales = [0.5, 1.0, 1.5];
        let raw: Vec<ScaleOutcome> = scales.iter().map(|&s| synbench_theory::raw_reference(s).unwrap()).collect();
        let series = vec![Series {
            label: "m ε = 0".into(),
            colour: 0,
            outcomes: vec![outcome(0.6), outcome(0.7), outcome(0.8)],
            band: None,
        }];
        let figure = Figure {
            title: "m".into(),
            subtitle: "random init".into(),
            scales: scales.to_vec(),
            raw,
            representation: series,
            by_size: Vec::new(),
            size_threshold: 0.7,
        };
        let plot = Plot::of(Kind::AccuracyVsScale, &figure).unwrap();
        let frame = Frame::fit(Kind::AccuracyVsScale, [&plot]);
        let data = frame.data_svg(&plot.without_raw(), true).unwrap();
        // Three markers and one line, all in currentColor; no mesh text.
        assert_eq!(data.matches("<circle").count(), 3);
        assert_eq!(data.matches("<path").count(), 1);
        assert!(!data.contains("#0072B2") && data.contains("currentColor"));
        assert!(!data.contains("<text"));
        let axes = frame.svg().unwrap();
        assert!(axes.contains("mean scale s") && axes.contains("test accuracy"));
        assert!(!axes.contains("<svg"));
        let coloured = frame.data_svg(&plot.without_raw(), false).unwrap();
        assert!(!coloured.contains("opacity=\"1\""));
        assert!(coloured.contains("#0072B2"));
        assert_eq!(plot.legend()[0], ("raw data Φ(s)".to_string(), "#000000".to_string(), false));
    }
}
