//! Starting the other CPUs a partition owns, each the way its `/cpus` node says: PSCI `CPU_ON`
//! through the platform firmware, or its spin table (a Raspberry Pi 4's), where the core waits
//! with its caches off for an entry address: written there, cleaned to the point of coherency,
//! then `sev`. A core released from a spin table gets no argument; it finds out which CPU it is
//! from its MPIDR ([`entry::CPU_MPIDRS`], filled and cleaned here first).

use core::arch::asm;

use bulkhead_config::{BoardConfig, EnableMethod, HostRange};

use super::{cache, entry, firmware};

/// Why a CPU did not start.
#[derive(Debug)]
pub enum StartError {
    /// The firmware refused `CPU_ON`.
    Psci(smccc::psci::Error),
    /// PSCI, but the platform has no PSCI firmware (validation refuses that; kept for models not
    /// checked).
    NoFirmware,
    /// Its node names no `enable-method`.
    NoEnableMethod,
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Psci(e) => write!(f, "the firmware refused CPU_ON ({e:?})"),
            StartError::NoFirmware => f.write_str("PSCI, but the platform has no PSCI firmware"),
            StartError::NoEnableMethod => f.write_str("its /cpus node names no enable-method"),
        }
    }
}

/// The pages of the spin tables of `config`'s CPUs, which EL2 must map to release them.
pub fn spin_table_pages(config: &BoardConfig) -> impl Iterator<Item = HostRange> + '_ {
    config
        .platform
        .cpus
        .iter()
        .filter_map(|c| match c.enable_method {
            Some(EnableMethod::SpinTable { release_addr }) => Some(HostRange::new(release_addr, 8)),
            _ => None,
        })
}

/// Publishes every CPU's MPIDR for cores a spin table releases (they read it with the MMU and
/// caches off). Called once, by the primary CPU, before starting any.
pub fn publish_mpidrs(config: &BoardConfig) {
    // SAFETY: boot is single-threaded here: no other CPU runs yet, and those that will read the
    // table only once released, after it was cleaned to the point of coherency below.
    let table = unsafe { &mut *core::ptr::addr_of_mut!(entry::CPU_MPIDRS) };
    for (slot, c) in table.0.iter_mut().zip(&config.platform.cpus) {
        *slot = c.mpidr;
    }
    let addr = core::ptr::addr_of!(entry::CPU_MPIDRS) as u64;
    cache::clean_to_poc(HostRange::new(
        bulkhead_config::HostPhysAddr(addr),
        core::mem::size_of::<entry::CpuMpidrs>() as u64,
    ));
}

/// Starts CPU `n` of `config` (not this one) at the hypervisor's secondary entry.
pub fn start(config: &BoardConfig, n: usize) -> Result<(), StartError> {
    let c = &config.platform.cpus[n];
    match c.enable_method {
        Some(EnableMethod::Psci) => {
            let conduit = config.platform.psci.ok_or(StartError::NoFirmware)?;
            firmware::cpu_on(conduit, c.mpidr, entry::secondary_entry_address(), n as u64)
                .map_err(StartError::Psci)
        }
        Some(EnableMethod::SpinTable { release_addr }) => {
            let addr = release_addr.raw() as usize;
            // SAFETY: the release address is the spin table the platform names for this core
            // (validation keeps it out of every partition's and the hypervisor's memory); boot
            // maps its page as device memory. The core only reads it.
            unsafe {
                core::ptr::write_volatile(addr as *mut u64, entry::spin_table_entry_address())
            };
            // SAFETY: cache maintenance of the word just written, then a barrier and an event:
            // the waiting core, caches off, sees the address and wakes up.
            unsafe { asm!("dc civac, {0}", "dsb sy", "sev", in(reg) addr, options(nostack)) };
            Ok(())
        }
        None => Err(StartError::NoEnableMethod),
    }
}
