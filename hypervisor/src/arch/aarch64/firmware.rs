//! Calls to the platform firmware's PSCI, through the conduit the platform device tree names.

use bulkhead_config::PsciConduit;
use smccc::{Call, Hvc, Smc};

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

/// Makes the SMC32 (or HVC32) call `function` with one argument; returns x0.
pub fn call32(conduit: PsciConduit, function: u32, arg: u64) -> u64 {
    let args = [arg as u32, 0, 0, 0, 0, 0, 0];
    let result = match conduit {
        PsciConduit::Smc => Smc::call32(function, args),
        PsciConduit::Hvc => Hvc::call32(function, args),
    };
    // A negative 32-bit status, sign-extended as SMCCC returns it in x0.
    result[0] as i32 as i64 as u64
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
