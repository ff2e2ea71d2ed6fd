//! `target/bench/results.svg`: a chart of the results a browser opens. One bar per figure that
//! has a native counterpart, showing Bulkhead / native on a log scale (1x is native speed),
//! coloured by the figure's target (green met, red not met, blue none), with both values beside
//! it; then the figures that exist only in a partition (instruction counts, footprint) as text.
//! Hand-written SVG: a few rectangles, lines and text elements.

use std::fmt::Write;

use super::figures::{Figure, FigureSet};
use super::report::human;

const WIDTH: f64 = 1100.0;
const LABEL_WIDTH: f64 = 290.0;
const BAR_WIDTH: f64 = 400.0;
const ROW: f64 = 22.0;
const TOP: f64 = 78.0;
/// The largest ratio the scale shows.
const MAX_SCALE: f64 = 1000.0;
/// The least distance between two scale labels, in pixels.
const MIN_LABEL_GAP: f64 = 44.0;

/// The chart for `figures`, titled with `subtitle` (e.g. the QEMU version and date).
pub fn svg(figures: &FigureSet, subtitle: &str) -> String {
    let ratios: Vec<(&Figure, f64)> = figures
        .iter()
        .filter_map(|f| Some((f, f.ratio()?)))
        .filter(|(_, r)| r.is_finite() && *r > 0.0)
        .collect();
    let alone: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.native.is_none() && f.bulkhead.value().is_some())
        .collect();

    // Log scale from 0.5x to the next "nice" value above the largest ratio (at least 10x, at
    // most 1000x: longer bars are cut at the edge, their label still says how long).
    let low = 0.5_f64;
    let largest = ratios.iter().map(|(_, r)| *r).fold(1.0, f64::max);
    let high = nice_above(largest.clamp(10.0, MAX_SCALE));
    let x = |ratio: f64| {
        let r = ratio.clamp(low, high);
        LABEL_WIDTH + (r / low).log10() / (high / low).log10() * BAR_WIDTH
    };

    let bars_height = ratios.len() as f64 * ROW;
    let alone_top = TOP + bars_height + 60.0;
    let height = alone_top + alone.len() as f64 * ROW + 30.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="24" font-size="18" font-weight="bold">Bulkhead benchmarks: Bulkhead / native (log scale)</text>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="10" y="44" fill="#555">{}</text>"##,
        escape(subtitle)
    );

    // Grid lines with their labels: powers of ten always, 2x and 5x where there is room.
    let grid_bottom = TOP + bars_height;
    let all_ticks = ticks(low, high);
    let mut labelled: Vec<f64> = all_ticks
        .iter()
        .copied()
        .filter(|&t| is_power_of_ten(t))
        .collect();
    for &tick in all_ticks.iter().filter(|&&t| !is_power_of_ten(t)) {
        if labelled
            .iter()
            .all(|&l| (x(l) - x(tick)).abs() >= MIN_LABEL_GAP)
        {
            labelled.push(tick);
        }
    }
    for tick in all_ticks {
        let gx = x(tick);
        let colour = if tick == 1.0 { "#000" } else { "#ccc" };
        let _ = writeln!(
            out,
            r##"<line x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{grid_bottom:.1}" stroke="{colour}"/>"##,
            TOP - 8.0
        );
        if labelled.contains(&tick) {
            let _ = writeln!(
                out,
                r##"<text x="{gx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}x</text>"##,
                TOP - 12.0,
                trim_number(tick)
            );
        }
    }

    for (i, (figure, ratio)) in ratios.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let (from, to) = (x(1.0).min(x(*ratio)), x(1.0).max(x(*ratio)));
        let colour = match figure.meets_target() {
            Some(true) => "#2e7d32",
            Some(false) => "#c62828",
            None => "#1565c0",
        };
        let native = value_text(figure, figure.native.as_ref().and_then(|n| n.value()));
        let bulkhead = value_text(figure, figure.bulkhead.value());
        name_label(&mut out, y, &figure.name);
        let _ = writeln!(
            out,
            r##"<rect x="{from:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"##,
            y + 4.0,
            (to - from).max(1.0),
            ROW - 8.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}">{:.2}x  ({} native, {} Bulkhead)</text>"##,
            LABEL_WIDTH + BAR_WIDTH + 10.0,
            y + 15.0,
            ratio,
            escape(&native),
            escape(&bulkhead)
        );
    }

    let _ = writeln!(
        out,
        r##"<text x="10" y="{:.1}" font-size="15" font-weight="bold">Bulkhead only</text>"##,
        alone_top - 14.0
    );
    for (i, figure) in alone.iter().enumerate() {
        let y = alone_top + i as f64 * ROW;
        let value = value_text(figure, figure.bulkhead.value());
        name_label(&mut out, y, &figure.name);
        let _ = writeln!(
            out,
            r##"<text x="{LABEL_WIDTH:.1}" y="{:.1}">{}</text>"##,
            y + 15.0,
            escape(&value)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A figure's name, right-aligned before the row at `y`.
fn name_label(out: &mut String, y: f64, name: &str) {
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
        LABEL_WIDTH - 8.0,
        y + 15.0,
        escape(name)
    );
}

/// `value` in the figure's unit, readably; empty without a value.
fn value_text(figure: &Figure, value: Option<f64>) -> String {
    value.map_or(String::new(), |v| human(v, &figure.unit))
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value`.
fn nice_above(value: f64) -> f64 {
    let mut power = 1.0;
    loop {
        for step in [1.0, 2.0, 5.0] {
            if step * power >= value {
                return step * power;
            }
        }
        power *= 10.0;
    }
}

/// Grid values between `low` and `high`: 0.5, 1, 2, 5, 10, 20, ...
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut power = 0.1;
    while power <= high {
        for step in [1.0, 2.0, 5.0] {
            let tick = step * power;
            if tick >= low * 0.999 && tick <= high * 1.001 {
                out.push(tick);
            }
        }
        power *= 10.0;
    }
    out
}

/// Whether `value` is 1, 10, 100, ... (as [`ticks`] computes them).
fn is_power_of_ten(value: f64) -> bool {
    let exponent = value.log10().round();
    exponent >= 0.0 && (value - 10f64.powf(exponent)).abs() < 1e-9 * value
}

/// `0.5`, `1`, `20`: no trailing zeros.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Escapes text for SVG (XML) character data and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::super::figures::Side;
    use super::*;

    /// Checks that every tag is closed in order (enough to catch broken markup).
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap();
                stack.push(name.to_owned());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn bars_and_text() {
        let mut set = FigureSet::default();
        set.record("irq-latency-median", "ns", Side::Native, 21_000.0, 2000);
        set.record("irq-latency-median", "ns", Side::Bulkhead, 30_000.0, 2000);
        set.record("hypercall-latency-median", "ns", Side::Native, 144.0, 2000);
        set.record(
            "hypercall-latency-median",
            "ns",
            Side::Bulkhead,
            1_120.0,
            2000,
        );
        set.record(
            "irq-injection-instructions",
            "instructions",
            Side::Bulkhead,
            974.0,
            200,
        );
        let svg = svg(&set, "QEMU 7.2 <test> & co");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_well_formed(&svg);
        assert!(svg.contains("QEMU 7.2 &lt;test&gt; &amp; co"));
        assert!(svg.contains(">irq-latency-median</text>"));
        assert!(svg.contains("1.43x  (21.00 µs native, 30.00 µs Bulkhead)"));
        assert!(svg.contains("7.78x"));
        assert!(svg.contains(">irq-injection-instructions</text>"));
        assert!(svg.contains(">974</text>"));
        // Met target: green; no target: blue.
        assert!(svg.contains("#2e7d32") && svg.contains("#1565c0"));
        // The scale always names 1x and 10x.
        assert!(svg.contains(">1x</text>") && svg.contains(">10x</text>"));
    }

    #[test]
    fn an_empty_set_still_makes_a_chart() {
        let svg = svg(&FigureSet::default(), "");
        assert_well_formed(&svg);
    }

    #[test]
    fn scale() {
        assert_eq!(nice_above(7.8), 10.0);
        assert_eq!(nice_above(10.0), 10.0);
        assert_eq!(nice_above(11.0), 20.0);
        assert_eq!(nice_above(130.0), 200.0);
        assert_eq!(ticks(0.5, 10.0), [0.5, 1.0, 2.0, 5.0, 10.0]);
        assert_eq!(trim_number(0.5), "0.5");
        assert!(is_power_of_ten(1.0) && is_power_of_ten(100.0));
        assert!(!is_power_of_ten(0.1) && !is_power_of_ten(20.0) && !is_power_of_ten(5.0));
        assert_eq!(trim_number(20.0), "20");
    }
}
