//! Validation of a partition's monitor window (`monitor-window`, reported at the partition
//! node): only with the `monitor` capability; page-aligned, below the IPA limit, clear of the
//! partition's memory, virtual UART, virtual GIC and devices. Its doorbell GPIO and channel
//! windows are checked against it with the other fixed windows ([`super::channels`]).

use super::channels::{device_windows, window_placement};
use super::Result;
use crate::addr::GuestRange;
use crate::error::{ConfigError, ErrorKind};
use crate::model::{BoardConfig, Partition};
use crate::monitor::WINDOW_SIZE;

/// The monitor window of `p`, if it has one.
pub(super) fn window(c: &BoardConfig, p: &Partition) -> Result {
    let Some(base) = p.monitor_window else {
        return Ok(());
    };
    let fail = |kind| Err(ConfigError::boxed(p.path.as_str(), kind));
    if !p.monitor {
        return fail(ErrorKind::MonitorWindowWithoutMonitor);
    }
    let window = GuestRange::new(base, WINDOW_SIZE);
    match window_placement("monitor-window", window, p, &device_windows(c, p)) {
        Some(kind) => fail(kind),
        None => Ok(()),
    }
}
