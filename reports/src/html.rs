//! `report.html`: one self-contained file with inline SVG plots drawn by plotters.
//!
//! Each plot is a function taking plain data and returning an SVG string, so any command
//! (`run`, `sweep`, `explore`) can compose a [`Page`] from the plots it has:
//! [`exhaustion_svg`] (exhaustion ratio against pool size, with Erlang B where it applies),
//! [`spectrum_svg`] (the HdrHistogram percentile spectrum), [`occupancy_svg`] (pool, RPC slots
//! and backlog over time, fault windows shaded), [`retries_svg`] and [`violation_svg`] (the
//! per-container timeline of the ops involved in a violation). [`run_page`] and
//! [`sweep_page`] put together the pages of `run` and `sweep`.
//!
//! plotters is built without its font backends: SVG text is laid out by the browser, so no
//! font file or system library is needed (label widths are estimated).

use std::fmt::Write as _;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axis;
use crate::erlang::erlang_b;
use crate::human;
use crate::report::Report;
use crate::sweep::{value_text, Sweep};
use crate::timeline::Sample;

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the {plot} plot: {message}")]
pub struct HtmlError {
    /// Which plot.
    pub plot: &'static str,
    /// What plotters said.
    pub message: String,
}

pub(crate) fn err<E: std::fmt::Debug>(plot: &'static str) -> impl Fn(E) -> HtmlError {
    move |e| HtmlError {
        plot,
        message: format!("{e:?}"),
    }
}

/// Width and height of every plot, in SVG pixels.
pub(crate) const SIZE: (u32, u32) = (860, 380);

/// Series colours, in order (colour-blind-friendly, Okabe–Ito, then four darker tones so that
/// a comparison of 12 variants gets 12 colours).
pub(crate) const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
    RGBColor(140, 70, 20),
    RGBColor(100, 50, 150),
    RGBColor(0, 90, 60),
];

pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn font(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().into()
}

/// A span of simulated time to shade on time plots: `(start_s, end_s, label)`.
pub type FaultWindow = (f64, f64, String);

/// The fault windows a page shades, and a sentence saying whose schedule they are (with
/// several seeds, the seeds may have run different ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultShading {
    /// The windows, in start order.
    pub windows: Vec<FaultWindow>,
    /// Shown above the time plots when not empty.
    pub note: String,
}

/// Fault windows drawn at most per plot; a longer schedule is cut (and the note says so).
pub const MAX_FAULT_WINDOWS: usize = 400;

/// Shades `faults` on `chart` (under the data) from 0 to `y_max`, with their labels on up to
/// three staggered rows near the top (under the row of the phase marks); a label that would overlap the ones already placed is left
/// out (its window is still shaded). `px_per_x` converts x units to pixels, `px_per_y` y units.
pub(crate) fn shade_faults<'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    faults: &[FaultWindow],
    (x0, x1): (f64, f64),
    y_max: f64,
    (px_per_x, px_per_y): (f64, f64),
) -> DrawResult {
    let visible: Vec<(f64, f64, &str)> = faults
        .iter()
        .take(MAX_FAULT_WINDOWS)
        .filter(|(a, b, _)| a.is_finite() && b.is_finite() && *b >= x0 && *a <= x1)
        .map(|(a, b, t)| (a.max(x0), b.min(x1), t.as_str()))
        .collect();
    chart.draw_series(visible.iter().map(|(a, b, _)| {
        Rectangle::new(
            [(*a, 0.0), (*b, y_max)],
            RGBColor(255, 200, 200).mix(0.5).filled(),
        )
    }))?;
    // Labels: about 5.6 px per character at 10 px; rows 12 px apart.
    let mut rows_end = [f64::NEG_INFINITY; 3];
    for (a, _, text) in &visible {
        let width = (text.chars().count() as f64 * 5.6 + 6.0) / px_per_x.max(1e-12);
        let Some(row) = rows_end.iter().position(|&end| end <= *a) else {
            continue;
        };
        rows_end[row] = a + width;
        let y = y_max - (14.0 + 12.0 * row as f64) / px_per_y.max(1e-12);
        chart.draw_series(std::iter::once(Text::new(
            text.to_string(),
            (*a, y),
            font(10).color(&RGBColor(150, 30, 30)),
        )))?;
    }
    Ok(())
}

/// One measured point of [`exhaustion_svg`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExhaustionPoint {
    /// Pool size (or whatever the x axis is).
    pub x: f64,
    /// Mean exhaustion ratio.
    pub mean: f64,
    /// 95% interval.
    pub ci95: [f64; 2],
    /// Erlang B at this point, where it applies.
    pub erlang_b: Option<f64>,
}

/// A series of [`exhaustion_svg`]: points sharing every other grid value.
#[derive(Debug, Clone, PartialEq)]
pub struct ExhaustionSeries {
    /// Legend label.
    pub label: String,
    /// Points in x order.
    pub points: Vec<ExhaustionPoint>,
}

/// Exhaustion ratio against pool size on a logarithmic axis (so that a 1% SLO line stands
/// clear of the axis): measured means with their 95% intervals, each point's Erlang B as a
/// dashed line where it applies, analytic `curves` (`(label, [(x, ratio)])`, e.g. Erlang B at
/// one load over a range of pool sizes) as grey lines under the measurements, and the SLO
/// limit as a horizontal line. A log axis has no zero: a mean of 0 is drawn as a hollow circle
/// on the axis floor and an interval reaching 0 runs down to it (a note under the caption says
/// so); curve points below the floor are left out.
pub fn exhaustion_svg(
    x_label: &str,
    series: &[ExhaustionSeries],
    curves: &[(String, Vec<(f64, f64)>)],
    slo_max: Option<f64>,
) -> Result<String, HtmlError> {
    let e = err("exhaustion");
    let measured = series.iter().flat_map(|s| &s.points);
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in measured
        .clone()
        .map(|p| p.x)
        .chain(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)))
    {
        x0 = x0.min(x);
        x1 = x1.max(x);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = (x1 - x0) * 0.05;
    // The axis holds the measurements, their Erlang B, the curves and the SLO (at most six
    // decades: see `log_ratio_axis`).
    let (floor, top, ticks) = axis::log_ratio_axis(
        measured
            .clone()
            .flat_map(|p| [p.mean, p.ci95[0], p.ci95[1], p.erlang_b.unwrap_or(0.0)])
            .chain(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)))
            .chain(slo_max),
    );
    let top = (top * 1.15).min(1.5);
    let at_floor = |y: f64| if y.is_finite() && y > floor { y } else { floor };
    let zeros = measured.clone().filter(|p| p.mean <= floor).count();
    let open_below = measured.clone().filter(|p| p.ci95[0] <= floor).count();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Exhaustion ratio against pool size", font(18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(
                x0 - pad..x1 + pad,
                (floor..top).log_scale().with_key_points(ticks),
            )
            .map_err(&e)?;
        // Pool sizes are whole numbers: label them so.
        let whole = measured
            .clone()
            .map(|p| p.x)
            .chain(curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)))
            .all(|x| x.fract() == 0.0);
        let fmt_x = |x: &f64| {
            if whole {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        let fmt_y = |y: &f64| axis::ratio_label(*y);
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_label_formatter(&fmt_x)
            .y_desc("exhaustion ratio (log scale)")
            .y_label_formatter(&fmt_y)
            .label_style(font(12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&e)?;
        if let Some(max) = slo_max.filter(|m| *m > 0.0) {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x0 - pad, max), (x1 + pad, max)],
                    6,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(&e)?
                .label(format!("SLO limit {}", axis::ratio_label(max)))
                .legend(swatch(RED));
        }
        for (label, pts) in curves {
            let grey = RGBColor(120, 120, 120);
            let shown: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1 >= floor).collect();
            chart
                .draw_series(LineSeries::new(shown, grey.stroke_width(1)))
                .map_err(&e)?
                .label(label.clone())
                .legend(swatch(grey));
        }
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.x, at_floor(p.mean))),
                    c,
                ))
                .map_err(&e)?
                .label(format!("measured {}", s.label).trim_end().to_string())
                .legend(swatch(c));
            chart
                .draw_series(s.points.iter().map(|p| {
                    let style = if p.mean > floor {
                        c.filled()
                    } else {
                        c.stroke_width(1)
                    };
                    Circle::new((p.x, at_floor(p.mean)), 3, style)
                }))
                .map_err(&e)?;
            // 95% intervals as vertical bars.
            chart
                .draw_series(s.points.iter().map(|p| {
                    PathElement::new(
                        [(p.x, at_floor(p.ci95[0])), (p.x, at_floor(p.ci95[1]))],
                        c.stroke_width(2),
                    )
                }))
                .map_err(&e)?;
            let erl: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| p.erlang_b.map(|b| (p.x, at_floor(b))))
                .collect();
            if !erl.is_empty() {
                chart
                    .draw_series(DashedLineSeries::new(erl, 4, 3, BLACK.stroke_width(1)))
                    .map_err(&e)?
                    .label(format!("Erlang B {}", s.label).trim_end().to_string())
                    .legend(swatch(BLACK));
            }
        }
        // Exhaustion falls as the pool grows: the lower left corner is where no line runs.
        legend(&mut chart, SeriesLabelPosition::LowerLeft).map_err(&e)?;
        // A log axis has no 0: say what is drawn at its floor.
        let floor_text = axis::ratio_label(floor);
        let note = match (zeros, open_below) {
            (0, 0) => None,
            (0, n) => Some(format!(
                "{n} interval(s) reach 0: drawn down to the axis floor, {floor_text}"
            )),
            (z, _) => Some(format!(
                "{z} mean(s) of 0 (no exhaustion seen) drawn hollow at the axis floor, \
                 {floor_text}; intervals reaching 0 end there"
            )),
        };
        if let Some(note) = note {
            root.draw(&Text::new(
                note,
                (80, 34),
                font(11).color(&RGBColor(90, 90, 90)),
            ))
            .map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// A latency limit drawn on a [`spectrum_svg`]: a horizontal dashed red line at `ms`,
/// labelled `label` in the legend (e.g. `p99 SLO 5.00 s`).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyLimit {
    /// The legend's text.
    pub label: String,
    /// The limit, ms.
    pub ms: f64,
}

/// The latency percentile spectrum, HdrHistogram style, titled `title`: x is the percentile
/// on a log scale of `1 / (1 − p)` (labelled 90%, 99%, 99.9%, …), y the latency in ms. Each
/// series is a `(label, [(percentile 0..=100, ms)])` as
/// [`Histo::spectrum`](crate::Histo::spectrum) gives; every series has a legend entry (the
/// plot grows to hold them), and `limit` is drawn as a dashed red line.
pub fn spectrum_svg(
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
    limit: Option<&LatencyLimit>,
) -> Result<String, HtmlError> {
    let e = err("latency spectrum");
    // 100% has no place on this axis: the maximum is in the tables.
    let inv = |p: f64| 1.0 / (1.0 - p / 100.0);
    let finite: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, pts)| {
            pts.iter()
                .filter(|(p, _)| *p < 100.0)
                .map(|&(p, ms)| (inv(p), ms))
                .collect()
        })
        .collect();
    let x_max = finite
        .iter()
        .flatten()
        .map(|(x, _)| *x)
        .fold(10.0f64, f64::max);
    let x_max = 10f64.powf(x_max.log10().ceil());
    let y_max = finite
        .iter()
        .flatten()
        .map(|(_, y)| *y)
        .fold(0.0f64, f64::max)
        .max(limit.map_or(0.0, |l| l.ms))
        .max(1e-3)
        * 1.08;
    // The legend lists every series: past eight entries the plot grows by one line each.
    let entries = series.len() + usize::from(limit.is_some());
    let height = SIZE.1 + 17 * entries.saturating_sub(8) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
            .map_err(&e)?;
        let fmt_x = |x: &f64| {
            let p = (1.0 - 1.0 / x) * 100.0;
            let s = format!("{p:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        };
        let fmt_y = |y: &f64| human::ms(*y);
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .label_style(font(12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(&e)?;
        if let Some(l) = limit {
            chart
                .draw_series(DashedLineSeries::new(
                    [(1.0, l.ms), (x_max, l.ms)],
                    6,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(&e)?
                .label(l.label.clone())
                .legend(swatch(RED));
        }
        for (i, ((label, _), pts)) in series.iter().zip(&finite).enumerate() {
            let c = colour(i);
            let style = c.stroke_width(2);
            // Past the palette the colours repeat: those lines are dashed.
            let drawn = if i < PALETTE.len() {
                chart.draw_series(LineSeries::new(pts.iter().copied(), style))
            } else {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 6, 3, style))
            };
            drawn.map_err(&e)?.label(label.clone()).legend(swatch(c));
        }
        // Spectra rise to the right: the lower right corner is where no line runs.
        legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// Marks on time plots: where the warm-up ends and where the load phase ends (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// End of the warm-up.
    pub warmup_s: f64,
    /// End of the load phase (the drain follows).
    pub load_end_s: f64,
}

/// Pool workers, RPC slots and backlog over time, one panel each: the time-weighted mean per
/// bucket and the most busy at once (lighter), fault windows shaded, the end of the warm-up
/// and of the load phase marked. `capacity` is `(pool workers, RPC slots)` summed over
/// conductors, drawn as a dotted line.
pub fn occupancy_svg(
    samples: &[Sample],
    capacity: (u64, u64),
    faults: &[FaultWindow],
    phases: Phases,
) -> Result<String, HtmlError> {
    let e = err("occupancy");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let (title, body) = root.split_vertically(50);
        title
            .draw(&Text::new(
                "Occupancy over time (all conductors)",
                (SIZE.0 as i32 / 2 - 150, 6),
                font(18),
            ))
            .map_err(&e)?;
        occupancy_key(&title).map_err(&e)?;
        let panels = body.split_evenly((3, 1));
        type Pick = fn(&Sample) -> (f64, f64);
        let specs: [(&str, Pick, Option<u64>); 3] = [
            (
                "busy pool workers",
                |s| (s.pool_mean, f64::from(s.pool_max)),
                Some(capacity.0),
            ),
            (
                "busy RPC slots",
                |s| (s.rpc_mean, f64::from(s.rpc_max)),
                Some(capacity.1),
            ),
            ("messages in backlog", |s| (s.backlog_mean, f64::NAN), None),
        ];
        for (i, (panel, (label, pick, cap))) in panels.iter().zip(specs).enumerate() {
            let pts: Vec<(f64, f64, f64)> = samples
                .iter()
                .map(|s| {
                    let (m, x) = pick(s);
                    ((s.start_s + s.end_s) / 2.0, m, x)
                })
                .collect();
            time_panel(panel, label, &pts, cap, faults, phases, i == 2).map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// The key of the occupancy panels, one line under the title: what the dark and the light
/// line and the dotted one are.
fn occupancy_key(area: &Area<'_>) -> DrawResult {
    let y = 38;
    let mut x = 72;
    let entries: [(&str, u8); 3] = [
        ("mean per time bucket", 0),
        (
            "most busy at once in the bucket (not kept for the backlog)",
            1,
        ),
        ("capacity", 2),
    ];
    for (text, kind) in entries {
        match kind {
            0 => area.draw(&PathElement::new(
                [(x, y), (x + 22, y)],
                colour(0).stroke_width(2),
            ))?,
            1 => area.draw(&PathElement::new(
                [(x, y), (x + 22, y)],
                colour(0).mix(0.35).stroke_width(1),
            ))?,
            _ => {
                for dx in (0..22).step_by(5) {
                    area.draw(&Circle::new((x + dx, y), 1, BLACK.filled()))?;
                }
            }
        }
        area.draw(&Text::new(
            text,
            (x + 28, y),
            font(11).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 28 + (text.chars().count() as f64 * 6.2) as i32 + 24;
    }
    Ok(())
}

/// Retry attempts per simulated second over time (averaged over seeds), fault windows shaded.
pub fn retries_svg(
    samples: &[Sample],
    faults: &[FaultWindow],
    phases: Phases,
) -> Result<String, HtmlError> {
    let e = err("retries");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let pts: Vec<(f64, f64, f64)> = samples
            .iter()
            .map(|s| ((s.start_s + s.end_s) / 2.0, s.retries_per_s, f64::NAN))
            .collect();
        time_panel(
            &root,
            "retries per second",
            &pts,
            None,
            faults,
            phases,
            true,
        )
        .map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(crate) type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The legend box of a chart, in the same style everywhere.
pub(crate) fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(at)
        .label_font(font(12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
}

/// A legend swatch: a short line in `c`.
pub(crate) fn swatch(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c)
}

/// Ticks bound to a time axis from 0 to `t_end` s, at most this many.
const MAX_TIME_TICKS: usize = 10;

/// The x axis of every time plot: 0 to `t_end` seconds, ticked at round time steps
/// ([`axis::time_ticks`]; label them with [`axis::time_label`]). plotters' own
/// `with_key_points` would do, but it loses the formatter bound `configure_mesh` needs.
pub(crate) struct TimeAxis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for TimeAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points only: light mesh lines at round steps would need a step of their own.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// The [`TimeAxis`] from 0 to `t_end` seconds.
pub(crate) fn time_range(t_end: f64) -> TimeAxis {
    TimeAxis {
        linear: (0.0..t_end).into(),
        ticks: axis::time_ticks(t_end, MAX_TIME_TICKS),
    }
}

/// Marks the end of the warm-up and of the load phase on a time plot: a dashed grey line
/// each, labelled at the top of the plot. A label sits left of its line (so that the last
/// one stays inside the plot) unless that would run past the plot's left edge or into the
/// label before it; then it sits right of its line. `px` converts x and y units to pixels.
pub(crate) fn phase_marks<'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, RangedCoordf64>>,
    phases: Phases,
    (t_end, y_max): (f64, f64),
    (px_per_x, px_per_y): (f64, f64),
) -> DrawResult {
    let mut taken_until = 0.0f64; // pixels from the left already labelled
    for (t, name) in [
        (phases.warmup_s, "warm-up end"),
        (phases.load_end_s, "load end"),
    ] {
        if !(t > 0.0 && t <= t_end) {
            continue;
        }
        chart.draw_series(DashedLineSeries::new(
            [(t, 0.0), (t, y_max)],
            3,
            3,
            RGBColor(120, 120, 120).stroke_width(1),
        ))?;
        // About 5.6 px per character at 10 px, and a space's worth of gap to the line.
        let width = name.chars().count() as f64 * 5.6 + 6.0;
        let at = t * px_per_x;
        let (hpos, text, end) = if at - width >= taken_until {
            (HPos::Right, format!("{name} "), at)
        } else {
            (HPos::Left, format!(" {name}"), at + width)
        };
        taken_until = end;
        let y = y_max - 3.0 / px_per_y.max(1e-12);
        chart.draw_series(std::iter::once(Text::new(
            text,
            (t, y),
            font(10).pos(Pos::new(hpos, VPos::Top)),
        )))?;
    }
    Ok(())
}

/// One time panel: `(t_s, mean, max)` points (a NaN max is not drawn).
fn time_panel(
    area: &Area<'_>,
    label: &str,
    pts: &[(f64, f64, f64)],
    capacity: Option<u64>,
    faults: &[FaultWindow],
    phases: Phases,
    x_axis: bool,
) -> DrawResult {
    let t_end = pts
        .last()
        .map(|p| p.0)
        .unwrap_or(1.0)
        .max(phases.load_end_s)
        .max(
            faults
                .iter()
                .take(MAX_FAULT_WINDOWS)
                .map(|f| f.1)
                .filter(|t| t.is_finite())
                .fold(0.0, f64::max),
        )
        .max(1e-3);
    let y_max = pts
        .iter()
        .flat_map(|p| [p.1, p.2])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(capacity.map_or(0.0, |c| c as f64))
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(if x_axis { 34 } else { 0 })
        .y_label_area_size(64)
        .build_cartesian_2d(time_range(t_end), 0.0..y_max)?;
    let fmt_x = |x: &f64| axis::time_label(*x);
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(label)
        .label_style(font(11))
        .x_label_formatter(&fmt_x)
        .light_line_style(RGBColor(238, 238, 238));
    if x_axis {
        mesh.x_desc("simulated time");
    }
    mesh.draw()?;
    // Fault windows first, under the data.
    let (w, h) = chart.plotting_area().dim_in_pixel();
    let px = (f64::from(w) / t_end, f64::from(h) / y_max);
    shade_faults(&mut chart, faults, (0.0, t_end), y_max, px)?;
    phase_marks(&mut chart, phases, (t_end, y_max), px)?;
    if let Some(c) = capacity {
        chart.draw_series(DottedLineSeries::new(
            [(0.0, c as f64), (t_end, c as f64)],
            2,
            4,
            |p| Circle::new(p, 1, BLACK.filled()),
        ))?;
    }
    let max: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.2.is_finite())
        .map(|p| (p.0, p.2))
        .collect();
    if !max.is_empty() {
        chart.draw_series(LineSeries::new(max, colour(0).mix(0.35)))?;
    }
    chart.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.0, p.1)),
        colour(0).stroke_width(2),
    ))?;
    Ok(())
}

/// One op in a container's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSpan {
    /// Op id.
    pub op: u64,
    /// Op kind (`start`, `stop`, …).
    pub kind: String,
    /// When it began at the host, simulated seconds.
    pub start_s: f64,
    /// When it ended.
    pub end_s: f64,
    /// Its sequence number on the container.
    pub seq: u64,
    /// Free text (its outcome, the conductor that ran it, …).
    pub label: String,
}

/// The ops of one container involved in a violation.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerTimeline {
    /// Container id.
    pub container: String,
    /// Its ops, in any order.
    pub ops: Vec<OpSpan>,
}

/// The per-container timeline of a violation: one band per container, each op a bar from its
/// start to its end labelled `#seq kind (op id) label`; overlapping ops of one container are
/// stacked, so an overlap (a broken `exclusive`) shows as two bars over one another. The
/// `faults` that overlap the time shown are shaded, and `at_s` (when the checker saw the
/// violation) is marked by a red line.
pub fn violation_svg(
    title: &str,
    containers: &[ContainerTimeline],
    faults: &[FaultWindow],
    at_s: Option<f64>,
) -> Result<String, HtmlError> {
    let e = err("violation timeline");
    // Lanes: greedy by start time, per container.
    let mut rows: Vec<(usize, usize, &OpSpan)> = Vec::new(); // (band, lane, op)
    let mut lanes_of = Vec::new();
    for (band, c) in containers.iter().enumerate() {
        let mut ops: Vec<&OpSpan> = c.ops.iter().collect();
        ops.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.seq.cmp(&b.seq)));
        let mut lane_end: Vec<f64> = Vec::new();
        for op in ops {
            let lane = match lane_end.iter().position(|&end| end <= op.start_s) {
                Some(l) => l,
                None => {
                    lane_end.push(f64::NEG_INFINITY);
                    lane_end.len() - 1
                }
            };
            lane_end[lane] = op.end_s.max(op.start_s);
            rows.push((band, lane, op));
        }
        lanes_of.push(lane_end.len().max(1));
    }
    let total_lanes: usize = lanes_of.iter().sum::<usize>().max(1);
    let offsets: Vec<usize> = lanes_of
        .iter()
        .scan(0, |acc, n| {
            let o = *acc;
            *acc += n;
            Some(o)
        })
        .collect();
    let (mut t0, mut t1) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, _, op) in &rows {
        t0 = t0.min(op.start_s);
        t1 = t1.max(op.end_s);
    }
    if let Some(t) = at_s.filter(|t| t.is_finite()) {
        t0 = t0.min(t);
        t1 = t1.max(t);
    }
    if !t0.is_finite() || !t1.is_finite() {
        (t0, t1) = (0.0, 1.0);
    }
    let pad = ((t1 - t0) * 0.05).max(1e-3);
    let height = (80 + 34 * total_lanes as u32).min(4000);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(110)
            .build_cartesian_2d(t0 - pad..t1 + pad, 0.0..total_lanes as f64)
            .map_err(&e)?;
        let names: Vec<(f64, String)> = containers
            .iter()
            .zip(&offsets)
            .zip(&lanes_of)
            .map(|((c, &o), &n)| (o as f64 + n as f64 / 2.0, c.container.clone()))
            .collect();
        let fmt_y = |y: &f64| {
            names
                .iter()
                .find(|(mid, _)| (mid - y).abs() < 0.26)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        let fmt_x = |x: &f64| format!("{x:.3} s");
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(total_lanes * 4)
            .y_label_formatter(&fmt_y)
            .x_label_formatter(&fmt_x)
            .x_desc("simulated time")
            .label_style(font(11))
            .draw()
            .map_err(&e)?;
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let (x0, x1) = (t0 - pad, t1 + pad);
        let y_max = total_lanes as f64;
        shade_faults(
            &mut chart,
            faults,
            (x0, x1),
            y_max,
            (f64::from(w) / (x1 - x0), f64::from(h) / y_max),
        )
        .map_err(&e)?;
        if let Some(t) = at_s.filter(|t| t.is_finite()) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(t, 0.0), (t, y_max)],
                    RED.stroke_width(1),
                )))
                .map_err(&e)?;
        }
        // An op shorter than about 2 px is drawn 2 px wide, so that it stays visible.
        let min_width = 2.0 / (f64::from(w) / (x1 - x0)).max(1e-12);
        for (band, lane, op) in &rows {
            let y = (offsets[*band] + lane) as f64;
            let c = colour(*band);
            let end = op.end_s.max(op.start_s + min_width);
            chart
                .draw_series([
                    Rectangle::new(
                        [(op.start_s, y + 0.15), (end, y + 0.85)],
                        c.mix(0.35).filled(),
                    ),
                    Rectangle::new([(op.start_s, y + 0.15), (end, y + 0.85)], c.stroke_width(1)),
                ])
                .map_err(&e)?;
            let text = format!("#{} {} (op {}) {}", op.seq, op.kind, op.op, op.label);
            chart
                .draw_series(std::iter::once(Text::new(
                    text.trim_end().to_string(),
                    (op.start_s, y + 0.65),
                    font(11),
                )))
                .map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// Ops drawn at most in one violation's timeline.
pub const MAX_OPS_PER_FIGURE: usize = 16;

/// One violation drawn as a timeline (see [`violation_figures`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ViolationFigure {
    /// The figure's caption: invariant, container, seed, time.
    pub title: String,
    /// What the checker said.
    pub detail: String,
    /// The container's ops to draw.
    pub containers: Vec<ContainerTimeline>,
    /// The fault windows of the violation's seed.
    pub faults: Vec<FaultWindow>,
    /// When the checker saw it, seconds.
    pub at_s: Option<f64>,
}

fn u64_at(v: &serde_json::Value, k: &str) -> Option<u64> {
    v.get(k).and_then(serde_json::Value::as_u64)
}

fn str_at<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v.get(k).and_then(serde_json::Value::as_str).unwrap_or("")
}

/// The ops of a violation (as the checker writes it: `ops` of `{id, kind, seq, start_us,
/// end_us}`) that carry a host interval, as spans labelled `label`.
fn spans_of(v: &serde_json::Value, label: &str) -> Vec<OpSpan> {
    let ops = v.get("ops").and_then(serde_json::Value::as_array);
    ops.into_iter()
        .flatten()
        .filter_map(|o| {
            let (start, end) = (u64_at(o, "start_us")?, u64_at(o, "end_us")?);
            Some(OpSpan {
                op: u64_at(o, "id")?,
                kind: str_at(o, "kind").to_string(),
                start_s: start as f64 / 1e6,
                end_s: end.max(start) as f64 / 1e6,
                seq: u64_at(o, "seq").unwrap_or(0),
                label: label.to_string(),
            })
        })
        .collect()
}

/// Timelines for a list of violations, as `report.json` and `explore.json` hold them: the
/// first violation of each invariant that names an op with a host interval (the invariants
/// judged on what the hosts did), in the order listed. Each figure shows that violation's
/// ops (labelled `involved`) and, for context, the ops of the other listed violations of the
/// same seed and container whose intervals fall within its time range widened by its own
/// length on each side (at most [`MAX_OPS_PER_FIGURE`] in all); `faults_of(seed)` gives the
/// seed's fault windows. Entries that do not have this shape are skipped.
pub fn violation_figures(
    violations: &[serde_json::Value],
    faults_of: &dyn Fn(u64) -> Vec<FaultWindow>,
) -> Vec<ViolationFigure> {
    let mut done: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for v in violations {
        let invariant = str_at(v, "invariant");
        if done.contains(&invariant) {
            continue;
        }
        let mut ops = spans_of(v, "involved");
        if ops.is_empty() {
            continue;
        }
        done.push(invariant);
        let (seed, container) = (u64_at(v, "seed"), u64_at(v, "container"));
        let t0 = ops.iter().map(|o| o.start_s).fold(f64::INFINITY, f64::min);
        let t1 = ops
            .iter()
            .map(|o| o.end_s)
            .fold(f64::NEG_INFINITY, f64::max);
        let widen = (t1 - t0).max(1e-3);
        let (lo, hi) = (t0 - widen, t1 + widen);
        for other in violations {
            if u64_at(other, "seed") != seed || u64_at(other, "container") != container {
                continue;
            }
            for o in spans_of(other, "") {
                let known = ops
                    .iter()
                    .any(|k| k.op == o.op && k.start_s == o.start_s && k.end_s == o.end_s);
                if !known && o.end_s >= lo && o.start_s <= hi && ops.len() < MAX_OPS_PER_FIGURE {
                    ops.push(o);
                }
            }
        }
        let seed_text = seed.map_or_else(String::new, |s| format!(", seed {s}"));
        let container_text = container.map_or_else(|| "?".to_string(), |c| c.to_string());
        out.push(ViolationFigure {
            title: format!(
                "{invariant}: container {container_text}{seed_text}, at {}",
                str_at(v, "time")
            ),
            detail: str_at(v, "detail").to_string(),
            containers: vec![ContainerTimeline {
                container: format!("container {container_text}"),
                ops,
            }],
            faults: seed.map(faults_of).unwrap_or_default(),
            at_s: u64_at(v, "t_us").map(|t| t as f64 / 1e6),
        });
    }
    out
}

/// The rows of a violations table (seed, time, invariant, container, ops, detail) for the
/// first `max` of `violations`.
pub fn violation_rows(violations: &[serde_json::Value], max: usize) -> Vec<Vec<String>> {
    violations
        .iter()
        .take(max)
        .map(|v| {
            let ops: Vec<String> = v
                .get("ops")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .map(|o| {
                    let mut t = format!(
                        "#{} {} (op {})",
                        u64_at(o, "seq").unwrap_or(0),
                        str_at(o, "kind"),
                        u64_at(o, "id").unwrap_or(0)
                    );
                    if let (Some(a), Some(b)) = (u64_at(o, "start_us"), u64_at(o, "end_us")) {
                        t.push_str(&format!(
                            " [{:.3}s, {:.3}s)",
                            a as f64 / 1e6,
                            b as f64 / 1e6
                        ));
                    }
                    t
                })
                .collect();
            vec![
                u64_at(v, "seed").map_or_else(String::new, |s| s.to_string()),
                str_at(v, "time").to_string(),
                str_at(v, "invariant").to_string(),
                u64_at(v, "container").map_or_else(String::new, |c| c.to_string()),
                ops.join("; "),
                str_at(v, "detail").to_string(),
            ]
        })
        .collect()
}

/// The header of [`violation_rows`].
pub fn violation_head() -> Vec<String> {
    ["seed", "time", "invariant", "container", "ops", "detail"]
        .map(String::from)
        .to_vec()
}

/// Horizontal bars: one per `(label, value, highlighted)`, out of `of` (the axis' end, e.g. the
/// number of seeds); highlighted bars are drawn in the second colour.
pub fn bars_svg(
    title: &str,
    x_label: &str,
    bars: &[(String, u64, bool)],
    of: u64,
) -> Result<String, HtmlError> {
    let e = err("bars");
    let n = bars.len().max(1);
    let x_max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(of).max(1) as f64;
    let height = (110 + 30 * n as u32).min(4000);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, font(16))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..x_max * 1.05, 0.0..n as f64)
            .map_err(&e)?;
        let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let fmt_y = |y: &f64| {
            let i = (y - 0.5).round();
            if (y - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let fmt_x = |x: &f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&fmt_y)
            .x_label_formatter(&fmt_x)
            .x_desc(x_label)
            .label_style(font(11))
            .draw()
            .map_err(&e)?;
        for (i, (_, value, mark)) in bars.iter().enumerate() {
            let c = colour(usize::from(*mark));
            let y = i as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.2), (*value as f64, y + 0.8)],
                    c.mix(0.75).filled(),
                )))
                .map_err(&e)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(" {value}"),
                    (*value as f64, y + 0.65),
                    font(11),
                )))
                .map_err(&e)?;
        }
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
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

/// A self-contained HTML page: a title, then sections of text, tables and inline SVG.
#[derive(Debug, Clone, Default)]
pub struct Page {
    title: String,
    body: String,
}

impl Page {
    /// An empty page titled `title`.
    pub fn new(title: &str) -> Self {
        Page {
            title: title.to_string(),
            body: String::new(),
        }
    }

    /// A section heading.
    pub fn heading(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<h2>{}</h2>", escape(text));
        self
    }

    /// A paragraph of plain text.
    pub fn text(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// A preformatted block (e.g. the text summary).
    pub fn pre(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<pre>{}</pre>", escape(text));
        self
    }

    /// An SVG drawn by one of this module's plots, inline.
    pub fn svg(&mut self, svg: &str) -> &mut Self {
        // plotters starts with an XML declaration-free <svg …>; strip anything before it.
        let start = svg.find("<svg").unwrap_or(0);
        let _ = writeln!(self.body, "<figure>{}</figure>", &svg[start..]);
        self
    }

    /// An SVG as [`Page::svg`], in a figure with an `id` (for checks of the rendered page).
    pub fn figure(&mut self, id: &str, svg: &str) -> &mut Self {
        let start = svg.find("<svg").unwrap_or(0);
        let _ = writeln!(
            self.body,
            "<figure id=\"{}\">{}</figure>",
            escape(id),
            &svg[start..]
        );
        self
    }

    /// A table: a header row and body rows of plain-text cells; a row whose first cell starts
    /// with `*` is highlighted (the star is removed).
    pub fn table(&mut self, head: &[String], rows: &[Vec<String>]) -> &mut Self {
        self.body.push_str("<table><thead><tr>");
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead><tbody>\n");
        for r in rows {
            let mark = r.first().is_some_and(|c| c.starts_with('*'));
            self.body
                .push_str(if mark { "<tr class=\"mark\">" } else { "<tr>" });
            for (i, c) in r.iter().enumerate() {
                let c = if i == 0 && mark { &c[1..] } else { c.as_str() };
                let _ = write!(self.body, "<td>{}</td>", escape(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table>\n");
        self
    }

    /// A table of text (left-aligned cells), e.g. violations with their details.
    pub fn text_table(&mut self, head: &[String], rows: &[Vec<String>]) -> &mut Self {
        self.body.push_str("<table class=\"text\"><thead><tr>");
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead><tbody>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                let _ = write!(self.body, "<td>{}</td>", escape(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table>\n");
        self
    }

    /// The whole document. An inline script records script errors, the number of plots and
    /// the page's height on `<html>` (`data-errors`, `data-plots`, `data-height`), so a
    /// headless browser's `--dump-dom` can check that the page rendered cleanly and a
    /// screenshot can hold the whole page.
    pub fn render(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\" data-errors=\"pending\">\n<head>\n\
             <meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{CSS}</style>\n\
             <script>{SCRIPT}</script>\n</head>\n<body>\n<h1>{title}</h1>\n{body}\
             </body>\n</html>\n",
            title = escape(&self.title),
            body = self.body,
        )
    }
}

const CSS: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;\
max-width:920px;color:#222;background:#fff}h1{font-size:22px;margin-bottom:4px}\
h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
figure{margin:8px 0}svg{max-width:100%;height:auto}\
pre{background:#f6f6f6;padding:10px;white-space:pre-wrap;font-size:12px}\
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 9px;text-align:right;\
border-bottom:1px solid #eee}th{background:#f3f3f3}tr.mark td{background:#e6f2e6;font-weight:600}\
table.text td,table.text th{text-align:left;vertical-align:top}";

const SCRIPT: &str = "(function(){var n=0;window.addEventListener('error',function(){n++;\
document.documentElement.setAttribute('data-errors',String(n));});\
window.addEventListener('load',function(){var h=document.documentElement;\
h.setAttribute('data-errors',String(n));\
h.setAttribute('data-plots',String(document.querySelectorAll('svg').length));\
h.setAttribute('data-height',String(Math.ceil(document.documentElement.scrollHeight)));});})();";

/// The latency spectra of one run or sweep row, seeds pooled, each as
/// [`Histo::spectrum`](crate::Histo::spectrum) gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spectra {
    /// Completion latency (the client's submit to the op's end), every op kind.
    pub complete: Vec<(f64, f64)>,
    /// Completion latency per op kind, in name order.
    pub by_op: Vec<(String, Vec<(f64, f64)>)>,
    /// Accept latency: the API's answer to the submit.
    pub accept: Vec<(f64, f64)>,
}

impl Spectra {
    /// The spectra of `seeds` merged: the completion, accept and per-op histograms the seeds
    /// already hold (one home for run, sweep and load pages).
    pub fn of(seeds: &[crate::SeedMetrics]) -> Self {
        use crate::Histo;
        use std::collections::BTreeMap;
        let (mut complete, mut accept) = (Histo::new(), Histo::new());
        let mut by_op: BTreeMap<&str, Histo> = BTreeMap::new();
        for s in seeds {
            complete.merge(&s.complete);
            accept.merge(&s.accept);
            for (op, h) in &s.by_op {
                by_op.entry(op.as_str()).or_default().merge(h);
            }
        }
        Spectra {
            complete: complete.spectrum(),
            by_op: by_op
                .into_iter()
                .map(|(op, h)| (op.to_string(), h.spectrum()))
                .collect(),
            accept: accept.spectrum(),
        }
    }
}

/// The limit of the SLO check named `name` of `report`, if it was judged.
fn slo_limit(report: &Report, name: &str) -> Option<f64> {
    let checks = &report.slo.checks;
    checks.iter().find(|c| c.name == name).map(|c| c.limit)
}

/// A p99 limit's line for a latency plot, from a limit in ms.
fn p99_limit(what: &str, ms: Option<f64>) -> Option<LatencyLimit> {
    ms.map(|ms| LatencyLimit {
        label: format!("{what} SLO {}", human::ms(ms)),
        ms,
    })
}

/// The latency section of a run: completion latency, all ops and per op kind, with the p99 SLO
/// line; then accept latency beside it (in a plot of its own: it is often far shorter), with
/// its limit when one is judged.
fn latency_section(
    page: &mut Page,
    spectra: &Spectra,
    p99_ms: Option<f64>,
    accept_p99_ms: Option<f64>,
) -> Result<(), HtmlError> {
    page.heading("Latency");
    let mut complete = vec![("all ops".to_string(), spectra.complete.clone())];
    if spectra.by_op.len() > 1 {
        complete.extend(spectra.by_op.iter().cloned());
    }
    page.text(&format!(
        "Completion latency (submit to the op's end) by percentile, seeds pooled{}; then the          accept latency (submit to the API's answer).",
        if spectra.by_op.len() > 1 {
            ", all ops and per op kind"
        } else {
            ""
        }
    ));
    page.figure(
        "latency-complete",
        &spectrum_svg(
            "Completion latency by percentile",
            &complete,
            p99_limit("p99", p99_ms).as_ref(),
        )?,
    );
    page.figure(
        "latency-accept",
        &spectrum_svg(
            "Accept latency by percentile",
            &[("accept".to_string(), spectra.accept.clone())],
            p99_limit("accept p99", accept_p99_ms).as_ref(),
        )?,
    );
    Ok(())
}

/// The `report.html` of `run` (and `replay --out`): the summary, Erlang B's curve at the
/// measured load with the measured point, the latency spectra (completion, per op kind and
/// accept, with the SLO's p99 lines), occupancy and retries over time (seeds merged) with
/// `faults` shaded, the violations listed in the report (the first [`MAX_VIOLATION_ROWS`])
/// and a timeline per figure given.
pub fn run_page(
    report: &Report,
    spectra: &Spectra,
    samples: &[Sample],
    faults: &FaultShading,
    phases: Phases,
    violations: &[ViolationFigure],
) -> Result<String, HtmlError> {
    let mut page = Page::new(&format!("conductor-sim: {}", report.scenario));
    page.pre(&report.summary());
    page.heading("Pool exhaustion");
    let p = &report.pool;
    let point = ExhaustionPoint {
        x: p.workers as f64,
        mean: p.exhaustion_ratio,
        ci95: p.exhaustion_ratio_ci95,
        erlang_b: p.erlang_b.map(|e| e.blocking),
    };
    let series = vec![ExhaustionSeries {
        label: String::new(),
        points: vec![point],
    }];
    let mut curves = Vec::new();
    if let Some(eb) = p.erlang_b {
        // The loss model at the measured load, for pool sizes around this one: what adding
        // or removing workers would do.
        let a = eb.offered_erlangs;
        let lo = (f64::from(eb.workers) * 0.5).floor().max(1.0) as u32;
        let hi = (f64::from(eb.workers) * 1.5).ceil() as u32 + 2;
        curves.push((
            format!("Erlang B at A = {a:.2}, other pool sizes"),
            (lo..=hi)
                .map(|c| (f64::from(c), erlang_b(c, a)))
                .collect::<Vec<_>>(),
        ));
        page.text(&format!(
            "Measured {} [{}, {}] on {} workers; Erlang B at the measured offered load \
             (A = {:.2} erlangs) says {}. The grey line is Erlang B at that load for other \
             pool sizes.",
            human::ratio(p.exhaustion_ratio),
            human::ratio(p.exhaustion_ratio_ci95[0]),
            human::ratio(p.exhaustion_ratio_ci95[1]),
            p.workers,
            a,
            human::ratio(eb.blocking)
        ));
    } else {
        page.text(
            "Erlang B does not apply here (it needs Poisson arrivals, one conductor, no \
             faults, caller-runs or reject, and RPC slots that never all fill).",
        );
    }
    let slo_max = slo_limit(report, "exhaustion_ratio_max");
    page.figure(
        "exhaustion",
        &exhaustion_svg("pool workers", &series, &curves, slo_max)?,
    );
    latency_section(
        &mut page,
        spectra,
        slo_limit(report, "p99_max"),
        slo_limit(report, "accept_p99_max"),
    )?;
    page.heading("Occupancy");
    if !faults.note.is_empty() {
        page.text(&faults.note);
    }
    page.svg(&occupancy_svg(
        samples,
        (p.workers, report.rpc.slots),
        &faults.windows,
        phases,
    )?);
    page.heading("Retries");
    page.svg(&retries_svg(samples, &faults.windows, phases)?);
    page.heading("Violations");
    let listed = &report.invariants.violations;
    if report.invariants.checked.is_empty() {
        page.text("No invariant was judged ([checks] invariants = []).");
    } else if listed.is_empty() {
        page.text("No violation.");
    } else {
        let total: u64 = report.invariants.counts.values().sum();
        page.text(&format!(
            "{} found, {} listed (the checker lists the first few of each invariant per \
             seed){}.",
            human::count(total.max(listed.len() as u64)),
            human::count(listed.len() as u64),
            if listed.len() > MAX_VIOLATION_ROWS {
                format!("; the table shows the first {MAX_VIOLATION_ROWS}")
            } else {
                String::new()
            }
        ));
        violation_sections(&mut page, violations)?;
        page.heading("Listed violations");
        page.text_table(
            &violation_head(),
            &violation_rows(listed, MAX_VIOLATION_ROWS),
        );
    }
    Ok(page.render())
}

/// Rows of a violations table at most.
pub const MAX_VIOLATION_ROWS: usize = 100;

/// The timelines of `figures`, each with what the checker said, under a heading.
pub fn violation_sections(page: &mut Page, figures: &[ViolationFigure]) -> Result<(), HtmlError> {
    if figures.is_empty() {
        return Ok(());
    }
    page.heading("Violation timelines");
    page.text(
        "The first violation of each invariant that names ops with host intervals: the ops \
         involved as bars over their time at the host (stacked when they overlap), the other \
         listed violations' ops on that container nearby, the seed's faults shaded, and a red \
         line when the checker saw it.",
    );
    for f in figures {
        page.svg(&violation_svg(&f.title, &f.containers, &f.faults, f.at_s)?);
        page.text(&f.detail);
    }
    Ok(())
}

/// The occupancy shown on a page: whose it is and its samples.
#[derive(Debug, Clone, Copy)]
pub struct Occupancy<'a> {
    /// The row (of a sweep) the samples are of.
    pub row: usize,
    /// Its timeline's samples, seeds merged.
    pub samples: &'a [Sample],
    /// `(pool workers, RPC slots)` summed over conductors.
    pub capacity: (u64, u64),
    /// The end of the warm-up and of the load phase.
    pub phases: Phases,
}

/// Sweep rows (and exhaustion series) drawn at most in one plot: one colour each. A larger
/// grid is drawn as a selection that the page names.
pub const MAX_PLOTTED_ROWS: usize = PALETTE.len();

/// The `report.html` of `sweep`: the table, exhaustion against the first numeric grid key
/// (one series per combination of the other keys, Erlang B beside; at most
/// [`MAX_PLOTTED_ROWS`] series, a note says which), the completion and accept latency
/// spectra of every row (past [`MAX_PLOTTED_ROWS`] rows a selection spread over the grid, the
/// recommended one always, and a note naming it) with the p99 SLO line, the per-op-kind
/// latency and the occupancy and retries over time of the recommended row (else the last).
/// `spectra` has one entry per row.
pub fn sweep_page(
    sweep: &Sweep,
    spectra: &[Spectra],
    shown: &Occupancy<'_>,
    faults: &FaultShading,
) -> Result<String, HtmlError> {
    let mut page = Page::new(&format!("conductor-sim sweep: {}", sweep.scenario));
    page.pre(&sweep.table());
    page.heading("Rows");
    let keys: Vec<&str> = sweep.grid.iter().map(|a| a.key.as_str()).collect();
    let mut head: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    head.extend(
        [
            "exhaustion",
            "ci95",
            "Erlang B",
            "p50",
            "p99",
            "done/s",
            "SLO",
        ]
        .map(String::from),
    );
    let recovery = sweep.rows.iter().any(|r| r.recovery_s.is_some());
    if recovery {
        head.extend(["recovery", "metastable"].map(String::from));
    }
    let rows: Vec<Vec<String>> = sweep
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| r.params.get(*k).map(value_text).unwrap_or_default())
                .collect();
            if sweep.recommended_row == Some(i) {
                if let Some(c) = cells.first_mut() {
                    *c = format!("*{c}");
                }
            }
            cells.push(human::ratio(r.exhaustion_ratio.mean));
            cells.push(format!(
                "[{}, {}]",
                human::ratio(r.exhaustion_ratio.ci95[0]),
                human::ratio(r.exhaustion_ratio.ci95[1])
            ));
            cells.push(match r.erlang_b {
                Some(e) if e.flagged => format!("{} (outside CI)", human::ratio(e.blocking)),
                Some(e) => human::ratio(e.blocking),
                None => "-".into(),
            });
            cells.push(human::ms(r.p50_ms));
            cells.push(human::ms(r.p99_ms));
            cells.push(format!("{:.2}", r.throughput_per_s));
            cells.push(if r.slo.pass {
                "ok".into()
            } else {
                r.slo.failed.join(", ")
            });
            if recovery {
                match &r.recovery_s {
                    Some(x) => {
                        cells.push(x.text());
                        cells.push(crate::recovery::metastable_text(
                            r.metastable,
                            r.stuck_seeds,
                            sweep.seeds,
                        ));
                    }
                    None => cells.extend(["-", "-"].map(String::from)),
                }
            }
            cells
        })
        .collect();
    page.table(&head, &rows);
    page.text(&match sweep.recommended_row {
        Some(_) => format!(
            "Recommendation (highlighted): {}.",
            sweep.recommendation_note
        ),
        None => format!("No recommendation: {}.", sweep.recommendation_note),
    });

    // Exhaustion against the x key: prefer pool_workers when it is on the grid.
    let x_key = keys
        .iter()
        .position(|k| *k == "cluster.pool_workers")
        .unwrap_or(0);
    if let Some(x_name) = keys.get(x_key) {
        let mut series: Vec<ExhaustionSeries> = Vec::new();
        for r in &sweep.rows {
            let Some(x) = r.params.get(*x_name).and_then(serde_json::Value::as_f64) else {
                continue;
            };
            let others: Vec<String> = keys
                .iter()
                .filter(|k| *k != x_name)
                .map(|k| {
                    let v = r.params.get(*k).map(value_text).unwrap_or_default();
                    format!("{}={v}", k.rsplit('.').next().unwrap_or(k))
                })
                .collect();
            let label = others.join(" ");
            let point = ExhaustionPoint {
                x,
                mean: r.exhaustion_ratio.mean,
                ci95: r.exhaustion_ratio.ci95,
                erlang_b: r.erlang_b.map(|e| e.blocking),
            };
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(point),
                None => series.push(ExhaustionSeries {
                    label,
                    points: vec![point],
                }),
            }
        }
        page.heading("Pool exhaustion");
        // One colour per series: past the palette, the first combinations, named.
        if series.len() > MAX_PLOTTED_ROWS {
            page.text(&format!(
                "{} combinations of the other grid keys; the plot draws the first                  {MAX_PLOTTED_ROWS} ({} to {}), the table lists every row.",
                series.len(),
                series[0].label,
                series[MAX_PLOTTED_ROWS - 1].label
            ));
            series.truncate(MAX_PLOTTED_ROWS);
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
        page.figure(
            "exhaustion",
            &exhaustion_svg(x_name, &series, &[], sweep.slo.exhaustion_ratio_max)?,
        );
    }

    page.heading("Latency");
    let picks = spread_picks(sweep.rows.len(), MAX_PLOTTED_ROWS, sweep.recommended_row);
    let label_of = |i: usize| -> String {
        let r = &sweep.rows[i];
        let label: Vec<String> = keys
            .iter()
            .map(|k| {
                let v = r.params.get(*k).map(value_text).unwrap_or_default();
                format!("{}={v}", k.rsplit('.').next().unwrap_or(k))
            })
            .collect();
        label.join(" ")
    };
    if picks.len() < sweep.rows.len() {
        let named: Vec<String> = picks.iter().map(|&i| label_of(i)).collect();
        page.text(&format!(
            "{} rows; the latency plots draw {} of them, spread evenly over the grid (the first,              the last{} and rows between): {}. The table above lists every row.",
            sweep.rows.len(),
            picks.len(),
            if sweep.recommended_row.is_some() {
                ", the recommended one"
            } else {
                ""
            },
            named.join("; ")
        ));
    } else {
        page.text("Every row, seeds pooled: completion latency (submit to the op's end), then accept latency (submit to the API's answer).");
    }
    let pick = |f: fn(&Spectra) -> &Vec<(f64, f64)>| -> Vec<(String, Vec<(f64, f64)>)> {
        picks
            .iter()
            .filter_map(|&i| spectra.get(i).map(|s| (label_of(i), f(s).clone())))
            .collect()
    };
    page.figure(
        "latency-complete",
        &spectrum_svg(
            "Completion latency by percentile",
            &pick(|s| &s.complete),
            p99_limit("p99", sweep.slo.p99_max_ms).as_ref(),
        )?,
    );
    page.figure(
        "latency-accept",
        &spectrum_svg("Accept latency by percentile", &pick(|s| &s.accept), None)?,
    );

    let Occupancy {
        row,
        samples,
        capacity,
        phases,
    } = *shown;
    let which = if sweep.recommended_row == Some(row) {
        "the recommended row"
    } else {
        "the last row (no recommendation)"
    };
    let params: Vec<String> = sweep
        .rows
        .get(row)
        .map(|r| {
            r.params
                .iter()
                .map(|(k, v)| format!("{k} = {}", value_text(v)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(sp) = spectra.get(row).filter(|sp| sp.by_op.len() > 1) {
        page.heading(&format!("Latency per op kind, {which}"));
        page.figure(
            "latency-by-op",
            &spectrum_svg(
                "Completion latency by percentile, per op kind",
                &sp.by_op,
                p99_limit("p99", sweep.slo.p99_max_ms).as_ref(),
            )?,
        );
    }
    page.heading(&format!("Occupancy of {which}: {}", params.join(", ")));
    if !faults.note.is_empty() {
        page.text(&faults.note);
    }
    page.svg(&occupancy_svg(samples, capacity, &faults.windows, phases)?);
    page.heading("Retries");
    page.svg(&retries_svg(samples, &faults.windows, phases)?);
    Ok(page.render())
}

/// At most `max` indices of `0..n`, spread evenly, always including `must`.
fn spread_picks(n: usize, max: usize, must: Option<usize>) -> Vec<usize> {
    let mut v: Vec<usize> = if n <= max {
        (0..n).collect()
    } else {
        (0..max).map(|i| i * (n - 1) / (max - 1)).collect()
    };
    if let Some(m) = must.filter(|&m| m < n) {
        if !v.contains(&m) {
            v.pop();
            v.push(m);
            v.sort_unstable();
        }
    }
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Timeline;

    fn samples() -> Vec<Sample> {
        let mut t = Timeline::new();
        for i in 0..100u64 {
            t.pool_set(i * 100_000, 0, (i % 7) as u32);
            t.rpc_set(i * 100_000, 0, (i % 3) as u32);
        }
        t.backlog_wait(5_000_000, 2_000_000);
        t.finish(10_000_000);
        t.samples()
    }

    #[test]
    fn plots_are_svg_with_their_labels() {
        let faults = vec![(2.0, 3.5, "kill conductor-1".to_string())];
        let phases = Phases {
            warmup_s: 1.0,
            load_end_s: 8.0,
        };
        let occ = occupancy_svg(&samples(), (10, 64), &faults, phases).unwrap();
        assert!(occ.starts_with("<svg"), "{}", &occ[..80]);
        assert!(occ.contains("busy pool workers"));
        assert!(occ.contains("kill conductor-1"));
        let ret = retries_svg(&samples(), &[], phases).unwrap();
        assert!(ret.contains("retries per second"));
        let spec = spectrum_svg(
            "Completion latency by percentile",
            &[(
                "complete".into(),
                vec![
                    (0.0, 1.0),
                    (50.0, 2.0),
                    (90.0, 5.0),
                    (99.0, 9.0),
                    (100.0, 12.0),
                ],
            )],
            None,
        )
        .unwrap();
        assert!(spec.contains("99%"), "percentile labels");
        let ex = exhaustion_svg(
            "pool workers",
            &[ExhaustionSeries {
                label: String::new(),
                points: vec![ExhaustionPoint {
                    x: 10.0,
                    mean: 0.13,
                    ci95: [0.12, 0.14],
                    erlang_b: Some(0.133),
                }],
            }],
            &[(
                "Erlang B".into(),
                vec![(9.0, 0.2), (10.0, 0.13), (11.0, 0.09)],
            )],
            Some(0.05),
        )
        .unwrap();
        assert!(ex.contains("Erlang B"));
    }

    #[test]
    fn violation_timeline_stacks_overlapping_ops() {
        let c = ContainerTimeline {
            container: "c-17".into(),
            ops: vec![
                OpSpan {
                    op: 1,
                    kind: "create".into(),
                    start_s: 1.0,
                    end_s: 2.0,
                    seq: 1,
                    label: "conductor-1".into(),
                },
                OpSpan {
                    op: 2,
                    kind: "start".into(),
                    start_s: 1.5,
                    end_s: 2.5,
                    seq: 2,
                    label: "conductor-2 <early>".into(),
                },
            ],
        };
        let faults = vec![(1.2, 1.4, "kill conductor-2".to_string())];
        let svg = violation_svg("create-before-use, seed 3", &[c], &faults, Some(2.5)).unwrap();
        assert!(svg.contains("kill conductor-2"));
        assert!(svg.contains("c-17"));
        assert!(svg.contains("#2 start (op 2)"));
        // Text is escaped in SVG.
        assert!(svg.contains("&lt;early&gt;"));
        let empty = violation_svg("none", &[], &[], None).unwrap();
        assert!(empty.starts_with("<svg"));
    }

    #[test]
    fn figures_come_from_the_violations_json() {
        use serde_json::json;
        let v = |inv: &str, c: u64, ops: serde_json::Value| {
            json!({"invariant": inv, "seed": 3, "container": c, "t_us": 2_000_000,
                   "time": "2.000000s", "ops": ops, "detail": format!("{inv} broke")})
        };
        let list = vec![
            // No interval (judged at the end of the drain): no figure.
            v(
                "no-lost-ops",
                7,
                json!([{"id": 9, "kind": "start", "seq": 4}]),
            ),
            v(
                "exclusive",
                5,
                json!([{"id": 1, "kind": "stop", "seq": 1, "start_us": 1_000_000, "end_us": 1_500_000},
                       {"id": 2, "kind": "start", "seq": 2, "start_us": 1_200_000, "end_us": 2_000_000}]),
            ),
            // The same invariant again: context for the first, not a figure of its own.
            v(
                "exclusive",
                5,
                json!([{"id": 2, "kind": "start", "seq": 2, "start_us": 1_200_000, "end_us": 2_000_000},
                       {"id": 3, "kind": "stop", "seq": 3, "start_us": 1_900_000, "end_us": 2_100_000}]),
            ),
            // Another container: not in the first figure.
            v(
                "per-container-order",
                6,
                json!([{"id": 4, "kind": "stop", "seq": 2, "start_us": 1_000_000, "end_us": 1_100_000}]),
            ),
            json!("not a violation"),
        ];
        let figs = violation_figures(&list, &|seed| {
            assert_eq!(seed, 3);
            vec![(1.1, 1.3, "kill conductor-2".to_string())]
        });
        assert_eq!(figs.len(), 2);
        let f = &figs[0];
        assert_eq!(f.title, "exclusive: container 5, seed 3, at 2.000000s");
        assert_eq!(f.detail, "exclusive broke");
        assert_eq!(f.at_s, Some(2.0));
        let ops: Vec<(u64, &str)> = f.containers[0]
            .ops
            .iter()
            .map(|o| (o.op, o.label.as_str()))
            .collect();
        assert_eq!(ops, [(1, "involved"), (2, "involved"), (3, "")]);
        assert_eq!(figs[1].containers[0].ops.len(), 1);
        let svg = violation_svg(&f.title, &f.containers, &f.faults, f.at_s).unwrap();
        assert!(svg.contains("kill conductor-2") && svg.contains("#3 stop (op 3)"));
        let rows = violation_rows(&list, 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1][4],
            "#1 stop (op 1) [1.000s, 1.500s); #2 start (op 2) [1.200s, 2.000s)"
        );
        let bars = bars_svg("t", "seeds", &[("exclusive".into(), 3, true)], 4).unwrap();
        assert!(bars.contains("exclusive"));
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut p = Page::new("a <b>");
        p.text("x & y")
            .table(&["k".into()], &[vec!["*1".into()], vec!["2".into()]]);
        let html = p.render();
        assert!(html.contains("<title>a &lt;b&gt;</title>"));
        assert!(html.contains("x &amp; y"));
        assert!(html.contains("<tr class=\"mark\"><td>1</td>"));
        assert!(!html.contains("src=") && !html.contains("href="));
    }

    /// Whether `svg` has a text element reading exactly `text` (plotters writes each on its
    /// own line).
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    /// The `<figure id=…>` of `html`, for checks of one plot.
    fn figure<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("<figure id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no figure {id}"));
        let end = start + html[start..].find("</figure>").unwrap();
        &html[start..end]
    }

    #[test]
    fn exhaustion_axis_is_logarithmic_and_shows_zeros_at_its_floor() {
        let point = |x: f64, mean: f64| ExhaustionPoint {
            x,
            mean,
            ci95: [(mean * 0.8 - 0.001).max(0.0), mean * 1.2 + 0.001],
            erlang_b: Some(mean),
        };
        let series = [ExhaustionSeries {
            label: String::new(),
            points: vec![point(10.0, 0.13), point(14.0, 0.002), point(18.0, 0.0)],
        }];
        let svg = exhaustion_svg("pool workers", &series, &[], Some(0.01)).unwrap();
        // Decade ticks (a linear axis would label 0, 0.02, 0.04, …).
        for tick in ["0.1%", "1%", "10%"] {
            assert!(has_text(&svg, tick), "tick {tick} missing");
        }
        assert!(!has_text(&svg, "0.02") && !has_text(&svg, "0"));
        assert!(svg.contains("log scale"));
        assert!(svg.contains("SLO limit 1%"));
        assert!(svg
            .contains("1 mean(s) of 0 (no exhaustion seen) drawn hollow at the axis floor, 0.01%; intervals reaching 0 end there"));
        // The SLO line sits a decade above the floor, not on the axis: its y is well above
        // the x axis' (the bottom of the plot).
        let no_zero = [ExhaustionSeries {
            label: String::new(),
            points: vec![point(10.0, 0.13), point(14.0, 0.002)],
        }];
        let svg = exhaustion_svg("pool workers", &no_zero, &[], Some(0.01)).unwrap();
        assert!(!svg.contains("drawn hollow") && !svg.contains("reach 0"));
    }

    #[test]
    fn latency_plot_draws_the_slo_line_and_lists_every_series() {
        let series: Vec<(String, Vec<(f64, f64)>)> = (0..15)
            .map(|i| {
                (
                    format!("pool_workers={}", 10 + i),
                    vec![
                        (0.0, 1.0),
                        (50.0, 2.0),
                        (99.0, 9.0 + f64::from(i)),
                        (100.0, 30.0),
                    ],
                )
            })
            .collect();
        let limit = LatencyLimit {
            label: "p99 SLO 5.00 s".into(),
            ms: 5_000.0,
        };
        let svg = spectrum_svg("Completion latency by percentile", &series, Some(&limit)).unwrap();
        for (label, _) in &series {
            assert!(has_text(&svg, label), "{label} missing from the legend");
        }
        assert!(has_text(&svg, "p99 SLO 5.00 s"));
        // The limit raises the axis: 5 s is on it although every series stays under 25 ms.
        assert!(
            has_text(&svg, "5.00 s") || has_text(&svg, "4.00 s"),
            "axis reaches the SLO"
        );
        assert!(svg.contains("#FF0000"), "the SLO line is red");
        let none = spectrum_svg("x", &series[..1], None).unwrap();
        assert!(!none.contains("#FF0000") && !none.contains("SLO"));
    }

    #[test]
    fn time_axes_tick_at_round_steps_and_phase_labels_stay_clear() {
        let mut t = Timeline::new();
        for i in 0..1_800u64 {
            t.pool_set(i * 1_000_000, 0, (i % 7) as u32);
        }
        t.finish(1_800_000_000);
        let phases = Phases {
            warmup_s: 60.0,
            load_end_s: 1_800.0,
        };
        let occ = occupancy_svg(&t.samples(), (14, 64), &[], phases).unwrap();
        for tick in ["5m", "10m", "30m"] {
            assert!(has_text(&occ, tick), "tick {tick} missing");
        }
        assert!(!occ.contains("3m 20s"), "plotters' own step");
        // The key of the panels.
        assert!(occ.contains("mean per time bucket") && occ.contains("most busy at once"));
        // 60 s of 30 min is 2% of the width: the warm-up label goes right of its line (a
        // leading space), the load end's left of its line (a trailing space).
        assert!(
            has_text(&occ, " warm-up end"),
            "warm-up label right of its line"
        );
        assert!(has_text(&occ, "load end "));
        let long = Phases {
            warmup_s: 900.0,
            load_end_s: 1_800.0,
        };
        let occ = occupancy_svg(&t.samples(), (14, 64), &[], long).unwrap();
        assert!(
            has_text(&occ, "warm-up end "),
            "room on the left: label left of the line"
        );
    }

    fn sweep_of(rows: usize, recommended: Option<usize>) -> Sweep {
        use crate::sweep::{RatioCi, RowSlo, SloLimits, SweepRow};
        let row = |i: usize| SweepRow {
            params: std::collections::BTreeMap::from([(
                "cluster.pool_workers".to_string(),
                serde_json::json!(10 + i),
            )]),
            exhaustion_ratio: RatioCi {
                mean: 0.1 / (i + 1) as f64,
                ci95: [0.0, 0.2 / (i + 1) as f64],
            },
            p99_ms: 100.0,
            accept_p99_ms: 20.0,
            rpc_slots: 4,
            throughput_per_s: 1.0,
            p50_ms: 10.0,
            pooled_exhaustion_ratio: 0.1,
            arrivals: 100,
            exhausted: 1,
            mean_hold_ms: 1.0,
            conductors: 1,
            pool_workers: 10 + i as u32,
            cost: 10 + i as u64,
            erlang_b: None,
            slo: RowSlo {
                pass: true,
                failed: vec![],
                checks: vec![],
            },
            per_seed_exhaustion_ratio: vec![],
            recovery_s: None,
            metastable: None,
            stuck_seeds: 0,
        };
        Sweep {
            rows: (0..rows).map(row).collect(),
            recommendation: None,
            scenario: "s".into(),
            seed: 1,
            seeds: 2,
            grid: vec![crate::sweep::GridAxis {
                key: "cluster.pool_workers".into(),
                values: vec![],
            }],
            slo: SloLimits {
                exhaustion_ratio_max: Some(0.01),
                p99_max_ms: Some(5_000.0),
                objectives: vec![],
            },
            recommended_row: recommended,
            recommendation_note: "n".into(),
            headroom: None,
            load_factor: None,
        }
    }

    #[test]
    fn sweep_page_draws_every_row_or_names_its_selection() {
        let spectra = |n: usize| -> Vec<Spectra> {
            (0..n)
                .map(|i| Spectra {
                    complete: vec![(0.0, 1.0), (99.0, 5.0 + i as f64), (100.0, 9.0)],
                    by_op: vec![
                        ("create".into(), vec![(0.0, 2.0), (100.0, 9.0)]),
                        ("start".into(), vec![(0.0, 1.0), (100.0, 4.0)]),
                    ],
                    accept: vec![(0.0, 0.5), (100.0, 2.0)],
                })
                .collect()
        };
        let samples = samples();
        let shown = |row| Occupancy {
            row,
            samples: &samples,
            capacity: (10, 64),
            phases: Phases::default(),
        };
        let page = sweep_page(
            &sweep_of(7, Some(4)),
            &spectra(7),
            &shown(4),
            &FaultShading::default(),
        )
        .unwrap();
        let complete = figure(&page, "latency-complete");
        let accept = figure(&page, "latency-accept");
        for i in 0..7 {
            let label = format!("pool_workers={}", 10 + i);
            assert!(
                has_text(complete, &label) && has_text(accept, &label),
                "{label}"
            );
        }
        assert!(has_text(complete, "p99 SLO 5.00 s"));
        assert!(figure(&page, "exhaustion").contains("SLO limit 1%"));
        let by_op = figure(&page, "latency-by-op");
        assert!(has_text(by_op, "create") && has_text(by_op, "start"));
        assert!(!page.contains("the latency plots draw"));

        // 20 rows: 12 drawn, named, the recommended one among them.
        let page = sweep_page(
            &sweep_of(20, Some(5)),
            &spectra(20),
            &shown(5),
            &FaultShading::default(),
        )
        .unwrap();
        assert!(
            page.contains("20 rows; the latency plots draw 12 of them"),
            "the note"
        );
        let complete = figure(&page, "latency-complete");
        let drawn = (0..20)
            .filter(|i| has_text(complete, &format!("pool_workers={}", 10 + i)))
            .count();
        assert_eq!(drawn, 12);
        assert!(has_text(complete, "pool_workers=15"), "the recommended row");
    }

    #[test]
    fn picks_keep_the_recommended_row() {
        assert_eq!(spread_picks(3, 8, Some(1)), [0, 1, 2]);
        let p = spread_picks(20, 4, Some(7));
        assert_eq!(p.len(), 4);
        assert!(p.contains(&7) && p.contains(&0));
    }
}
