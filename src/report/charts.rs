//! The report's charts, drawn by `plotters` with its SVG backend into strings
//! that are inlined in the HTML.
//!
//! plotters is built without a font feature (no `ttf`, no `ab_glyph`): the SVG
//! backend writes every label as an SVG `<text>` element that the browser
//! lays out with its own fonts, and plotters only estimates text widths for
//! its layout (0.7 em per byte). So nothing needs a font on the machine that
//! writes the report, and Chinese labels render with the reader's fonts.
//! Titles stay HTML (see `html.rs`).
//!
//! Greyscale-safe: every series has its own line pattern (solid, dashed,
//! dotted) and marker shape (circle, triangle, cross, square) besides its
//! colour. Days without data are gaps: a line is drawn only between two
//! consecutive days that both have a value, and a lone day still gets its
//! marker.

use chrono::{Days, NaiveDate};
use plotters::element::{Circle, Cross, EmptyElement, PathElement, Rectangle, TriangleMarker};
use plotters::prelude::*;

/// One line of a chart: a label and a value per day of the period (`None`: no data).
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// How wide a chart is drawn: the report carries both and CSS shows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Desktop and print.
    Wide,
    /// Phones (under 600 CSS pixels).
    Narrow,
}

impl Size {
    fn pixels(self) -> (u32, u32) {
        match self {
            Size::Wide => (760, 300),
            Size::Narrow => (380, 280),
        }
    }

    fn x_labels(self) -> usize {
        match self {
            Size::Wide => 10,
            Size::Narrow => 5,
        }
    }
}

/// Okabe–Ito colours (distinguishable with colour-blindness), without the
/// yellow that vanishes on white paper.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

const FONT: &str = "sans-serif";

#[derive(Clone, Copy)]
enum Pattern {
    Solid,
    Dashed,
    Dotted,
}

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Cross,
    Square,
}

/// The look of series `i`: colour, line pattern and marker all vary, so that
/// neighbours differ in each (and 12 series differ in pattern and marker alone).
fn look(i: usize) -> (RGBColor, Pattern, Marker) {
    let pattern = [Pattern::Solid, Pattern::Dashed, Pattern::Dotted][i % 3];
    let marker = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Cross,
        Marker::Square,
    ][i % 4];
    (COLOURS[i % COLOURS.len()], pattern, marker)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Draws a line chart of `series` over the days from `from` (one value per
/// day), with `unit` on the y axis. Days where no series has a value are
/// shaded, so a gap reads as "no data", not as a dip.
///
/// `from_zero`: the y axis starts at 0 (counts per day); otherwise it spans
/// the values (a running total, whose changes would vanish next to its size).
pub fn line_chart(
    from: NaiveDate,
    series: &[Series],
    unit: &str,
    from_zero: bool,
    size: Size,
) -> anyhow::Result<String> {
    let days = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let values = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let (low, high) = if from_zero {
        bounds(values)
    } else {
        span(values)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size.pixels()).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let x_range = -0.5..(days.max(1) as f64 - 0.5);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, low..high)
            .map_err(draw_error)?;
        let same_year = days == 0
            || from.format("%Y").to_string()
                == (from + Days::new(days as u64 - 1)).format("%Y").to_string();
        let date_label = |x: &f64| -> String {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 || i >= days as f64 {
                return String::new();
            }
            let day = from + Days::new(i as u64);
            if same_year {
                day.format("%m-%d").to_string()
            } else {
                day.format("%Y-%m-%d").to_string()
            }
        };
        let x_desc = if same_year {
            format!("date ({})", from.format("%Y"))
        } else {
            "date".to_string()
        };
        chart
            .configure_mesh()
            .x_labels(size.x_labels().min(days.max(1)))
            .y_labels(6)
            .x_label_formatter(&date_label)
            .y_label_formatter(&|y| thousands(*y))
            .x_desc(x_desc)
            .y_desc(unit)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(draw_error)?;
        shade_gaps(&mut chart, series, days, low, high)?;
        for (i, s) in series.iter().enumerate() {
            draw_series(&mut chart, i, s)?;
        }
        if series.len() > 1 || series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font((FONT, 12))
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(tidy(svg))
}

/// Draws a bar per hour of the day (0..23); hours without data have no bar.
pub fn hour_chart(values: &[Option<f64>; 24], unit: &str, size: Size) -> anyhow::Result<String> {
    let (low, high) = bounds(values.iter().flatten().copied());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size.pixels()).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..23.5, low..high)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_labels(if size == Size::Wide { 24 } else { 8 })
            .y_labels(6)
            .x_label_formatter(&|x: &f64| {
                let h = x.round();
                if (x - h).abs() > 1e-6 || !(0.0..24.0).contains(&h) {
                    String::new()
                } else {
                    format!("{h:02}")
                }
            })
            .y_label_formatter(&|y| thousands(*y))
            .x_desc("hour of day (China time)")
            .y_desc(unit)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(draw_error)?;
        let fill = COLOURS[0].filled();
        chart
            .draw_series(values.iter().enumerate().filter_map(|(h, v)| {
                v.map(|v| Rectangle::new([(h as f64 - 0.38, 0.0), (h as f64 + 0.38, v)], fill))
            }))
            .map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(tidy(svg))
}

/// The y range: from 0 (or the lowest value, if negative) to a little above
/// the highest, with room at the top for the legend.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut low, mut high) = (0.0f64, 0.0f64);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    if high <= low {
        high = low + 1.0;
    }
    let span = high - low;
    (
        if low < 0.0 { low - span * 0.08 } else { 0.0 },
        high + span * 0.3,
    )
}

/// The y range around the values, with room at the top for the legend.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((high - low) * 0.1).max(5.0);
    (low - pad, high + pad * 3.0)
}

/// Light bands over the days where no series has a value.
fn shade_gaps(
    chart: &mut Chart<'_, '_>,
    series: &[Series],
    days: usize,
    low: f64,
    high: f64,
) -> anyhow::Result<()> {
    let empty = (0..days).filter(|&d| {
        series
            .iter()
            .all(|s| s.values.get(d).copied().flatten().is_none())
    });
    let band = RGBColor(228, 228, 228).filled();
    chart
        .draw_series(
            empty.map(|d| Rectangle::new([(d as f64 - 0.5, low), (d as f64 + 0.5, high)], band)),
        )
        .map_err(draw_error)?;
    Ok(())
}

/// One series: a line through each run of consecutive days with values, a
/// marker on every value, and (once) its legend entry.
fn draw_series<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, i: usize, s: &Series) -> anyhow::Result<()> {
    let (colour, pattern, marker) = look(i);
    let style = colour.stroke_width(2);
    let points: Vec<(usize, f64)> = s
        .values
        .iter()
        .enumerate()
        .filter_map(|(d, v)| v.map(|v| (d, v)))
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    // Runs of consecutive days: a line never crosses a day without data.
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut previous: Option<usize> = None;
    for &(d, v) in &points {
        if previous != Some(d.wrapping_sub(1)) || runs.is_empty() {
            runs.push(Vec::new());
        }
        runs.last_mut().expect("pushed").push((d as f64, v));
        previous = Some(d);
    }
    for run in runs.iter().filter(|r| r.len() > 1) {
        match pattern {
            Pattern::Solid => {
                chart
                    .draw_series(LineSeries::new(run.iter().copied(), style))
                    .map_err(draw_error)?;
            }
            Pattern::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(run.iter().copied(), 8, 5, style))
                    .map_err(draw_error)?;
            }
            Pattern::Dotted => {
                chart
                    .draw_series(DashedLineSeries::new(run.iter().copied(), 2, 4, style))
                    .map_err(draw_error)?;
            }
        }
    }
    // The legend's sample: three pieces of line in the series' pattern,
    // with its marker in the middle.
    let pieces: [[(i32, i32); 2]; 3] = match pattern {
        Pattern::Solid => [[(0, 0), (8, 0)], [(8, 0), (16, 0)], [(16, 0), (24, 0)]],
        Pattern::Dashed => [[(0, 0), (7, 0)], [(9, 0), (15, 0)], [(17, 0), (24, 0)]],
        Pattern::Dotted => [[(0, 0), (2, 0)], [(11, 0), (13, 0)], [(22, 0), (24, 0)]],
    };
    let fill = colour.filled();
    let label = s.label.clone();
    macro_rules! markers_and_legend {
        ($marker:expr, $sample:expr) => {{
            let anno = chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(d, v)| EmptyElement::at((d as f64, v)) + $marker),
                )
                .map_err(draw_error)?;
            if !label.is_empty() {
                anno.label(label).legend(move |(x, y)| {
                    let piece = |k: usize| PathElement::new(pieces[k].to_vec(), style);
                    EmptyElement::at((x, y)) + piece(0) + piece(1) + piece(2) + $sample
                });
            }
        }};
    }
    match marker {
        Marker::Circle => {
            markers_and_legend!(Circle::new((0, 0), 3, fill), Circle::new((12, 0), 3, fill))
        }
        Marker::Triangle => markers_and_legend!(
            TriangleMarker::new((0, 0), 4, fill),
            TriangleMarker::new((12, 0), 4, fill)
        ),
        Marker::Cross => markers_and_legend!(
            Cross::new((0, 0), 4, colour.stroke_width(2)),
            Cross::new((12, 0), 4, colour.stroke_width(2))
        ),
        Marker::Square => markers_and_legend!(
            Rectangle::new([(-3, -3), (3, 3)], fill),
            Rectangle::new([(9, -3), (15, 3)], fill)
        ),
    }
    Ok(())
}

/// 12345 as "12,345"; fractions dropped (the axes count people).
fn thousands(v: f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        return String::new();
    }
    group(v.round() as i64)
}

/// 12345 as "12,345".
pub(super) fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The SVG as inline HTML wants it: no XML namespace URL (inline SVG needs
/// none, and the report then names no URL outside its article links), and
/// scalable through its viewBox.
fn tidy(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(
            "<svg ",
            "<svg role=\"img\" preserveAspectRatio=\"xMidYMid meet\" ",
            1,
        )
}

fn draw_error<E: std::error::Error + Send + Sync>(
    e: plotters::drawing::DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow::anyhow!("cannot draw a chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-1200.0), "-1,200");
        assert_eq!(thousands(0.5), "");
    }

    #[test]
    fn a_gap_breaks_the_line() {
        let series = [Series {
            label: "readers".into(),
            values: vec![Some(1.0), Some(2.0), None, Some(4.0), Some(5.0)],
        }];
        let svg = line_chart(day("2026-01-01"), &series, "readers", true, Size::Wide).unwrap();
        // Two runs, two lines (plus the legend sample's three pieces); four
        // markers (plus the legend's); one shaded day.
        let lines = svg
            .matches("stroke=\"#0072B2\" stroke-width=\"2\" points=")
            .count();
        assert_eq!(lines, 2 + 3, "{svg}");
        assert_eq!(svg.matches("fill=\"#E4E4E4\"").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("<circle").count(),
            4 + 1,
            "markers and the legend's: {svg}"
        );
        assert!(svg.contains("01-03"), "date labels");
        assert!(!svg.contains("http"), "no namespace URL");
    }
}
