//! Writing the results: the table `cargo xtask bench` prints and `target/bench/results.json`,
//! a list of `{"name", "unit", "native", "bulkhead", "ratio", "samples"}` (`native` and `ratio`
//! null without a native counterpart; `samples` is how many samples the Bulkhead value rests on
//! over all rounds, the number of rounds for single-value figures).

use std::fmt::Write;

use serde_json::{json, Value};

use super::figures::{Figure, FigureSet, Target};
use super::stats::relative_spread;

/// The results as the JSON document of `results.json` (pretty-printed, with a final newline).
pub fn json(figures: &FigureSet) -> String {
    let list: Vec<Value> = figures
        .iter()
        .filter_map(|figure| {
            Some(json!({
                "name": figure.name,
                "unit": figure.unit,
                "native": figure.native.as_ref().and_then(|n| n.value()),
                "bulkhead": figure.bulkhead.value()?,
                "ratio": figure.ratio(),
                "samples": figure.bulkhead.samples,
            }))
        })
        .collect();
    let mut text =
        serde_json::to_string_pretty(&Value::Array(list)).expect("a JSON value always serialises");
    text.push('\n');
    text
}

/// `value` in `unit`, readably: nanoseconds scaled to µs or ms, bytes and instructions with
/// thousands separators, rates to two decimals.
pub fn human(value: f64, unit: &str) -> String {
    match unit {
        "ns" if value.abs() >= 1e6 => format!("{:.2} ms", value / 1e6),
        "ns" if value.abs() >= 1e3 => format!("{:.2} µs", value / 1e3),
        "ns" => format!("{value:.0} ns"),
        "ms" if value.abs() >= 1e3 => format!("{:.2} s", value / 1e3),
        "ms" if value.abs() >= 1.0 => format!("{value:.2} ms"),
        "ms" => human(value * 1e6, "ns"),
        "s" => format!("{value:.2} s"),
        "bytes" => format!("{} B", thousands(value)),
        "instructions" => thousands(value),
        "x" => format!("{value:.2}x"),
        "MiB/s" => format!("{value:.2} MiB/s"),
        _ => format!("{value} {unit}"),
    }
}

/// `value` rounded to an integer, with `,` every three digits.
fn thousands(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// The target column: the goal and whether it is met.
fn target_text(figure: &Figure) -> String {
    let Some(target) = figure.target() else {
        return String::new();
    };
    let goal = match target {
        Target::RatioAtMost(max) => format!("<= {max}x"),
        Target::Below(limit) => format!("< {}", human(limit, &figure.unit)),
    };
    match figure.meets_target() {
        Some(true) => format!("{goal} met"),
        Some(false) => format!("{goal} NOT met"),
        None => goal,
    }
}

/// The spread column: each side's (max − min) / median over its rounds.
fn spread_text(figure: &Figure) -> String {
    let side = |values: &[f64]| match (values.len(), relative_spread(values)) {
        (0 | 1, _) | (_, None) => "-".to_owned(),
        (_, Some(spread)) => format!("{:.0}%", spread * 100.0),
    };
    let bulkhead = side(&figure.bulkhead.values);
    match &figure.native {
        Some(native) => format!("{} / {bulkhead}", side(&native.values)),
        None => bulkhead,
    }
}

/// The table `cargo xtask bench` prints: figure, native, Bulkhead, ratio, target, and the
/// run-to-run spread (native / Bulkhead, over the rounds).
pub fn table(figures: &FigureSet) -> String {
    let header = ["figure", "native", "Bulkhead", "ratio", "target", "spread"];
    let rows: Vec<[String; 6]> = figures
        .iter()
        .map(|figure| {
            let value = |v: Option<f64>| v.map_or("-".to_owned(), |v| human(v, &figure.unit));
            [
                figure.name.clone(),
                value(figure.native.as_ref().and_then(|n| n.value())),
                value(figure.bulkhead.value()),
                figure
                    .ratio()
                    .map_or("-".to_owned(), |r| format!("{r:.2}x")),
                target_text(figure),
                spread_text(figure),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            // Names left-aligned, numbers right-aligned.
            if i == 0 || i >= 4 {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::figures::Side;
    use super::*;

    fn sample() -> FigureSet {
        let mut set = FigureSet::default();
        for (native, bulkhead) in [(21000.0, 30000.0), (23000.0, 31000.0)] {
            set.record("irq-latency-median", "ns", Side::Native, native, 2000);
            set.record("irq-latency-median", "ns", Side::Bulkhead, bulkhead, 2000);
        }
        set.record(
            "irq-injection-instructions",
            "instructions",
            Side::Bulkhead,
            974.0,
            200,
        );
        set
    }

    #[test]
    fn json_has_exactly_the_issue_schema() {
        let text = json(&sample());
        assert!(text.ends_with('\n'));
        let value: Value = serde_json::from_str(&text).unwrap();
        let list = value.as_array().unwrap();
        assert_eq!(list.len(), 2);
        for item in list {
            let mut keys: Vec<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                ["bulkhead", "name", "native", "ratio", "samples", "unit"]
            );
        }
        assert_eq!(list[0]["name"], "irq-latency-median");
        assert_eq!(list[0]["unit"], "ns");
        assert_eq!(list[0]["native"], 22000.0);
        assert_eq!(list[0]["bulkhead"], 30500.0);
        assert!((list[0]["ratio"].as_f64().unwrap() - 30500.0 / 22000.0).abs() < 1e-12);
        assert_eq!(list[0]["samples"], 4000);
        assert_eq!(list[1]["native"], Value::Null);
        assert_eq!(list[1]["ratio"], Value::Null);
        assert_eq!(list[1]["bulkhead"], 974.0);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(96.0, "ns"), "96 ns");
        assert_eq!(human(15_680.0, "ns"), "15.68 µs");
        assert_eq!(human(58_367_328.0, "ns"), "58.37 ms");
        assert_eq!(human(89.9, "ms"), "89.90 ms");
        assert_eq!(human(0.35, "ms"), "350.00 µs");
        assert_eq!(human(0.000112, "ms"), "112 ns");
        assert_eq!(human(2_690.0, "ms"), "2.69 s");
        assert_eq!(human(2.69, "s"), "2.69 s");
        assert_eq!(human(152_740.0, "bytes"), "152,740 B");
        assert_eq!(human(980.4, "instructions"), "980");
        assert_eq!(human(-1_234.0, "instructions"), "-1,234");
        assert_eq!(human(1.0, "furlongs"), "1 furlongs");
    }

    #[test]
    fn the_table() {
        let text = table(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("figure"), "{text}");
        assert!(lines[2].starts_with("irq-latency-median"), "{text}");
        assert!(lines[2].contains("22.00 µs"), "{text}");
        assert!(lines[2].contains("30.50 µs"), "{text}");
        assert!(lines[2].contains("1.39x"), "{text}");
        assert!(lines[2].contains("<= 2x met"), "{text}");
        // Spread: (23 - 21) / 22 = 9%, (31 - 30) / 30.5 = 3%.
        assert!(lines[2].ends_with("9% / 3%"), "{text}");
        assert!(lines[3].starts_with("irq-injection-instructions"), "{text}");
        assert!(lines[3].contains("974"), "{text}");
    }
}
