//! Typed definitions of the system registers Bulkhead uses that `aarch64-cpu` does not define
//! (or defines read-only), in its style: a `tock-registers` bitfield module and a register value
//! of the same name, so they are used like `aarch64-cpu`'s (`ICC_CTLR_EL1.modify(...)`).
//!
//! Writes are not `nomem`: they change how the CPU handles interrupts and time, and the compiler
//! must not move memory accesses across them.

use core::arch::asm;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;

register_bitfields! {u64,
    /// `ICC_CTLR_EL1`: the physical GIC CPU interface's control register (at EL2, the
    /// Non-secure copy).
    pub ICC_CTLR_EL1 [
        /// End-of-interrupt mode: 1 makes `ICC_EOIR1_EL1` a priority drop only, deactivation
        /// being a separate write of `ICC_DIR_EL1`.
        EOIMODE OFFSET(1) NUMBITS(1) [],
    ],
    /// `CNTHP_TVAL_EL2`: the EL2 physical timer's countdown.
    pub CNTHP_TVAL_EL2 [
        /// Ticks until the timer fires (signed 32-bit).
        TIMERVALUE OFFSET(0) NUMBITS(32) [],
    ],
}

/// Defines a register value whose `get`/`set` are `mrs`/`msr` of `$encoding`.
macro_rules! system_register {
    ($(#[$doc:meta])* $name:ident, $ty:ident, $fields:ty, $encoding:literal, read) => {
        system_register!($(#[$doc])* $name, $ty, $fields, $encoding);
        impl Readable for $ty {
            type T = u64;
            type R = $fields;
            fn get(&self) -> u64 {
                let value;
                // SAFETY: reading this register has no side effects.
                unsafe { asm!(concat!("mrs {0}, ", $encoding), out(reg) value, options(nostack)) };
                value
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $ty:ident, $fields:ty, $encoding:literal) => {
        $(#[$doc])*
        pub struct $ty;
        #[allow(non_upper_case_globals)]
        pub const $name: $ty = $ty;
        impl Writeable for $ty {
            type T = u64;
            type R = $fields;
            fn set(&self, value: u64) {
                // SAFETY: the register only affects this CPU's interrupt, timer or ID view, as
                // documented at its definition; callers choose the value.
                unsafe { asm!(concat!("msr ", $encoding, ", {0}"), "isb", in(reg) value, options(nostack)) };
            }
        }
    };
}

system_register!(
    /// `ICC_CTLR_EL1` (`S3_0_C12_C12_4`).
    ICC_CTLR_EL1, IccCtlrEl1, ICC_CTLR_EL1::Register, "s3_0_c12_c12_4", read
);
system_register!(
    /// `ICC_DIR_EL1` (`S3_0_C12_C11_1`): writing an INTID deactivates that interrupt.
    ICC_DIR_EL1, IccDirEl1, (), "s3_0_c12_c11_1"
);
system_register!(
    /// `VPIDR_EL2`: the value a guest reads from `MIDR_EL1`.
    VPIDR_EL2, VpidrEl2, (), "vpidr_el2"
);
system_register!(
    /// `CNTHP_TVAL_EL2`: arms the EL2 physical timer relative to now.
    CNTHP_TVAL_EL2, CnthpTvalEl2, CNTHP_TVAL_EL2::Register, "cnthp_tval_el2"
);
