//! The figures a benchmark run produces: for each, its per-round values natively and in a
//! Bulkhead partition, the value reported (the median over rounds), the ratio, the run-to-run
//! spread, and the target where there is one.

use super::stats;

/// Which machine a value was measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The guest alone on QEMU, no hypervisor.
    Native,
    /// The guest in a Bulkhead partition.
    Bulkhead,
}

/// One side's values, one per round, and how many samples they rest on in total.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub values: Vec<f64>,
    pub samples: u64,
}

impl Series {
    /// The median over rounds.
    pub fn value(&self) -> Option<f64> {
        stats::median(&self.values)
    }
}

/// One figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Its name: contains `latency` for latencies, `p99` for tail figures, `boot` for boot times,
    /// `compute` for compute overhead.
    pub name: String,
    /// `ns`, `ms`, `s`, `bytes`, `instructions` or `x` (a ratio of two Bulkhead figures).
    pub unit: String,
    /// Without a native counterpart (footprint, instruction counts of the hypervisor's paths),
    /// `None`.
    pub native: Option<Series>,
    pub bulkhead: Series,
}

impl Figure {
    /// Bulkhead / native, where both exist and native is not 0.
    pub fn ratio(&self) -> Option<f64> {
        let native = self.native.as_ref()?.value()?;
        let bulkhead = self.bulkhead.value()?;
        (native != 0.0).then(|| bulkhead / native)
    }

    /// The target for this figure, if it has one.
    pub fn target(&self) -> Option<Target> {
        TARGETS
            .iter()
            .find(|(name, _)| *name == self.name)
            .map(|&(_, target)| target)
    }

    /// Whether the figure meets its target (`None` without a target or a value).
    pub fn meets_target(&self) -> Option<bool> {
        match self.target()? {
            Target::RatioAtMost(max) => Some(self.ratio()? <= max),
            Target::Below(limit) => Some(self.bulkhead.value()? < limit),
        }
    }
}

/// A goal for a figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Bulkhead / native must not exceed this.
    RatioAtMost(f64),
    /// The Bulkhead value must stay below this (in the figure's unit).
    Below(f64),
}

/// The targets the issue sets.
pub const TARGETS: &[(&str, Target)] = &[
    ("irq-latency-median", Target::RatioAtMost(2.0)),
    ("irq-latency-p99", Target::RatioAtMost(3.0)),
    ("compute-cpu-time", Target::RatioAtMost(1.01)),
    ("compute-memory-time", Target::RatioAtMost(1.01)),
    ("linux-boot", Target::RatioAtMost(1.15)),
    // A neighbour printing flat out: console write p99 within 2x of the quiet console's.
    ("console-flood-slowdown-p99", Target::Below(2.0)),
    // Bao's text + rodata + data for the same kind of board.
    ("footprint-text-rodata-data", Target::Below(94_208.0)),
];

/// The figures of a run, in the order they were first recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FigureSet {
    figures: Vec<Figure>,
}

impl FigureSet {
    /// Adds one round's `value` (resting on `samples` samples) to `side` of figure `name`,
    /// creating the figure (with `unit`) the first time.
    pub fn record(&mut self, name: &str, unit: &str, side: Side, value: f64, samples: u64) {
        let index = match self.figures.iter().position(|f| f.name == name) {
            Some(index) => index,
            None => {
                self.figures.push(Figure {
                    name: name.to_owned(),
                    unit: unit.to_owned(),
                    native: None,
                    bulkhead: Series::default(),
                });
                self.figures.len() - 1
            }
        };
        let figure = &mut self.figures[index];
        debug_assert_eq!(figure.unit, unit, "{name} recorded in two units");
        let series = match side {
            Side::Native => figure.native.get_or_insert_with(Series::default),
            Side::Bulkhead => &mut figure.bulkhead,
        };
        series.values.push(value);
        series.samples += samples;
    }

    /// Gives figure `name` the native series `native` (a copy of another figure's, for figures
    /// whose native counterpart is measured under another name).
    pub fn set_native(&mut self, name: &str, native: Series) {
        if let Some(figure) = self.figures.iter_mut().find(|f| f.name == name) {
            figure.native = Some(native);
        }
    }

    /// The figure called `name`.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Every figure, in recording order.
    pub fn iter(&self) -> impl Iterator<Item = &Figure> {
        self.figures.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_become_medians_and_ratios() {
        let mut set = FigureSet::default();
        for (native, bulkhead) in [(20.0, 30.0), (22.0, 35.0), (21.0, 40.0)] {
            set.record("irq-latency-median", "ns", Side::Native, native, 2000);
            set.record("irq-latency-median", "ns", Side::Bulkhead, bulkhead, 2000);
        }
        set.record("footprint-text", "bytes", Side::Bulkhead, 1000.0, 1);
        let figure = set.get("irq-latency-median").unwrap();
        assert_eq!(figure.native.as_ref().unwrap().value(), Some(21.0));
        assert_eq!(figure.bulkhead.value(), Some(35.0));
        assert_eq!(figure.bulkhead.samples, 6000);
        assert_eq!(figure.bulkhead.values, [30.0, 35.0, 40.0]);
        assert_eq!(figure.ratio(), Some(35.0 / 21.0));
        assert_eq!(figure.meets_target(), Some(true));
        let footprint = set.get("footprint-text").unwrap();
        assert_eq!(footprint.ratio(), None);
        assert_eq!(footprint.meets_target(), None);
        let names: Vec<&str> = set.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["irq-latency-median", "footprint-text"]);
    }

    #[test]
    fn targets() {
        let mut set = FigureSet::default();
        set.record("irq-latency-p99", "ns", Side::Native, 10.0, 1);
        set.record("irq-latency-p99", "ns", Side::Bulkhead, 31.0, 1);
        set.record(
            "footprint-text-rodata-data",
            "bytes",
            Side::Bulkhead,
            152_740.0,
            1,
        );
        assert_eq!(
            set.get("irq-latency-p99").unwrap().meets_target(),
            Some(false)
        );
        assert_eq!(
            set.get("footprint-text-rodata-data")
                .unwrap()
                .meets_target(),
            Some(false)
        );
        // A native counterpart borrowed from another figure.
        set.record(
            "irq-latency-interference-p99",
            "ns",
            Side::Bulkhead,
            50.0,
            1,
        );
        let native = set.get("irq-latency-p99").unwrap().native.clone().unwrap();
        set.set_native("irq-latency-interference-p99", native);
        assert_eq!(
            set.get("irq-latency-interference-p99").unwrap().ratio(),
            Some(5.0)
        );
    }
}
