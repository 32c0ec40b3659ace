//! Charts drawn on the server as SVG (web.md): presentation attributes
//! only (`stroke`, `fill`; never `style=""`, which the page's CSP refuses),
//! no script, and beside each chart a table of the same figures for screen
//! readers.

use maud::{Markup, html};
use time::OffsetDateTime;

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub label: String,
    /// (start of the span, value), in time order.
    pub points: Vec<(OffsetDateTime, f64)>,
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;
/// Line colours with at least 3:1 contrast on white (WCAG 1.4.11).
const COLOURS: [&str; 5] = ["#1f5fbf", "#b3261e", "#1b6b34", "#8a4e00", "#6b3fa0"];

fn time_label(t: OffsetDateTime, span: time::Duration) -> String {
    let format = if span > time::Duration::days(1) {
        time::macros::format_description!("[month repr:short] [day]")
    } else {
        time::macros::format_description!("[hour]:[minute]")
    };
    t.format(&format).unwrap_or_default()
}

/// What a chart spans: time from `from` to `to` in spans of `step`, values
/// from 0 to `max`, each figure followed by `unit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axes<'a> {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub step: time::Duration,
    pub max: f64,
    pub unit: &'a str,
}

/// A line chart of `series` over `axes`; `id` names it on the page.
pub(crate) fn line_chart(id: &str, title: &str, axes: &Axes<'_>, series: &[Series]) -> Markup {
    let Axes { from, to, step, max, unit } = *axes;
    let span = (to - from).max(time::Duration::SECOND);
    let x = |t: OffsetDateTime| LEFT + (WIDTH - LEFT - RIGHT) * ((t - from) / span).clamp(0.0, 1.0);
    let y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v / max).clamp(0.0, 1.0));
    // A line breaks where spans have no samples (the machine was silent).
    let runs = |points: &[(OffsetDateTime, f64)]| {
        let mut runs: Vec<String> = Vec::new();
        let mut last: Option<OffsetDateTime> = None;
        for (t, v) in points {
            let point = format!("{:.1},{:.1}", x(*t), y(*v));
            match (last, runs.last_mut()) {
                (Some(previous), Some(run)) if *t - previous <= step * 2 => {
                    run.push(' ');
                    run.push_str(&point);
                }
                _ => runs.push(point),
            }
            last = Some(*t);
        }
        runs
    };
    let empty = series.iter().all(|s| s.points.is_empty());
    let title_id = format!("{id}-title");
    html! {
        figure.chart {
            figcaption #(title_id) { (title) }
            @if empty {
                p.muted.small { "No samples in this range." }
            } @else {
                svg viewBox={"0 0 " (WIDTH) " " (HEIGHT)} width="100%" role="img" aria-labelledby=(title_id)
                    preserveAspectRatio="none" focusable="false" {
                    @for share in [0.0, 0.5, 1.0] {
                        @let at = y(max * share);
                        line x1=(LEFT) x2={(WIDTH - RIGHT)} y1=(at) y2=(at) stroke="#d5dae0" stroke-width="1" {}
                        text x={(LEFT - 6.0)} y={(at + 4.0)} text-anchor="end" font-size="11" fill="#4a5561" { (max * share) (unit) }
                    }
                    text x=(LEFT) y={(HEIGHT - 6.0)} font-size="11" fill="#4a5561" { (time_label(from, span)) }
                    text x={(WIDTH - RIGHT)} y={(HEIGHT - 6.0)} text-anchor="end" font-size="11" fill="#4a5561" { (time_label(to, span)) }
                    @for (i, line) in series.iter().enumerate() {
                        @for run in runs(&line.points) {
                            @if run.contains(' ') {
                                polyline points=(run) fill="none" stroke=(COLOURS[i % COLOURS.len()]) stroke-width="2" {}
                            } @else {
                                @let (cx, cy) = run.split_once(',').unwrap_or(("0", "0"));
                                circle cx=(cx) cy=(cy) r="2.5" fill=(COLOURS[i % COLOURS.len()]) {}
                            }
                        }
                    }
                }
                @if series.len() > 1 {
                    p.legend.small {
                        @for (i, line) in series.iter().enumerate() {
                            span.key { svg width="12" height="12" aria-hidden="true" focusable="false" { rect width="12" height="12" fill=(COLOURS[i % COLOURS.len()]) {} } " " (line.label) }
                            " "
                        }
                    }
                }
                table.visually-hidden {
                    caption { (title) ", mean of each span" }
                    thead { tr { th scope="col" { "From" } @for line in series { th scope="col" { (line.label) } } } }
                    tbody {
                        @for t in times(series) {
                            tr {
                                th scope="row" { (crate::pages::rfc3339(t)) }
                                @for line in series {
                                    td { @match line.points.iter().find(|(at, _)| *at == t) { Some((_, v)) => { (format!("{v:.1}")) (unit) } None => { "—" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every span start of any series, in order, once.
fn times(series: &[Series]) -> Vec<OffsetDateTime> {
    let mut all: Vec<OffsetDateTime> = series.iter().flat_map(|s| s.points.iter().map(|(t, _)| *t)).collect();
    all.sort();
    all.dedup();
    all
}

/// A sparkline: `values` (one per span, `None` where the machine was
/// silent) from 0 to 100 in a 96 x 20 box, with its figures in words for
/// screen readers (`what`: "Processor use").
pub(crate) fn sparkline(what: &str, values: &[Option<f64>]) -> Markup {
    const W: f64 = 96.0;
    const H: f64 = 20.0;
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    if known.is_empty() {
        return html! { span.muted.small { "no data" } };
    }
    let step = W / (values.len().max(2) - 1) as f64;
    let y = |v: f64| 1.0 + (H - 2.0) * (1.0 - (v / 100.0).clamp(0.0, 1.0));
    let mut runs: Vec<String> = Vec::new();
    let mut open = false;
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let point = format!("{:.1},{:.1}", i as f64 * step, y(*v));
                if open && let Some(run) = runs.last_mut() {
                    run.push(' ');
                    run.push_str(&point);
                } else {
                    runs.push(point);
                }
                open = true;
            }
            None => open = false,
        }
    }
    let (low, high) = known.iter().fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let last = known.last().copied().unwrap_or_default();
    let label = format!("{what}, last 24 hours: from {low:.0} to {high:.0} %, now {last:.0} %");
    html! {
        svg.sparkline viewBox={"0 0 " (W) " " (H)} width="96" height="20" role="img" aria-label=(label) {
            title { (label) }
            line x1="0" y1=(H - 0.5) x2=(W) y2=(H - 0.5) stroke="#d9dee5" stroke-width="1" {}
            @for run in &runs {
                @if run.contains(' ') {
                    polyline points=(run) fill="none" stroke="#1f5fbf" stroke-width="1.5" {}
                } @else {
                    @let (cx, cy) = run.split_once(',').unwrap_or(("0", "0"));
                    circle cx=(cx) cy=(cy) r="1.5" fill="#1f5fbf" {}
                }
            }
        }
    }
}
