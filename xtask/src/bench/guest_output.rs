//! Reading the benchmark guest's console output: its result lines (the format is documented in
//! `partitions/bench/src/stats.rs`), with or without the `[partition] ` prefix the hypervisor's
//! console adds, among whatever else is printed.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

/// The tag every guest result line starts with.
const TAG: &str = "bench: ";

/// One measurement's result as the guest printed it (values in the guest's unit).
#[derive(Clone, Debug, PartialEq)]
pub enum Measured {
    /// A distribution: sample count and statistics.
    Distribution {
        unit: String,
        n: u64,
        min: f64,
        median: f64,
        p99: f64,
        mean: f64,
        max: f64,
    },
    /// A single value.
    Value { unit: String, value: f64 },
}

/// Everything one run of the guest reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GuestReport {
    /// Results by measurement name.
    pub results: BTreeMap<String, Measured>,
    /// `bench: info key=value` pairs.
    pub info: BTreeMap<String, String>,
    /// `bench: error <name>: <reason>` lines, as (name, reason).
    pub errors: Vec<(String, String)>,
    /// Whether `bench: done` was seen.
    pub done: bool,
}

/// One parsed guest line.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestLine {
    Result(String, Measured),
    Info(Vec<(String, String)>),
    Error(String, String),
    Waiting,
    Done,
}

/// The guest's part of a console line: the text after `bench: `, if the line is the guest's:
/// bare when it runs natively (`partition` is `None`), behind the console's `[<partition>] `
/// prefix in a partition. Trailing `\r` is ignored.
fn guest_text<'a>(line: &'a str, partition: Option<&str>) -> Option<&'a str> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = match partition {
        Some(name) => line
            .strip_prefix('[')?
            .strip_prefix(name)?
            .strip_prefix("] ")?,
        None => line,
    };
    rest.strip_prefix(TAG)
}

/// Parses one console line; `Ok(None)` for lines that are not the guest's (see [`guest_text`]),
/// an error for a guest line that does not follow the format.
pub fn parse_line(line: &str, partition: Option<&str>) -> Result<Option<GuestLine>> {
    let Some(text) = guest_text(line, partition) else {
        return Ok(None);
    };
    let text = text.trim();
    parse_guest_text(text).with_context(|| format!("bad benchmark guest line {text:?}"))
}

fn parse_guest_text(text: &str) -> Result<Option<GuestLine>> {
    if text == "done" {
        return Ok(Some(GuestLine::Done));
    }
    if text == "waiting for input" {
        return Ok(Some(GuestLine::Waiting));
    }
    if let Some(rest) = text.strip_prefix("error ") {
        let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
        return Ok(Some(GuestLine::Error(name.to_owned(), reason.to_owned())));
    }
    if let Some(rest) = text.strip_prefix("info ") {
        let pairs = rest
            .split_whitespace()
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        return Ok(Some(GuestLine::Info(pairs)));
    }
    let mut words = text.split_whitespace();
    let name = words.next().context("no measurement name")?;
    let mut fields = BTreeMap::new();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .with_context(|| format!("{word:?} is not key=value"))?;
        if fields.insert(key, value).is_some() {
            bail!("{key} given twice");
        }
    }
    let unit = fields.remove("unit").context("no unit=")?.to_owned();
    let single_value = fields.contains_key("value");
    let mut number = |key: &str| -> Result<f64> {
        let text = fields.remove(key).with_context(|| format!("no {key}="))?;
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .with_context(|| format!("{key}={text} is not a number"))
    };
    let measured = if single_value {
        Measured::Value {
            value: number("value")?,
            unit,
        }
    } else {
        let n = number("n")?;
        if n < 1.0 || n.fract() != 0.0 {
            bail!("n={n} is not a positive count");
        }
        Measured::Distribution {
            n: n as u64,
            min: number("min")?,
            median: number("median")?,
            p99: number("p99")?,
            mean: number("mean")?,
            max: number("max")?,
            unit,
        }
    };
    if let Some(extra) = fields.keys().next() {
        bail!("unknown field {extra}=");
    }
    Ok(Some(GuestLine::Result(name.to_owned(), measured)))
}

/// Collects the guest's lines from a run's console output (`partition` as for [`parse_line`]).
pub fn parse_output<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    partition: Option<&str>,
) -> Result<GuestReport> {
    let mut report = GuestReport::default();
    for line in lines {
        match parse_line(line, partition)? {
            None | Some(GuestLine::Waiting) => {}
            Some(GuestLine::Done) => report.done = true,
            Some(GuestLine::Info(pairs)) => report.info.extend(pairs),
            Some(GuestLine::Error(name, reason)) => report.errors.push((name, reason)),
            Some(GuestLine::Result(name, measured)) => {
                if report.results.insert(name.clone(), measured).is_some() {
                    bail!("the guest reported {name} twice");
                }
            }
        }
    }
    Ok(report)
}

impl GuestReport {
    /// Fails unless the run finished (`bench: done`) without errors and reported every one of
    /// `expected`.
    pub fn check_complete(&self, expected: &[&str]) -> Result<()> {
        if let Some((name, reason)) = self.errors.first() {
            bail!("the benchmark guest failed {name}: {reason}");
        }
        if !self.done {
            bail!("the benchmark guest did not finish (no \"bench: done\")");
        }
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|name| !self.results.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            bail!("the benchmark guest reported no {}", missing.join(", "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_and_value_lines() {
        let line = "[bench] bench: timer-poll unit=ns n=2000 min=14064 median=20240 p99=405696 \
                    mean=42848 max=4704944\r";
        assert_eq!(
            parse_line(line, Some("bench")).unwrap(),
            Some(GuestLine::Result(
                "timer-poll".into(),
                Measured::Distribution {
                    unit: "ns".into(),
                    n: 2000,
                    min: 14064.0,
                    median: 20240.0,
                    p99: 405696.0,
                    mean: 42848.0,
                    max: 4704944.0,
                }
            ))
        );
        assert_eq!(
            parse_line("bench: boot-first-line unit=ns value=3374240", None).unwrap(),
            Some(GuestLine::Result(
                "boot-first-line".into(),
                Measured::Value {
                    unit: "ns".into(),
                    value: 3374240.0
                }
            ))
        );
    }

    #[test]
    fn other_lines() {
        assert_eq!(
            parse_line("[bench] bench: done", Some("bench")).unwrap(),
            Some(GuestLine::Done)
        );
        assert_eq!(
            parse_line("bench: waiting for input\r\n", None).unwrap(),
            Some(GuestLine::Waiting)
        );
        assert_eq!(
            parse_line("bench: error ipi: the guest has only one vCPU", None).unwrap(),
            Some(GuestLine::Error(
                "ipi".into(),
                "the guest has only one vCPU".into()
            ))
        );
        assert_eq!(
            parse_line("bench: info partition=bench counter-hz=62500000", None).unwrap(),
            Some(GuestLine::Info(vec![
                ("partition".into(), "bench".into()),
                ("counter-hz".into(), "62500000".into())
            ]))
        );
        // Not the guest's.
        for (line, partition) in [
            (
                "[bulkhead] INFO  partition bench powered off",
                Some("bench"),
            ),
            ("[linux] bench: done", Some("bench")),
            ("[bench] bench: done", None),
            ("bench: done", Some("bench")),
            ("[linux] [    1.0] bench: not at the start", None),
            ("xbench: done", None),
            ("", None),
        ] {
            assert_eq!(parse_line(line, partition).unwrap(), None, "{line}");
        }
    }

    #[test]
    fn malformed_result_lines_are_errors() {
        for line in [
            "bench: timer-poll n=3 min=1 median=1 p99=1 mean=1 max=1",
            "bench: timer-poll unit=ns n=3 min=1 median=1 p99=1 mean=1",
            "bench: timer-poll unit=ns n=0 min=1 median=1 p99=1 mean=1 max=1",
            "bench: timer-poll unit=ns n=3 min=x median=1 p99=1 mean=1 max=1",
            "bench: boot unit=ns value=1 value=2",
            "bench: boot unit=ns value=1 colour=blue",
            "bench: boot unit=ns value",
            "bench: ",
        ] {
            let err = parse_line(line, None).unwrap_err();
            assert!(
                format!("{err:#}").contains("bad benchmark guest line"),
                "{line}"
            );
        }
    }

    #[test]
    fn a_whole_run() {
        let output = "\
[bulkhead] INFO  Bulkhead 0.1.0 starting at EL2 on CPU 0x0, 1 partition(s)
[bench] bench: info partition=bench vcpus=2 counter-hz=62500000
[bench] bench: boot-first-instruction unit=ns value=58367328
[bench] bench: hypercall unit=ns n=2000 min=1056 median=1120 p99=1168 mean=1136 max=34048
[bench] bench: info compute-checksum=0xa80f5e005a86700e
[bench] bench: done
[bulkhead] INFO  partition bench powered off
";
        let report = parse_output(output.lines(), Some("bench")).unwrap();
        assert!(report.done);
        assert_eq!(report.info["compute-checksum"], "0xa80f5e005a86700e");
        assert_eq!(report.info["vcpus"], "2");
        assert!(matches!(
            &report.results["hypercall"],
            Measured::Distribution { unit, n: 2000, .. } if unit == "ns"
        ));
        report
            .check_complete(&["boot-first-instruction", "hypercall"])
            .unwrap();
        let err = report.check_complete(&["hypercall", "ipi"]).unwrap_err();
        assert!(err.to_string().contains("reported no ipi"), "{err}");

        let failed = parse_output(
            "bench: error ipi: SGI not taken by vCPU 1 within a second\nbench: done".lines(),
            None,
        )
        .unwrap();
        let err = failed.check_complete(&[]).unwrap_err().to_string();
        assert!(err.contains("failed ipi: SGI not taken"), "{err}");
        let unfinished = parse_output("bench: boot unit=ns value=1".lines(), None).unwrap();
        assert!(unfinished.check_complete(&["boot"]).is_err());
        let twice = "bench: a unit=ns value=1\nbench: a unit=ns value=2";
        assert!(parse_output(twice.lines(), None).is_err());
    }
}
