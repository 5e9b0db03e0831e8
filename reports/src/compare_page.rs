//! `compare`'s `report.html`: goodput over time (one line per variant, the trigger shaded),
//! retries per second, goodput and amplification with their 95% intervals, the latency
//! spectrum per variant, recovery time per variant, the paired differences and — with two
//! `--vary` axes — the boundary: the fraction of seeds stuck per cell.
//!
//! Up to 12 variants get a colour each (eight solid lines, then dashed ones); every legend
//! lists every variant. The drawing helpers are `html`'s.

use plotters::prelude::*;

use crate::axis;
use crate::compare::{Compare, MeanCi};
use crate::html::{
    colour, err, font, legend, phase_marks, shade_faults, spectrum_svg, time_range, DrawResult,
    HtmlError, Page, Phases, SIZE,
};
use crate::human;
use crate::recovery::Window;
use crate::sweep::value_text;

/// One variant's curves, for the page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantSeries {
    /// Goodput per second over time, `(t_s, per_s)`, seeds merged.
    pub goodput: Vec<(f64, f64)>,
    /// Retries per second over time, `(t_s, per_s)`, seeds merged.
    pub retries: Vec<(f64, f64)>,
    /// The end-to-end latency spectrum, as [`Histo::spectrum`](crate::Histo::spectrum) gives.
    pub spectrum: Vec<(f64, f64)>,
}

/// Variants drawn in colour (the legend lists every one; past this the colours repeat).
pub const MAX_VARIANTS: usize = 12;

/// Lines of one quantity over time, one per variant, `trigger` shaded.
fn lines_svg(
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[&[(f64, f64)]],
    trigger: &[Window],
    phases: Phases,
) -> Result<String, HtmlError> {
    let e = err("compare time series");
    let t_end = series
        .iter()
        .flat_map(|s| s.last().map(|p| p.0))
        .fold(phases.load_end_s, f64::max)
        .max(1e-3);
    let y_max = series
        .iter()
        .flat_map(|s| s.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    // Room for the legend: one line per variant.
    let height = SIZE.1 + 18 * labels.len().saturating_sub(4) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let draw = || -> DrawResult {
            let mut chart = ChartBuilder::on(&root)
                .caption(title, font(16))
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(64)
                .build_cartesian_2d(time_range(t_end), 0.0..y_max)?;
            let fmt_x = |x: &f64| axis::time_label(*x);
            chart
                .configure_mesh()
                .x_desc("simulated time")
                .y_desc(y_label)
                .x_label_formatter(&fmt_x)
                .label_style(font(11))
                .light_line_style(RGBColor(238, 238, 238))
                .draw()?;
            let (w, h) = chart.plotting_area().dim_in_pixel();
            let px = (f64::from(w) / t_end, f64::from(h) / y_max);
            let shaded: Vec<(f64, f64, String)> = trigger
                .iter()
                .map(|&(a, b)| (a, b, "trigger".to_string()))
                .collect();
            shade_faults(&mut chart, &shaded, (0.0, t_end), y_max, px)?;
            phase_marks(&mut chart, phases, (t_end, y_max), px)?;
            for (i, (label, pts)) in labels.iter().zip(series).enumerate() {
                let c = colour(i);
                let style = c.stroke_width(2);
                let drawn = if i < 8 {
                    chart.draw_series(LineSeries::new(pts.iter().copied(), style))?
                } else {
                    chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 6, 3, style))?
                };
                let dashed = i >= 8;
                drawn.label(label.clone()).legend(move |(x, y)| {
                    let end = if dashed { x + 9 } else { x + 18 };
                    PathElement::new([(x, y), (end, y)], c.stroke_width(2))
                });
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight)
        };
        draw().map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// One horizontal whisker per variant: a dot at the value and a bar over its interval; `None`
/// rows are written as `text` instead.
fn whiskers_svg(
    title: &str,
    x_label: &str,
    labels: &[String],
    rows: &[Result<MeanCi, String>],
) -> Result<String, HtmlError> {
    let e = err("compare intervals");
    let n = rows.len().max(1);
    let x_max = rows
        .iter()
        .flatten()
        .flat_map(|m| [m.mean, m.ci95[1]])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.12;
    let x_min = rows
        .iter()
        .flatten()
        .map(|m| m.ci95[0])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::min);
    let height = (90 + 28 * n as u32).min(4000);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&e)?;
        let draw = || -> DrawResult {
            let mut chart = ChartBuilder::on(&root)
                .caption(title, font(16))
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(260)
                .build_cartesian_2d(x_min..x_max, 0.0..n as f64)?;
            let short: Vec<String> = labels
                .iter()
                .map(|l| {
                    if l.chars().count() > 40 {
                        format!("{}…", l.chars().take(39).collect::<String>())
                    } else {
                        l.clone()
                    }
                })
                .collect();
            let fmt_y = |y: &f64| {
                let i = (y - 0.5).round();
                if (y - 0.5 - i).abs() < 0.01 && i >= 0.0 {
                    short.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n * 2 + 1)
                .y_label_formatter(&fmt_y)
                .x_desc(x_label)
                .label_style(font(11))
                .draw()?;
            for (i, r) in rows.iter().enumerate() {
                let y = i as f64 + 0.5;
                let c = colour(i);
                match r {
                    Ok(m) => {
                        chart.draw_series(std::iter::once(PathElement::new(
                            [(m.ci95[0], y), (m.ci95[1], y)],
                            c.stroke_width(3),
                        )))?;
                        chart.draw_series(std::iter::once(Circle::new(
                            (m.mean, y),
                            5,
                            c.filled(),
                        )))?;
                        chart.draw_series(std::iter::once(Text::new(
                            format!("  {}", crate::round::significant(m.mean, 4)),
                            (m.ci95[1], y + 0.3),
                            font(11),
                        )))?;
                    }
                    Err(text) => {
                        chart.draw_series(std::iter::once(Text::new(
                            text.clone(),
                            (x_min, y + 0.3),
                            font(11).color(&RGBColor(150, 30, 30)),
                        )))?;
                    }
                }
            }
            Ok(())
        };
        draw().map_err(&e)?;
        root.present().map_err(&e)?;
    }
    Ok(svg)
}

/// The boundary table of a two-axis comparison: the first axis down, the second across, each
/// cell the fraction of seeds stuck (metastable) with its 95% interval.
pub fn boundary_rows(c: &Compare) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let [k1, k2] = c.keys.as_slice() else {
        return None;
    };
    let mut across: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    for r in &c.rows {
        let a = r.params.get(k1).map(value_text).unwrap_or_default();
        let b = r.params.get(k2).map(value_text).unwrap_or_default();
        if !down.contains(&a) {
            down.push(a);
        }
        if !across.contains(&b) {
            across.push(b);
        }
    }
    let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let mut head = vec![format!("{} \\ {}", short(k1), short(k2))];
    head.extend(across.iter().cloned());
    let rows = down
        .iter()
        .map(|a| {
            let mut cells = vec![a.clone()];
            for b in &across {
                let cell = c.rows.iter().position(|r| {
                    r.params.get(k1).map(value_text).as_deref() == Some(a.as_str())
                        && r.params.get(k2).map(value_text).as_deref() == Some(b.as_str())
                });
                cells.push(cell.map_or_else(String::new, |i| {
                    let (p, lo, hi) = c.stuck(i);
                    format!(
                        "{}/{} stuck = {:.2} [{:.2}, {:.2}]",
                        c.rows[i].stuck_seeds, c.seeds, p, lo, hi
                    )
                }));
            }
            cells
        })
        .collect();
    Some((head, rows))
}

/// The page. `table` is what the command printed; `series` one entry per row; `trigger` the
/// first row's first seed's trigger windows.
///
/// # Errors
/// A plot that could not be drawn.
pub fn compare_page(
    c: &Compare,
    table: &str,
    series: &[VariantSeries],
    trigger: &[Window],
    phases: Phases,
) -> Result<String, HtmlError> {
    let mut page = Page::new(&format!("conductor-sim compare: {}", c.scenario));
    page.pre(table);
    let labels: Vec<String> = (0..c.rows.len())
        .map(|i| format!("{}. {}", i + 1, c.label(i)))
        .collect();
    if c.rows.len() > MAX_VARIANTS {
        page.text(&format!(
            "{} variants: past {MAX_VARIANTS} the colours repeat (the legends list every one).",
            c.rows.len()
        ));
    }
    page.heading("Goodput over time");
    page.text(
        "Requests answered successfully before the client gave up on them, per second, seeds \
         merged; the trigger (fault windows and load phases above the pre-trigger rate) is \
         shaded.",
    );
    let goodput: Vec<&[(f64, f64)]> = series.iter().map(|s| s.goodput.as_slice()).collect();
    page.svg(&lines_svg(
        "Goodput per second",
        "goodput/s",
        &labels,
        &goodput,
        trigger,
        phases,
    )?);
    page.heading("Retries per second");
    let retries: Vec<&[(f64, f64)]> = series.iter().map(|s| s.retries.as_slice()).collect();
    page.svg(&lines_svg(
        "Retries per second",
        "retries/s",
        &labels,
        &retries,
        trigger,
        phases,
    )?);
    page.heading("Goodput and amplification");
    page.text("Means over seeds with their 95% intervals (Student t).");
    let g: Vec<Result<MeanCi, String>> = c.rows.iter().map(|r| Ok(r.goodput_per_s)).collect();
    page.svg(&whiskers_svg(
        "Goodput per second",
        "goodput/s",
        &labels,
        &g,
    )?);
    let a: Vec<Result<MeanCi, String>> = c.rows.iter().map(|r| Ok(r.amplification)).collect();
    page.svg(&whiskers_svg(
        "Amplification (attempts / requests)",
        "amplification",
        &labels,
        &a,
    )?);
    page.heading("Latency spectrum");
    page.text("End-to-end latency of the goodput, from the intended send time, seeds merged.");
    let spectra: Vec<(String, Vec<(f64, f64)>)> = labels
        .iter()
        .zip(series)
        .map(|(l, s)| (l.clone(), s.spectrum.clone()))
        .collect();
    page.figure(
        "latency-complete",
        &spectrum_svg("End-to-end latency by percentile", &spectra, None)?,
    );
    page.heading("Recovery time");
    page.text(
        "From the end of the trigger until goodput / offered ≥ 0.9 and the sliding 60 s p99 ≤ \
         1.5 × the pre-trigger p99 hold for max(60 s, 5 buckets): the median over the seeds \
         that recovered (dot) and the longest (bar's end).",
    );
    let rec: Vec<Result<MeanCi, String>> = c
        .rows
        .iter()
        .map(|r| match (r.recovery_s.median, r.recovery_s.max) {
            (Some(m), Some(x)) => Ok(MeanCi {
                mean: m,
                ci95: [m, x],
            }),
            _ if r.recovery_s.unrecovered_seeds > 0 => Err(format!(
                "never recovered ({} of {} seeds)",
                r.recovery_s.unrecovered_seeds, c.seeds
            )),
            _ => Err("no trigger".into()),
        })
        .collect();
    page.svg(&whiskers_svg(
        "Recovery time",
        "seconds after the trigger",
        &labels,
        &rec,
    )?);
    let rows: Vec<Vec<String>> = c
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                labels[i].clone(),
                r.recovery_s.median.map_or("-".into(), human::secs),
                r.recovery_s.max.map_or("-".into(), human::secs),
                r.recovery_s.unrecovered_seeds.to_string(),
                match r.metastable {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "not judged".into(),
                },
                format!("{}/{}", r.stuck_seeds, c.seeds),
            ]
        })
        .collect();
    page.text_table(
        &[
            "variant",
            "median",
            "max",
            "unrecovered seeds",
            "metastable",
            "seeds stuck",
        ]
        .map(String::from),
        &rows,
    );
    if let Some((head, rows)) = boundary_rows(c) {
        page.heading("The boundary");
        page.text(
            "The fraction of seeds stuck (metastable) in each cell, with its 95% interval \
             (Wilson).",
        );
        page.text_table(&head, &rows);
    }
    if !c.paired.is_empty() {
        page.heading("Paired differences");
        page.text(&format!(
            "Each row minus row 1 ({}), seed by seed on the same arrivals: mean [95% CI].",
            c.label(0)
        ));
        let ci = |m: &MeanCi| format!("{} [{}, {}]", m.mean, m.ci95[0], m.ci95[1]);
        let rows: Vec<Vec<String>> = c
            .paired
            .iter()
            .map(|p| {
                vec![
                    labels[p.row].clone(),
                    ci(&p.goodput_diff),
                    ci(&p.attempts_diff),
                    ci(&p.p99_diff_ms),
                ]
            })
            .collect();
        page.text_table(
            &[
                "variant",
                "Δ goodput/s",
                "Δ attempts per seed",
                "Δ p99 (ms)",
            ]
            .map(String::from),
            &rows,
        );
    }
    Ok(page.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{build, RowInput, SeedOutcome};
    use crate::recovery::Judgement;
    use crate::Histo;

    #[test]
    fn twelve_variants_each_in_the_legends_and_the_boundary_table() {
        let rows: Vec<RowInput> = (0..12)
            .map(|i| {
                let mut latency = Histo::new();
                latency.record(1_000 + i * 100);
                RowInput {
                    params: [
                        ("a".to_string(), serde_json::json!(i / 4)),
                        ("b".to_string(), serde_json::json!(format!("v{}", i % 4))),
                    ]
                    .into(),
                    seeds: (1..=3)
                        .map(|s| SeedOutcome {
                            seed: s,
                            offered: 100,
                            good: 90,
                            attempts: 100 + i,
                            gave_up: 10,
                            p99_ms: 3.0,
                            judgement: Judgement {
                                trigger: vec![(10.0, 20.0)],
                                recovery_s: (s + i % 2 == 0).then_some(5.0),
                                metastable: Some(s + i % 2 != 0 && s < 3),
                            },
                        })
                        .collect(),
                    latency,
                    exhaustion_ratio: 0.0,
                    load_s: 10.0,
                    slo_failed: Vec::new(),
                }
            })
            .collect();
        let c = build("s", &["a".into(), "b".into()], 1, &rows);
        let series: Vec<VariantSeries> = (0..12)
            .map(|i| VariantSeries {
                goodput: vec![(1.0, 9.0 + i as f64), (2.0, 9.0)],
                retries: vec![(1.0, 1.0), (2.0, i as f64)],
                spectrum: vec![(50.0, 1.0), (99.0, 2.0)],
            })
            .collect();
        let html = compare_page(&c, &c.table(), &series, &[(1.2, 1.5)], Phases::default()).unwrap();
        for i in 0..12 {
            let l = escape_label(&format!("{}. {}", i + 1, c.label(i)));
            // Legends of the two time plots and the spectrum, the whiskers' axis labels, the table.
            assert!(html.matches(&l).count() >= 4, "{l} missing");
        }
        assert!(html.contains("The boundary"));
        assert!(html.contains("a \\ b"));
        assert!(html.contains("stuck = "));
        let again =
            compare_page(&c, &c.table(), &series, &[(1.2, 1.5)], Phases::default()).unwrap();
        assert_eq!(html, again);
    }

    fn escape_label(s: &str) -> String {
        crate::html::escape(s)
    }
}
