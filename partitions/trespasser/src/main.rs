//! `trespasser`: a Bulkhead test guest that deliberately writes outside its partition's memory.
//!
//! It writes a 32-bit word to `target=0x...` (boot argument) or, by default, to the first address
//! past the end of its last memory region plus 0x1000. The hypervisor's stage-2 translation must
//! stop that write, so the line after it — reporting that isolation is broken — must never be
//! printed. The runtime's exception vectors report an abort should the hypervisor inject one.
//!
//! With `foreign-spi=N` it first probes interrupts ([`interrupts`]): a partition with
//! `direct-interrupts` must take its own and nobody else's, SPI `N` of another partition
//! included.
//!
//! On a host target this compiles to an empty stub, so the workspace builds everywhere.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod interrupts;

#[cfg(target_os = "none")]
mod guest {
    //! The guest program proper (bare-metal target only).

    use bulkhead_guest_rt::{parse_u64, power_off, println, GuestDt};

    /// Distance past the end of the last memory region of the default target.
    const DEFAULT_OFFSET: u64 = 0x1000;
    /// The value written, recognisable in a memory dump.
    const MARKER: u32 = 0xdead_beef;

    bulkhead_guest_rt::entry!(main);

    fn main(dt: GuestDt) -> ! {
        let name = dt.partition_name();
        println!("trespasser: running in partition {name}");
        match dt
            .bootarg("foreign-spi")
            .map(|text| (text, parse_u64(text)))
        {
            Some((_, Some(spi))) => crate::interrupts::probe(spi as u32),
            Some((text, None)) => println!("trespasser: bad foreign-spi={text}"),
            None => {}
        }

        let target = match dt.bootarg("target").map(|text| (text, parse_u64(text))) {
            Some((_, Some(addr))) => addr,
            Some((text, None)) => {
                println!("trespasser: bad target={text}");
                power_off()
            }
            None => match dt.memory_regions().last() {
                Some(last) => last.end() + DEFAULT_OFFSET,
                None => {
                    println!("trespasser: no memory regions in the device tree");
                    power_off()
                }
            },
        };
        if target % 4 != 0 || dt.memory_regions().any(|range| range.contains(target)) {
            println!("trespasser: {target:#x} is not an aligned address outside my memory");
            power_off()
        }

        println!("trespasser: writing to {target:#x} outside my memory");
        // SAFETY: this is deliberately unsound from the guest's point of view: `target` is
        // outside every memory region the DT gives this partition, and the point of the test is
        // that the hypervisor's stage-2 translation faults on it. Nothing in this guest aliases
        // that address, and the 4-byte alignment was checked above.
        unsafe { core::ptr::write_volatile(target as usize as *mut u32, MARKER) };
        // Make sure the write has completed (or faulted) before reporting anything.
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);

        println!("trespasser: write went through, isolation is broken");
        power_off()
    }
}

/// Host stub: the guest only runs on `aarch64-unknown-none`.
#[cfg(not(target_os = "none"))]
fn main() {}
