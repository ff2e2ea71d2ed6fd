//! Calls to the platform firmware's PSCI, through the conduit the platform device tree names.

use bulkhead_config::PsciConduit;
use smccc::{Hvc, Smc};

/// Starts physical CPU `mpidr` at `entry` with `context` in x0.
pub fn cpu_on(
    conduit: PsciConduit,
    mpidr: u64,
    entry: u64,
    context: u64,
) -> Result<(), smccc::psci::Error> {
    match conduit {
        PsciConduit::Smc => smccc::psci::cpu_on::<Smc>(mpidr, entry, context),
        PsciConduit::Hvc => smccc::psci::cpu_on::<Hvc>(mpidr, entry, context),
    }
}

/// Powers the machine off. Returns only if the firmware refused.
pub fn system_off(conduit: PsciConduit) -> smccc::psci::Error {
    let result = match conduit {
        PsciConduit::Smc => smccc::psci::system_off::<Smc>(),
        PsciConduit::Hvc => smccc::psci::system_off::<Hvc>(),
    };
    match result {
        Ok(()) => smccc::psci::Error::NotSupported,
        Err(e) => e,
    }
}
