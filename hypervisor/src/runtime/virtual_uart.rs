//! A partition's virtual PL011 wired up: guest accesses to the register model
//! (`crate::vuart`), transmitted bytes to the console, typed bytes from the console into its
//! receive FIFO, and its interrupt line to the partition's virtual GIC.
//!
//! The model holds typed-ahead input back until the guest shows it reads input (see
//! `VirtualPl011::open_rx`); deciding when that is needs the virtual GIC's state, which is why
//! that decision lives here and not in the model.

use bulkhead_config::PartitionId;

use super::hw::Hw;
use super::partition::{Partition, State};
use super::System;
use crate::mmio::MmioError;
use crate::vuart::VirtualPl011;

/// How long after it starts the focused partition's unfinished line (a prompt) is shown.
pub(super) const PARTIAL_LINE_DELAY_MS: u64 = 20;

impl<H: Hw> System<H> {
    /// Emulates an access to `p`'s virtual UART at `offset`: the value for a read.
    pub(super) fn vuart_access(
        &self,
        p: &Partition,
        offset: u64,
        size: u8,
        write: Option<u64>,
    ) -> Result<Option<u64>, MmioError> {
        let mut vuart = p.vuart.lock();
        self.prepare_vuart_access(p, &mut vuart);
        let result = match write {
            Some(value) => vuart
                .write(offset, size, value, &mut |byte| {
                    if self.hw.console_output(p.id, byte) {
                        self.hw.arm_timer_ms(PARTIAL_LINE_DELAY_MS);
                    }
                })
                .map(|()| None),
            None => vuart.read(offset, size).map(Some),
        };
        self.show_uart(p, &vuart);
        let line_high = vuart.interrupt_pending();
        drop(vuart);
        if line_high {
            self.vuart_line_high(p, false);
        }
        result
    }

    /// Prepares the virtual UART for a guest access: tells it whether the guest polls (its
    /// distributor is off, or it has `direct-interrupts`) and opens its receiver if the guest is handling the UART's interrupt
    /// on this core right now.
    fn prepare_vuart_access(&self, p: &Partition, vuart: &mut VirtualPl011) {
        // Nothing to decide while nothing is held back (the common case: console output).
        if vuart.rx_is_open() || !vuart.has_held_input() {
            return;
        }
        let Some(intid) = p.vgic.vuart_intid else {
            vuart.open_rx();
            return;
        };
        // A `direct-interrupts` partition never gets the UART's (virtual) interrupt: it polls.
        vuart.set_polled(p.config.direct_interrupts || !p.vgic.dist.lock().group1_enabled());
        if self.handling(intid) {
            log::trace!("partition {}: virtual UART receiver opened", p.name);
            vuart.open_rx();
        }
    }

    /// Keeps `p`'s shadow page in step with its virtual UART (`vuart`, locked by the caller),
    /// and shows it to the guest when reading the UART has no effect (see `uart_shadow`).
    pub(super) fn show_uart(&self, p: &Partition, vuart: &VirtualPl011) {
        let Some(shadow) = &p.uart_shadow else { return };
        shadow.update(vuart);
        if vuart.is_quiet() && !shadow.shown() {
            let entry = shadow.entry();
            self.hw
                .set_stage2_entry(p.stage2.vttbr_value(p.vmid), entry, entry.valid);
            shadow.set_shown(true);
        }
    }

    /// Bytes typed on the console for partition `partition`.
    pub(super) fn console_input(&self, partition: PartitionId, byte: u8) {
        let Some(p) = self.partitions.get(partition.index()) else {
            return;
        };
        let mut vuart = p.vuart.lock();
        // The guest must see the byte by trapping its reads: no more shadow page.
        if let Some(shadow) = p.uart_shadow.as_ref().filter(|s| s.shown()) {
            let entry = shadow.entry();
            self.hw
                .set_stage2_entry(p.stage2.vttbr_value(p.vmid), entry, entry.invalid());
            shadow.set_shown(false);
        }
        let pushed = vuart.push_input(byte);
        if let Some(shadow) = &p.uart_shadow {
            shadow.update(&vuart);
        }
        drop(vuart);
        if pushed {
            self.vuart_level_changed(p, true);
        } else {
            log::warn!(
                "partition {}: console input buffer full, byte dropped",
                p.name
            );
        }
    }

    /// Re-evaluates the virtual UART's interrupt line. `new_data` is set when input just
    /// arrived: then the interrupt is raised even if the guest is still handling the previous
    /// one.
    pub(super) fn vuart_level_changed(&self, p: &Partition, new_data: bool) {
        if p.vuart.lock().interrupt_pending() {
            self.vuart_line_high(p, new_data);
        }
    }

    /// The virtual UART's interrupt line is high: injects its interrupt where the guest routes
    /// it, if the guest enabled it and it is not already on its way (unless `new_data`).
    fn vuart_line_high(&self, p: &Partition, new_data: bool) {
        let Some(intid) = p.vgic.vuart_intid else {
            return;
        };
        if p.state() != State::Running {
            return;
        }
        let enabled = {
            let dist = p.vgic.dist.lock();
            dist.group1_enabled() && dist.is_enabled(intid)
        };
        if !enabled {
            return;
        }
        let (target, priority) = p.vgic.spi_target(intid);
        log::trace!(
            "partition {}: virtual UART interrupt line high (new data: {new_data})",
            p.name
        );
        if new_data || !self.in_flight(p, target, intid) {
            self.inject_virtual(p, target, intid, priority);
        }
    }
}
