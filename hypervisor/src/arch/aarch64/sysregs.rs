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
        /// Priority bits implemented, minus one (read-only): with more than 5, more than one
        /// active-priorities register per group exists.
        PRIBITS OFFSET(8) NUMBITS(3) [],
    ],
    /// `ICC_SGI1R_EL1`: sends a Group 1 SGI.
    pub ICC_SGI1R_EL1 [
        AFF3 OFFSET(48) NUMBITS(8) [],
        /// Range selector: the target list names Aff0 values `RS * 16 ..= RS * 16 + 15`.
        RS OFFSET(44) NUMBITS(4) [],
        AFF2 OFFSET(32) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        AFF1 OFFSET(16) NUMBITS(8) [],
        TARGET_LIST OFFSET(0) NUMBITS(16) [],
    ],
    /// `CTR_EL0`: cache type.
    pub CTR_EL0 [
        /// Log2 of the number of words in the smallest data cache line.
        DMINLINE OFFSET(16) NUMBITS(4) [],
    ],
    /// `DCZID_EL0`: `DC ZVA` block size.
    pub DCZID_EL0 [
        /// `DC ZVA` is prohibited.
        DZP OFFSET(4) NUMBITS(1) [],
        /// Log2 of the block size in words.
        BS OFFSET(0) NUMBITS(4) [],
    ],
    /// `CNTHP_TVAL_EL2`: the EL2 physical timer's countdown.
    pub CNTHP_TVAL_EL2 [
        /// Ticks until the timer fires (signed 32-bit).
        TIMERVALUE OFFSET(0) NUMBITS(32) [],
    ],
}

/// Defines a write-only register value whose `set` is an `msr` of `$encoding`.
macro_rules! write_register {
    ($(#[$doc:meta])* $name:ident, $ty:ident, $fields:ty, $encoding:literal) => {
        $(#[$doc])*
        pub struct $ty;
        #[allow(non_upper_case_globals)]
        pub const $name: $ty = $ty;
        impl Writeable for $ty {
            type T = u64;
            type R = $fields;
            fn set(&self, value: u64) {
                // SAFETY: the register only affects this CPU's interrupt, timer, trap or
                // guest-facing configuration, as documented at its definition; callers choose
                // the value.
                unsafe { asm!(concat!("msr ", $encoding, ", {0}"), "isb", in(reg) value, options(nostack)) };
            }
        }
    };
}

/// Adds an `mrs` of `$encoding` as `get` to register type `$ty`.
macro_rules! readable {
    ($ty:ident, $fields:ty, $encoding:literal) => {
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
}

/// Defines a read-only register value whose `get` is an `mrs` of `$encoding`.
macro_rules! read_register {
    ($(#[$doc:meta])* $name:ident, $ty:ident, $encoding:literal) => {
        $(#[$doc])*
        pub struct $ty;
        #[allow(non_upper_case_globals)]
        pub const $name: $ty = $ty;
        readable!($ty, (), $encoding);
    };
}

write_register!(
    /// `ICC_CTLR_EL1` (`S3_0_C12_C12_4`).
    ICC_CTLR_EL1, IccCtlrEl1, ICC_CTLR_EL1::Register, "s3_0_c12_c12_4"
);
readable!(IccCtlrEl1, ICC_CTLR_EL1::Register, "s3_0_c12_c12_4");
write_register!(
    /// `ICC_AP1R0_EL1` (`S3_0_C12_C9_0`): Group 1 active priorities, levels 0-31.
    ICC_AP1R0_EL1, IccAp1r0El1, (), "s3_0_c12_c9_0"
);
write_register!(
    /// `ICC_AP1R1_EL1` (`S3_0_C12_C9_1`): levels 32-63, with 6 or more priority bits.
    ICC_AP1R1_EL1, IccAp1r1El1, (), "s3_0_c12_c9_1"
);
write_register!(
    /// `ICC_AP1R2_EL1` (`S3_0_C12_C9_2`): levels 64-95, with 7 or more priority bits.
    ICC_AP1R2_EL1, IccAp1r2El1, (), "s3_0_c12_c9_2"
);
write_register!(
    /// `ICC_AP1R3_EL1` (`S3_0_C12_C9_3`): levels 96-127, with 7 or more priority bits.
    ICC_AP1R3_EL1, IccAp1r3El1, (), "s3_0_c12_c9_3"
);
write_register!(
    /// `ICC_DIR_EL1` (`S3_0_C12_C11_1`): writing an INTID deactivates that interrupt.
    ICC_DIR_EL1, IccDirEl1, (), "s3_0_c12_c11_1"
);
write_register!(
    /// `ICC_SGI1R_EL1` (`S3_0_C12_C11_5`): generates a Group 1 SGI.
    ICC_SGI1R_EL1, IccSgi1rEl1, ICC_SGI1R_EL1::Register, "s3_0_c12_c11_5"
);
write_register!(
    /// `VPIDR_EL2`: the value a guest reads from `MIDR_EL1`.
    VPIDR_EL2, VpidrEl2, (), "vpidr_el2"
);
write_register!(
    /// `CNTHP_TVAL_EL2`: arms the EL2 physical timer relative to now.
    CNTHP_TVAL_EL2, CnthpTvalEl2, CNTHP_TVAL_EL2::Register, "cnthp_tval_el2"
);
write_register!(
    /// `ZCR_EL2` (`S3_4_C1_C2_0`, FEAT_SVE): the guest's largest SVE vector length.
    ZCR_EL2, ZcrEl2, (), "s3_4_c1_c2_0"
);
write_register!(
    /// `SMCR_EL2` (`S3_4_C1_C2_6`, FEAT_SME): the guest's largest streaming vector length,
    /// FA64 and ZT0.
    SMCR_EL2, SmcrEl2, (), "s3_4_c1_c2_6"
);
write_register!(
    /// `HCRX_EL2` (`S3_4_C1_C2_2`, FEAT_HCX): extended hypervisor configuration.
    HCRX_EL2, HcrxEl2, (), "s3_4_c1_c2_2"
);
write_register!(
    /// `PMCR_EL0`: resets the core's PMU for a starting vCPU.
    PMCR_EL0, PmcrEl0, (), "pmcr_el0"
);
readable!(PmcrEl0, (), "pmcr_el0");
write_register!(
    /// `PMCNTENCLR_EL0`: disables PMU counters.
    PMCNTENCLR_EL0, PmcntenclrEl0, (), "pmcntenclr_el0"
);
write_register!(
    /// `PMINTENCLR_EL1`: disables PMU overflow interrupts.
    PMINTENCLR_EL1, PmintenclrEl1, (), "pmintenclr_el1"
);
write_register!(
    /// `PMOVSCLR_EL0`: clears PMU overflow flags.
    PMOVSCLR_EL0, PmovsclrEl0, (), "pmovsclr_el0"
);
/// `CTR_EL0`.
pub struct CtrEl0;
#[allow(non_upper_case_globals)]
pub const CTR_EL0: CtrEl0 = CtrEl0;
readable!(CtrEl0, CTR_EL0::Register, "ctr_el0");
/// `DCZID_EL0`.
pub struct DczidEl0;
#[allow(non_upper_case_globals)]
pub const DCZID_EL0: DczidEl0 = DczidEl0;
readable!(DczidEl0, DCZID_EL0::Register, "dczid_el0");
read_register!(
    /// `ICH_ELRSR_EL2` (`S3_4_C12_C11_5`): bit n set when list register n holds no interrupt.
    ICH_ELRSR_EL2, IchElrsrEl2, "s3_4_c12_c11_5"
);
read_register!(
    /// `ID_AA64ISAR2_EL1` (`S3_0_C0_C6_2`; reads as zero where not implemented).
    ID_AA64ISAR2_EL1, IdAa64Isar2El1, "s3_0_c0_c6_2"
);
read_register!(
    /// `ID_AA64MMFR3_EL1` (`S3_0_C0_C7_3`; reads as zero where not implemented).
    ID_AA64MMFR3_EL1, IdAa64Mmfr3El1, "s3_0_c0_c7_3"
);
read_register!(
    /// `ID_AA64SMFR0_EL1` (`S3_0_C0_C4_5`; reads as zero where not implemented).
    ID_AA64SMFR0_EL1, IdAa64Smfr0El1, "s3_0_c0_c4_5"
);
