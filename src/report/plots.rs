//! The report's charts, drawn with plotters: each as an SVG string (inlined
//! in report.html) and as PNG and SVG files under `plots/`. Text uses the
//! bundled DejaVu Sans, so no system font is needed.
//!
//! A chart is data first ([`Chart`]); [`render`] draws it on any plotters
//! backend, so the SVG and the PNG are the same drawing.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

pub const WIDTH: u32 = 820;
pub const HEIGHT: u32 = 440;
/// Scatter points drawn at most; more cannot be told apart at this size.
pub const MAX_POINTS: usize = 1500;

const FONT: &str = "sans-serif";
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_: RGBColor = RGBColor(44, 160, 44);
const RED_: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(170, 170, 170);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// What a point stands for; it decides the marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// Measured and within the constraints.
    Feasible,
    /// Measured, but breaks a constraint.
    Infeasible,
    /// On the Pareto front.
    Front,
    Winner,
    Baseline,
    Defaults,
}

impl Mark {
    fn label(self) -> &'static str {
        match self {
            Mark::Feasible => "trial",
            Mark::Infeasible => "breaks a constraint",
            Mark::Front => "Pareto front",
            Mark::Winner => "recommended",
            Mark::Baseline => "your baseline",
            Mark::Defaults => "llama.cpp defaults",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Mark::Feasible => BLUE_,
            Mark::Infeasible => GREY,
            Mark::Front => ORANGE,
            Mark::Winner => GREEN_,
            Mark::Baseline => RED_,
            Mark::Defaults => PURPLE,
        }
    }

    fn size(self) -> i32 {
        match self {
            Mark::Feasible | Mark::Infeasible => 3,
            Mark::Front => 4,
            _ => 7,
        }
    }
}

/// A point of a scatter chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub mark: Mark,
}

/// One level of an effect chart: the ratio to the winner with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    /// (low, ratio, high); `None` when the level was never measured.
    pub ratio: Option<(f64, f64, f64)>,
    /// The same comparison over every pair of trials (drawn in orange
    /// behind the main estimate), when there is one.
    pub across: Option<(f64, f64, f64)>,
    pub is_winner: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChartKind {
    /// Objective per trial in recording order, with the best so far.
    History {
        points: Vec<Point>,
        best_so_far: Vec<(f64, f64)>,
        /// Trial numbers that failed (drawn as crosses along the bottom).
        failed: Vec<f64>,
    },
    /// A scatter with an optional line through some points (the front).
    Scatter {
        points: Vec<Point>,
        line: Vec<(f64, f64)>,
    },
    /// Ratio to the winner for each value of a parameter.
    Effect { bars: Vec<Bar> },
    /// One line per configuration through (x, mean ± sd) points; with
    /// `right`, more lines (dashed) against a second y axis.
    Lines {
        lines: Vec<Line>,
        right: Option<(String, Vec<Line>)>,
        /// x values on a log2 scale (n_parallel 1, 2, 4, 8).
        log2_x: bool,
        /// A vertical marker at this x, with its label (the knee).
        marker: Option<(f64, String)>,
    },
    /// The best objective for each pair of values of two parameters.
    Heatmap {
        x_values: Vec<String>,
        y_values: Vec<String>,
        /// (x index, y index, value)
        cells: Vec<(usize, usize, f64)>,
        /// Whether larger values are better (colour scale direction).
        higher_is_better: bool,
    },
}

/// A line of a line chart: its legend label and (x, mean, sd) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem and the report's `data-plot` name, e.g. `effect-n_batch`.
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: ChartKind,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> Result<String, String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        render(&root, chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Writes the chart as a PNG file.
pub fn png(chart: &Chart, path: &Path) -> Result<(), String> {
    register_font();
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    render(&root, chart)?;
    root.present().map_err(|e| e.to_string())
}

/// Draws `chart` on any backend.
pub fn render<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(&chart.title, (FONT, 20).into_font().style(FontStyle::Bold))
        .map_err(err)?;
    match &chart.kind {
        ChartKind::History {
            points,
            best_so_far,
            failed,
        } => draw_history(&root, chart, points, best_so_far, failed).map_err(err),
        ChartKind::Scatter { points, line } => {
            draw_scatter(&root, chart, points, line).map_err(err)
        }
        ChartKind::Effect { bars } => draw_effect(&root, chart, bars).map_err(err),
        ChartKind::Lines {
            lines,
            right,
            log2_x,
            marker,
        } => draw_lines(
            &root,
            chart,
            lines,
            right.as_ref(),
            *log2_x,
            marker.as_ref(),
        )
        .map_err(err),
        ChartKind::Heatmap {
            x_values,
            y_values,
            cells,
            higher_is_better,
        } => draw_heatmap(&root, chart, x_values, y_values, cells, *higher_is_better).map_err(err),
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A range covering `values` with a margin, never empty.
fn span(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && lo > 0.0 {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        hi = lo + lo.abs().max(1.0) * 0.1;
        lo -= lo.abs().max(1.0) * 0.1;
    }
    let pad = (hi - lo) * 0.06;
    (if from_zero && lo >= 0.0 { lo } else { lo - pad }, hi + pad)
}

/// Points in draw order: ordinary first, highlighted last (on top), one
/// legend entry per mark.
type XY = Cartesian2d<RangedCoordf64, RangedCoordf64>;

fn draw_points<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, XY>,
    points: &[Point],
) -> DrawResult<DB> {
    let order = [
        Mark::Infeasible,
        Mark::Feasible,
        Mark::Front,
        Mark::Defaults,
        Mark::Baseline,
        Mark::Winner,
    ];
    for mark in order {
        let these: Vec<&Point> = points.iter().filter(|p| p.mark == mark).collect();
        if these.is_empty() {
            continue;
        }
        let color = mark.color();
        let size = mark.size();
        let filled = !matches!(mark, Mark::Infeasible);
        chart
            .draw_series(these.iter().map(|p| {
                let style = if filled {
                    color.filled()
                } else {
                    color.stroke_width(1)
                };
                Circle::new((p.x, p.y), size, style)
            }))?
            .label(mark.label())
            .legend(move |(x, y)| Circle::new((x, y), size.min(5), color.filled()));
    }
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, XY>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font((FONT, 13))
        .draw()
}

fn draw_history<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    points: &[Point],
    best: &[(f64, f64)],
    failed: &[f64],
) -> DrawResult<DB> {
    let (x0, x1) = span(
        points.iter().map(|p| p.x).chain(failed.iter().copied()),
        false,
    );
    let (y0, y1) = span(points.iter().map(|p| p.y), true);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0.min(0.0)..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| tick(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    draw_points(&mut chart, points)?;
    if !best.is_empty() {
        // A step line: the best so far holds until the next improvement.
        let mut steps = Vec::with_capacity(best.len() * 2);
        for (i, &(x, y)) in best.iter().enumerate() {
            if i > 0 {
                steps.push((x, best[i - 1].1));
            }
            steps.push((x, y));
        }
        if let Some(&(_, y)) = best.last() {
            steps.push((x1, y));
        }
        chart
            .draw_series(LineSeries::new(steps, GREEN_.stroke_width(2)))?
            .label("best so far")
            .legend(|(x, y)| {
                PathElement::new(vec![(x - 8, y), (x + 8, y)], GREEN_.stroke_width(2))
            });
    }
    if !failed.is_empty() {
        let bottom = y0 + (y1 - y0) * 0.02;
        chart
            .draw_series(
                failed
                    .iter()
                    .map(|&x| Cross::new((x, bottom), 4, RED_.stroke_width(2))),
            )?
            .label("failed (oom, crash, timeout ...)")
            .legend(|(x, y)| Cross::new((x, y), 4, RED_.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    points: &[Point],
    line: &[(f64, f64)],
) -> DrawResult<DB> {
    let (x0, x1) = span(points.iter().map(|p| p.x), true);
    let (y0, y1) = span(points.iter().map(|p| p.y), true);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if line.len() > 1 {
        chart.draw_series(LineSeries::new(line.to_vec(), ORANGE.stroke_width(2)))?;
    }
    draw_points(&mut chart, points)?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// The colours of a line chart's lines, in order.
const LINE_COLORS: [RGBColor; 6] = [BLUE_, ORANGE, GREEN_, RED_, PURPLE, GREY];

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    lines: &[Line],
    right: Option<&(String, Vec<Line>)>,
    log2_x: bool,
    marker: Option<&(f64, String)>,
) -> DrawResult<DB> {
    let x_of = |x: f64| if log2_x { x.max(1e-9).log2() } else { x };
    let all = |ls: &[Line]| -> Vec<(f64, f64, f64)> {
        ls.iter().flat_map(|l| l.points.iter().copied()).collect()
    };
    let left_points = all(lines);
    let (x0, x1) = span(left_points.iter().map(|p| x_of(p.0)), false);
    let (y0, y1) = span(
        left_points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]),
        true,
    );
    let base = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .right_y_label_area_size(if right.is_some() { 64 } else { 0 })
        .build_cartesian_2d(x0..x1, y0..y1)?;
    // On a log2 axis only the powers of two are labelled.
    let x_tick = |x: &f64| {
        if !log2_x {
            tick(*x)
        } else if (x - x.round()).abs() < 0.02 {
            tick(x.round().exp2())
        } else {
            String::new()
        }
    };
    let mesh = |chart: &mut ChartContext<'_, DB, XY>| {
        chart
            .configure_mesh()
            .x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .x_labels(if log2_x { 64 } else { 10 })
            .x_label_formatter(&x_tick)
            .y_label_formatter(&|y| tick(*y))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
    };
    let left = |chart: &mut ChartContext<'_, DB, XY>| -> DrawResult<DB> {
        for (i, line) in lines.iter().enumerate() {
            let color = LINE_COLORS[i % LINE_COLORS.len()];
            let xy: Vec<(f64, f64)> = line.points.iter().map(|p| (x_of(p.0), p.1)).collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))?
                .label(line.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            // The spread: mean ± sd.
            chart.draw_series(line.points.iter().filter(|p| p.2 > 0.0).map(|p| {
                PathElement::new(
                    vec![(x_of(p.0), p.1 - p.2), (x_of(p.0), p.1 + p.2)],
                    color.stroke_width(1),
                )
            }))?;
        }
        if let Some((x, label)) = marker {
            let x = x_of(*x);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, y0), (x, y1)],
                    BLACK.mix(0.5).stroke_width(1),
                )))?
                .label(label.clone())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.5)));
        }
        Ok(())
    };
    let Some((label, right_lines)) = right else {
        let mut chart = base;
        mesh(&mut chart)?;
        left(&mut chart)?;
        return legend(&mut chart, SeriesLabelPosition::UpperRight);
    };
    let right_points = all(right_lines);
    let (z0, z1) = span(right_points.iter().map(|p| p.1), true);
    // The secondary axis takes the right label area, so the primary
    // mesh labels only the left one.
    let mut chart = base.set_secondary_coord(x0..x1, z0..z1);
    mesh(&mut chart)?;
    left(&mut chart)?;
    chart
        .configure_secondary_axes()
        .y_desc(label)
        .y_label_formatter(&|y| tick(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (i, line) in right_lines.iter().enumerate() {
        let color = LINE_COLORS[i % LINE_COLORS.len()];
        let xy: Vec<(f64, f64)> = line.points.iter().map(|p| (x_of(p.0), p.1)).collect();
        chart
            .draw_secondary_series(DashedLineSeries::new(
                xy.clone(),
                6,
                4,
                color.stroke_width(1),
            ))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(1))
            });
        chart.draw_secondary_series(
            xy.iter()
                .map(|&p| TriangleMarker::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .draw()
}

fn draw_effect<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    bars: &[Bar],
) -> DrawResult<DB> {
    let n = bars.len().max(1) as i32;
    // A segmented range 0..k has k + 1 segments.
    let last = (n - 1).max(1);
    let (y0, y1) = span(
        bars.iter()
            .flat_map(|b| b.ratio.into_iter().chain(b.across))
            .flat_map(|(l, m, h)| [l, m, h])
            .chain([1.0]),
        false,
    );
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let label_of = move |x: &SegmentValue<i32>| segment_label(&labels, x);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((0..last).into_segmented(), y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_labels(n as usize)
        .x_label_formatter(&label_of)
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(LineSeries::new(
        vec![(SegmentValue::Exact(0), 1.0), (SegmentValue::Last, 1.0)],
        GREY.stroke_width(1),
    ))?;
    for (i, bar) in bars.iter().enumerate() {
        let x = SegmentValue::CenterOf(i as i32);
        if let Some((lo, mid, hi)) = bar.across {
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                x.clone(),
                lo,
                mid,
                hi,
                ORANGE.mix(0.8).stroke_width(1),
                26,
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (x.clone(), mid),
                9,
                ORANGE.stroke_width(2),
            )))?;
        }
        match bar.ratio {
            Some((lo, mid, hi)) => {
                let color = if bar.is_winner { GREEN_ } else { BLUE_ };
                if hi > lo {
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                        x.clone(),
                        lo,
                        mid,
                        hi,
                        color.stroke_width(2),
                        14,
                    )))?;
                }
                chart.draw_series(std::iter::once(Circle::new((x, mid), 6, color.filled())))?;
            }
            None => {
                chart.draw_series(std::iter::once(Cross::new(
                    (x, y0 + (y1 - y0) * 0.05),
                    6,
                    RED_.stroke_width(2),
                )))?;
            }
        }
    }
    Ok(())
}

fn segment_label(labels: &[String], x: &SegmentValue<i32>) -> String {
    match x {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i >= 0 => {
            labels.get(*i as usize).cloned().unwrap_or_default()
        }
        _ => String::new(),
    }
}

fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    x_values: &[String],
    y_values: &[String],
    cells: &[(usize, usize, f64)],
    higher_is_better: bool,
) -> DrawResult<DB> {
    let (nx, ny) = (x_values.len().max(1), y_values.len().max(1));
    let (lo, hi) = cells
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.2), hi.max(c.2))
        });
    let xs = x_values.to_vec();
    let ys = y_values.to_vec();
    let x_label = move |x: &SegmentValue<i32>| segment_label(&xs, x);
    let y_label = move |y: &SegmentValue<i32>| segment_label(&ys, y);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(
            (0..(nx as i32 - 1).max(1)).into_segmented(),
            (0..(ny as i32 - 1).max(1)).into_segmented(),
        )?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_labels(nx)
        .y_labels(ny)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for &(x, y, value) in cells {
        let t = if hi > lo {
            (value - lo) / (hi - lo)
        } else {
            1.0
        };
        let t = if higher_is_better { t } else { 1.0 - t };
        // From pale to deep blue: darker is better.
        let color = RGBColor(
            (235.0 - 205.0 * t) as u8,
            (242.0 - 160.0 * t) as u8,
            (250.0 - 90.0 * t) as u8,
        );
        let (x, y) = (x as i32, y as i32);
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        )))?;
        let text_color = if t > 0.55 { WHITE } else { BLACK };
        chart.draw_series(std::iter::once(Text::new(
            format_value(value),
            (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
            (FONT, 14)
                .into_font()
                .color(&text_color)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        )))?;
    }
    Ok(())
}

/// An axis tick: `160`, `2.5`, `0.95`.
fn tick(v: f64) -> String {
    if v.abs() >= 10.0 || (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() < 0.1 {
        // Small values (KL divergences): every digit up to the sixth.
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    } else {
        format!("{v:.2}")
    }
}

/// A measured value with as many digits as help: 1234, 123.4, 12.34.
pub fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Keeps at most [`MAX_POINTS`] ordinary points (an even stride through
/// them), and every highlighted one.
pub fn downsample(points: Vec<Point>) -> Vec<Point> {
    let ordinary = points
        .iter()
        .filter(|p| matches!(p.mark, Mark::Feasible | Mark::Infeasible))
        .count();
    if ordinary <= MAX_POINTS {
        return points;
    }
    let stride = ordinary.div_ceil(MAX_POINTS);
    let mut seen = 0;
    points
        .into_iter()
        .filter(|p| {
            if matches!(p.mark, Mark::Feasible | Mark::Infeasible) {
                seen += 1;
                (seen - 1) % stride == 0
            } else {
                true
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scatter() -> Chart {
        Chart {
            name: "pp-vs-tg".into(),
            title: "Prompt <b> & generation".into(),
            x_label: "prompt processing (t/s)".into(),
            y_label: "generation (t/s)".into(),
            kind: ChartKind::Scatter {
                points: vec![
                    Point {
                        x: 400.0,
                        y: 150.0,
                        mark: Mark::Feasible,
                    },
                    Point {
                        x: 500.0,
                        y: 190.0,
                        mark: Mark::Winner,
                    },
                ],
                line: vec![],
            },
        }
    }

    #[test]
    fn svg_has_the_title_escaped_the_axes_and_the_points() {
        let svg = svg(&scatter()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(
            svg.contains("Prompt &lt;b&gt; &amp; generation"),
            "title not escaped"
        );
        assert!(svg.contains("generation (t/s)"));
        assert!(svg.contains("<circle"), "no points drawn");
        assert!(svg.contains("recommended"), "no legend");
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn png_is_written_with_the_bundled_font() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        png(&scatter(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5_000, "{} bytes", bytes.len());
    }

    #[test]
    fn every_kind_renders_without_non_numbers() {
        let kinds = vec![
            ChartKind::History {
                points: vec![Point {
                    x: 1.0,
                    y: 10.0,
                    mark: Mark::Feasible,
                }],
                best_so_far: vec![(1.0, 10.0)],
                failed: vec![2.0],
            },
            ChartKind::Effect {
                bars: vec![
                    Bar {
                        label: "64".into(),
                        ratio: Some((0.9, 0.95, 1.0)),
                        across: Some((0.92, 0.96, 0.99)),
                        is_winner: false,
                    },
                    Bar {
                        label: "128".into(),
                        ratio: Some((1.0, 1.0, 1.0)),
                        across: None,
                        is_winner: true,
                    },
                    Bar {
                        label: "256".into(),
                        ratio: None,
                        across: None,
                        is_winner: false,
                    },
                ],
            },
            ChartKind::Heatmap {
                x_values: vec!["1".into(), "2".into()],
                y_values: vec!["on".into()],
                cells: vec![(0, 0, 5.0), (1, 0, 7.5)],
                higher_is_better: true,
            },
            // Degenerate: nothing measured.
            ChartKind::Scatter {
                points: vec![],
                line: vec![],
            },
        ];
        for kind in kinds {
            let chart = Chart { kind, ..scatter() };
            let svg = svg(&chart).unwrap();
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn ticks_have_as_many_digits_as_help() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(2.5), "2.50");
        assert_eq!(tick(0.95), "0.95");
        assert_eq!(tick(0.005), "0.005");
        assert_eq!(tick(0.015000000000000001), "0.015");
        assert_eq!(tick(160.0), "160");
    }

    #[test]
    fn downsampling_keeps_highlights_and_bounds_the_rest() {
        let mut points: Vec<Point> = (0..10_000)
            .map(|i| Point {
                x: i as f64,
                y: 1.0,
                mark: Mark::Feasible,
            })
            .collect();
        points[9_999].mark = Mark::Winner;
        let kept = downsample(points);
        assert!(kept.len() <= MAX_POINTS + 1, "{}", kept.len());
        assert!(kept.iter().any(|p| p.mark == Mark::Winner));
    }
}
