//! One guest exit, decoded once: the arch code reads the syndrome registers (`ESR_EL2`,
//! `FAR_EL2`, `HPFAR_EL2`), calls [`Exit::decode`] and hands the result to the runtime, which
//! works only with these typed values.
//!
//! - A data abort becomes a [`GuestAccess`]: the guest-physical address (when the hardware
//!   reported one), the direction, the fault kind, the instruction length and, when the
//!   instruction syndrome is valid, an [`AccessSyndrome`] (size, register, sign extension,
//!   register width) that is enough to emulate the access.
//! - A trapped `MSR`/`MRS` becomes a [`SysRegTrap`] naming the register ([`SysReg`]).
//! - Everything the hypervisor does not handle keeps its raw syndrome for the report.
//!
//! Pure bit manipulation on top of [`crate::esr`]: nothing a guest can provoke panics here.

#![forbid(unsafe_code)]

use core::fmt;

use bulkhead_config::GuestPhysAddr;

use crate::esr::{
    describe_fault_status, fault_ipa, instruction_length, DataAbort, ExceptionClass,
    ExceptionReport, SysRegAccess,
};

/// Why a guest left to the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `HVC` from AArch64; the return address is already past it.
    Hvc,
    /// `SMC` from AArch64, trapped (`HCR_EL2.TSC`): the return address is the `SMC` itself, so
    /// the handler steps over `insn_len` bytes.
    Smc { insn_len: u64 },
    /// A stage-2 data abort.
    DataAbort(GuestAccess),
    /// A trapped system-register access.
    SysReg(SysRegTrap),
    /// A physical interrupt (the guest runs with `HCR_EL2.IMO`, so every one leaves it).
    Irq,
    /// Anything else (undefined instruction, instruction abort, SError, FIQ, ...): the partition
    /// cannot be served.
    Unhandled(Unhandled),
}

impl Exit {
    /// Decodes a synchronous exception from a guest from its syndrome registers.
    pub fn decode(esr: u64, far: u64, hpfar: u64) -> Self {
        match ExceptionClass::from_esr(esr) {
            ExceptionClass::Hvc64 => Exit::Hvc,
            ExceptionClass::Smc64 => Exit::Smc {
                insn_len: instruction_length(esr),
            },
            ExceptionClass::DataAbortLower => Exit::DataAbort(GuestAccess::decode(esr, far, hpfar)),
            ExceptionClass::SysReg64 => Exit::SysReg(SysRegTrap::decode(esr)),
            _ => Exit::Unhandled(Unhandled { esr, far }),
        }
    }
}

/// An exception the hypervisor does not serve, with what a report needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unhandled {
    pub esr: u64,
    pub far: u64,
}

impl Unhandled {
    /// A one-line description, with the guest's PC `elr`.
    pub fn report(&self, elr: u64) -> ExceptionReport {
        ExceptionReport {
            esr: self.esr,
            elr,
            far: self.far,
        }
    }
}

/// What kind of stage-2 fault a data abort was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing is mapped at the address: emulated MMIO, or an access outside the partition.
    Translation,
    /// Mapped, but not with this access right (a write to read-only memory).
    Permission,
    /// Anything else (external abort, alignment, access flag, ...): never emulated.
    Other,
}

/// The instruction syndrome of a data abort: enough to emulate the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessSyndrome {
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// The general-purpose register transferred (31 = `xzr`/`wzr`).
    pub reg: u8,
    /// A load whose value is sign-extended to the register width.
    pub sign_extend: bool,
    /// The register is 64-bit (`x`), not 32-bit (`w`).
    pub sixty_four: bool,
}

impl AccessSyndrome {
    /// The register value a load of `value` (the `size` bytes read, zero-extended) produces:
    /// sign-extended if the instruction says so, then cut to 32 bits for a `w` register.
    pub fn load_value(&self, value: u64) -> u64 {
        let bits = u32::from(self.size) * 8;
        let value = if bits < 64 {
            value & ((1 << bits) - 1)
        } else {
            value
        };
        let extended = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((value << shift) as i64) >> shift) as u64
        } else {
            value
        };
        if self.sixty_four {
            extended
        } else {
            extended & 0xffff_ffff
        }
    }
}

/// A guest's memory access that faulted at stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestAccess {
    /// The faulting guest-physical address, if the hardware reported it: `HPFAR_EL2` is valid
    /// only for translation, access-flag, permission and address-size faults, and the offset in
    /// the page only when `FAR_EL2` is valid.
    pub ipa: Option<GuestPhysAddr>,
    /// A write (else a read).
    pub write: bool,
    pub kind: FaultKind,
    /// The data fault status code, for reports.
    pub status: u8,
    /// How to emulate the access; `None` when the instruction syndrome is not valid (load/store
    /// pair, writeback, SIMD, ...), which cannot be emulated.
    pub syndrome: Option<AccessSyndrome>,
    /// Length of the faulting instruction: added to the PC once it is emulated.
    pub insn_len: u64,
}

/// `ESR_EL2.ISS.FnV`: `FAR_EL2` is not valid.
const ISS_FNV: u64 = 1 << 10;

impl GuestAccess {
    /// Decodes a data abort's syndrome and fault address registers.
    pub fn decode(esr: u64, far: u64, hpfar: u64) -> Self {
        let abort = DataAbort::decode(esr);
        let kind = if abort.is_translation_fault() {
            FaultKind::Translation
        } else if abort.is_permission_fault() {
            FaultKind::Permission
        } else {
            FaultKind::Other
        };
        // Translation, access flag and permission faults (0x04..=0x0f) and address size faults
        // (0x00..=0x03) report the IPA in HPFAR_EL2.
        let hpfar_valid = abort.fault_level().is_some();
        let ipa = (hpfar_valid && esr & ISS_FNV == 0).then(|| GuestPhysAddr(fault_ipa(hpfar, far)));
        let syndrome = abort.valid.then_some(AccessSyndrome {
            size: abort.size,
            reg: abort.reg,
            sign_extend: abort.sign_extend,
            sixty_four: abort.sixty_four,
        });
        Self {
            ipa,
            write: abort.write,
            kind,
            status: abort.fault_status,
            syndrome,
            insn_len: instruction_length(esr),
        }
    }

    /// The address and syndrome of an access the hypervisor may emulate: a translation or
    /// permission fault at a known address, with a valid instruction syndrome.
    pub fn emulable(&self) -> Option<(GuestPhysAddr, AccessSyndrome)> {
        match self.kind {
            FaultKind::Translation | FaultKind::Permission => Some((self.ipa?, self.syndrome?)),
            FaultKind::Other => None,
        }
    }
}

/// Describes the access: `4-byte write at IPA 0x9000000 (translation fault, level 3)`.
impl fmt::Display for GuestAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.write { "write" } else { "read" };
        match self.syndrome {
            Some(s) => write!(f, "{}-byte {dir}", s.size)?,
            None => write!(f, "{dir} without a valid instruction syndrome")?,
        }
        match self.ipa {
            Some(ipa) => write!(f, " at IPA {ipa}")?,
            None => f.write_str(" at an unreported address")?,
        }
        write!(f, " ({})", describe_fault_status(self.status))
    }
}

/// The system registers whose trapped accesses the hypervisor serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysReg {
    /// `ICC_SGI1R_EL1`: a Group 1 SGI.
    IccSgi1r,
    /// `ICC_ASGI1R_EL1`: a Group 1 SGI for the other Security state.
    IccAsgi1r,
    /// `ICC_SGI0R_EL1`: a Group 0 SGI.
    IccSgi0r,
    /// `ACTLR_EL1` (trapped by `HCR_EL2.TACR`).
    AuxControl,
    /// A RAS error-record register, `ERRIDR_EL1`..`ERXMISC3_EL1` (trapped by `HCR_EL2.TERR`).
    ErrorRecord,
    /// An activity-monitor register, `AMCR_EL0`..`AMEVTYPER1<n>_EL0` (trapped by
    /// `CPTR_EL2.TAM`).
    ActivityMonitor,
    /// An implementation-defined register (trapped by `HCR_EL2.TIDCP`).
    ImplementationDefined,
    /// Any other register, by its encoding.
    Other(SysRegAccess),
}

impl SysReg {
    /// Names the register of a decoded access.
    fn of(access: &SysRegAccess) -> Self {
        match access.encoding() {
            (3, 0, 12, 11, 5) => SysReg::IccSgi1r,
            (3, 1, 12, 11, 6) => SysReg::IccAsgi1r,
            (3, 2, 12, 11, 7) => SysReg::IccSgi0r,
            (3, 0, 1, 0, 1) => SysReg::AuxControl,
            (3, 0, 5, 3..=5, _) => SysReg::ErrorRecord,
            (3, 3, 13, 2..=15, _) => SysReg::ActivityMonitor,
            (3, _, 11 | 15, _, _) => SysReg::ImplementationDefined,
            _ => SysReg::Other(*access),
        }
    }
}

/// A trapped `MSR`/`MRS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegTrap {
    pub reg: SysReg,
    /// The general-purpose register transferred (31 = `xzr`).
    pub rt: u8,
    /// `MRS` (else `MSR`).
    pub read: bool,
    /// Length of the trapped instruction.
    pub insn_len: u64,
    /// The raw access, for reports.
    pub access: SysRegAccess,
}

impl SysRegTrap {
    /// Decodes an EC 0x18 syndrome.
    pub fn decode(esr: u64) -> Self {
        let access = SysRegAccess::decode(esr);
        Self {
            reg: SysReg::of(&access),
            rt: access.reg,
            read: access.read,
            insn_len: instruction_length(esr),
            access,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::string::ToString;

    /// ESR of a data abort from a lower EL with a valid syndrome.
    pub(crate) fn abort_esr(
        size_log2: u64,
        reg: u64,
        write: bool,
        sse: bool,
        sf: bool,
        dfsc: u64,
    ) -> u64 {
        (0x24 << 26)
            | (1 << 25)
            | (1 << 24)
            | (size_log2 << 22)
            | (u64::from(sse) << 21)
            | (reg << 16)
            | (u64::from(sf) << 15)
            | (u64::from(write) << 6)
            | dfsc
    }

    #[test]
    fn every_load_width_with_and_without_sign_extension() {
        let s = |size, sign_extend, sixty_four| AccessSyndrome {
            size,
            reg: 1,
            sign_extend,
            sixty_four,
        };
        // ldrb w / ldrsb w / ldrsb x
        assert_eq!(s(1, false, false).load_value(0x80), 0x80);
        assert_eq!(s(1, true, false).load_value(0x80), 0xffff_ff80);
        assert_eq!(s(1, true, true).load_value(0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(s(1, true, true).load_value(0x7f), 0x7f);
        // ldrh / ldrsh
        assert_eq!(s(2, false, false).load_value(0x8001), 0x8001);
        assert_eq!(s(2, true, false).load_value(0x8001), 0xffff_8001);
        assert_eq!(s(2, true, true).load_value(0x8001), 0xffff_ffff_ffff_8001);
        // ldr w / ldrsw x
        assert_eq!(s(4, false, false).load_value(0x8000_0000), 0x8000_0000);
        assert_eq!(
            s(4, true, true).load_value(0x8000_0000),
            0xffff_ffff_8000_0000
        );
        assert_eq!(s(4, false, true).load_value(0x8000_0000), 0x8000_0000);
        // ldr x
        assert_eq!(s(8, false, true).load_value(u64::MAX), u64::MAX);
        assert_eq!(s(8, true, true).load_value(u64::MAX), u64::MAX);
        // Bytes beyond the access size never leak into the register.
        assert_eq!(s(1, false, true).load_value(0x1234), 0x34);
        assert_eq!(s(2, false, true).load_value(0xdead_beef), 0xbeef);
    }

    #[test]
    fn data_abort_decodes_to_an_emulable_access() {
        // str w1, [x0] to IPA 0x0900_0018 (translation fault, level 3).
        let esr = abort_esr(2, 1, true, false, false, 0x07);
        let exit = Exit::decode(esr, 0xffff_0000_0900_0018, 0x9000 << 4);
        let Exit::DataAbort(access) = exit else {
            panic!("{exit:?}")
        };
        assert_eq!(access.ipa, Some(GuestPhysAddr(0x0900_0018)));
        assert!(access.write);
        assert_eq!(access.kind, FaultKind::Translation);
        assert_eq!(access.insn_len, 4);
        let (ipa, s) = access.emulable().unwrap();
        assert_eq!(
            (ipa, s.size, s.reg, s.sixty_four),
            (GuestPhysAddr(0x0900_0018), 4, 1, false)
        );
        assert_eq!(
            access.to_string(),
            "4-byte write at IPA 0x9000018 (translation fault, level 3)"
        );
    }

    #[test]
    fn accesses_that_must_not_be_emulated() {
        // No valid syndrome (e.g. ldp): reported as such, not as a 0-byte read.
        let esr = (0x24 << 26) | (1 << 25) | 0x06;
        let Exit::DataAbort(access) = Exit::decode(esr, 0x1000, 0x1 << 4) else {
            panic!()
        };
        assert_eq!(access.syndrome, None);
        assert_eq!(access.emulable(), None);
        assert_eq!(
            access.to_string(),
            "read without a valid instruction syndrome at IPA 0x1000 (translation fault, level 2)"
        );
        // A synchronous external abort: HPFAR is UNKNOWN, so no address, no emulation.
        let esr = abort_esr(2, 1, false, false, false, 0x10);
        let Exit::DataAbort(access) = Exit::decode(esr, 0x1234, 0xdead << 4) else {
            panic!()
        };
        assert_eq!((access.ipa, access.kind), (None, FaultKind::Other));
        assert_eq!(access.emulable(), None);
        // FAR not valid (FnV): the address is not known to the byte.
        let esr = abort_esr(2, 1, false, false, false, 0x07) | ISS_FNV;
        let Exit::DataAbort(access) = Exit::decode(esr, 0, 0x9000 << 4) else {
            panic!()
        };
        assert_eq!(access.ipa, None);
        // A permission fault is emulable (a write to a read-only mapping that traps).
        let esr = abort_esr(3, 2, true, false, true, 0x0f);
        let Exit::DataAbort(access) = Exit::decode(esr, 0x8, 0x4000 << 4) else {
            panic!()
        };
        assert_eq!(access.kind, FaultKind::Permission);
        assert!(access.emulable().is_some());
    }

    #[test]
    fn system_registers_are_named() {
        // msr ICC_SGI1R_EL1, x3: op0=3 op1=0 CRn=12 CRm=11 op2=5, Rt=3.
        let esr =
            (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let Exit::SysReg(t) = Exit::decode(esr, 0, 0) else {
            panic!()
        };
        assert_eq!(
            (t.reg, t.rt, t.read, t.insn_len),
            (SysReg::IccSgi1r, 3, false, 4)
        );
        // mrs x1, ID_AA64PFR0_EL1 is no register the hypervisor serves.
        let Exit::SysReg(t) = Exit::decode(0x6230_0029, 0, 0) else {
            panic!()
        };
        assert!(matches!(t.reg, SysReg::Other(_)));
        assert!(t.read);
        // The registers trapped to be emulated as read-as-zero, write-ignored.
        let named = |op0: u64, op1: u64, crn: u64, crm: u64, op2: u64| {
            let esr =
                (0x18 << 26) | (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (crm << 1);
            SysRegTrap::decode(esr).reg
        };
        assert_eq!(named(3, 0, 1, 0, 1), SysReg::AuxControl);
        assert_eq!(named(3, 0, 5, 3, 0), SysReg::ErrorRecord, "ERRIDR_EL1");
        assert_eq!(named(3, 0, 5, 5, 3), SysReg::ErrorRecord, "ERXMISC3_EL1");
        assert_eq!(
            named(3, 3, 13, 2, 5),
            SysReg::ActivityMonitor,
            "AMCNTENSET0_EL0"
        );
        assert_eq!(
            named(3, 3, 13, 15, 7),
            SysReg::ActivityMonitor,
            "AMEVTYPER1<15>"
        );
        assert_eq!(
            named(3, 1, 15, 2, 0),
            SysReg::ImplementationDefined,
            "CPUACTLR_EL1"
        );
        assert!(
            matches!(named(3, 0, 1, 0, 0), SysReg::Other(_)),
            "SCTLR_EL1 is not emulated"
        );
    }

    #[test]
    fn calls_and_the_rest() {
        assert_eq!(Exit::decode(0x5A00_0000 | (1 << 25), 0, 0), Exit::Hvc);
        assert_eq!(
            Exit::decode(0x5E00_0000 | (1 << 25), 0, 0),
            Exit::Smc { insn_len: 4 }
        );
        let brk = 0xF200_0000 | (1 << 25);
        assert_eq!(
            Exit::decode(brk, 7, 0),
            Exit::Unhandled(Unhandled { esr: brk, far: 7 })
        );
    }
}
