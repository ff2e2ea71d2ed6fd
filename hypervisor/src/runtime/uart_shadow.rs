//! The virtual UART's shadow page: while reading the UART has no effect (nothing received or
//! held back, see `VirtualPl011::is_quiet`), the partition's stage 2 maps a read-only page of
//! its register values at the UART's address, so a guest polling the flag register before
//! each character does not trap; only writes do (stage-2 permission faults, emulated as
//! before), and each one updates the page. When input arrives the page is switched off first,
//! and every access traps again until the UART is quiet once more.
//!
//! Console output thus costs one exit per character instead of two or three (Linux's
//! drivers read `UARTFR` before each write, and its early console again after it).

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bulkhead_config::guest_view::VUART_SIZE;
use bulkhead_config::{GuestPhysAddr, HostPhysAddr};

use crate::stage2::{MapError, Stage2Entry, Stage2Tables};
use crate::vuart::VirtualPl011;

/// One page of register values, as the guest reads them.
#[repr(C, align(4096))]
struct ShadowPage([AtomicU32; (VUART_SIZE / 4) as usize]);

/// A partition's shadow of its virtual UART.
pub struct UartShadow {
    page: Box<ShadowPage>,
    entry: Stage2Entry,
    /// Whether the guest reads the page (the stage-2 entry is valid). Changed under the
    /// virtual UART's lock only.
    shown: AtomicBool,
}

impl UartShadow {
    /// Maps a page showing `uart`'s registers read-only at `ipa` in `stage2` (shown from the
    /// start: a new UART is quiet).
    pub fn new(
        stage2: &mut Stage2Tables,
        ipa: GuestPhysAddr,
        uart: &VirtualPl011,
    ) -> Result<Self, MapError> {
        let page = Box::new(ShadowPage(
            [const { AtomicU32::new(0) }; (VUART_SIZE / 4) as usize],
        ));
        let pa = HostPhysAddr(core::ptr::from_ref::<ShadowPage>(&page) as u64);
        let entry = stage2.map_switchable(ipa, pa)?;
        let shadow = Self {
            page,
            entry,
            shown: AtomicBool::new(true),
        };
        shadow.update(uart);
        Ok(shadow)
    }

    /// Writes `uart`'s register values into the page.
    pub fn update(&self, uart: &VirtualPl011) {
        for (offset, value) in uart.registers() {
            if let Some(word) = self.page.0.get((offset / 4) as usize) {
                word.store(value, Ordering::Relaxed);
            }
        }
    }

    /// The stage-2 entry that shows the page.
    pub fn entry(&self) -> &Stage2Entry {
        &self.entry
    }

    /// Whether the guest reads the page now.
    pub fn shown(&self) -> bool {
        self.shown.load(Ordering::Relaxed)
    }

    /// Records whether the guest reads the page (the caller switched the entry).
    pub fn set_shown(&self, shown: bool) {
        self.shown.store(shown, Ordering::Relaxed);
    }

    /// The value the guest reads at word `index` of the page.
    #[cfg(test)]
    pub fn word(&self, index: usize) -> u32 {
        self.page.0[index].load(Ordering::Relaxed)
    }
}
