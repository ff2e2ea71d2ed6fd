//! Decoding of the exception syndrome register (`ESR_EL2`) into typed values.
//!
//! This module owns the knowledge of the ESR field layout (Arm ARM D24.2.40 "ESR_EL2"): the
//! exception class, the instruction-length bit, and the ISS encodings for data aborts (EC 0x24)
//! and trapped system-register accesses (EC 0x18). The arch code reads ESR_EL2 once per exit and
//! `crate::exit` builds the one decoded exit the runtime sees from these functions. Everything is
//! pure bit manipulation; no value a guest can provoke makes these functions panic.
//!
//! Layout used throughout:
//!
//! ```text
//!  63      56 55         32 31    26 25 24                                  0
//! +----------+-------------+--------+--+-------------------------------------+
//! |   RES0   |    ISS2     |   EC   |IL|                 ISS                  |
//! +----------+-------------+--------+--+-------------------------------------+
//! ```

#![forbid(unsafe_code)]

use core::fmt;

const EC_SHIFT: u32 = 26;
const EC_MASK: u64 = 0x3f;
const IL_BIT: u64 = 1 << 25;

/// Raw EC values of the classes that get their own variant.
mod ec {
    pub const UNKNOWN: u8 = 0x00;
    pub const WFI_WFE: u8 = 0x01;
    pub const HVC64: u8 = 0x16;
    pub const SMC64: u8 = 0x17;
    pub const SYSREG64: u8 = 0x18;
    pub const INSTR_ABORT_LOWER: u8 = 0x20;
    pub const DATA_ABORT_LOWER: u8 = 0x24;
}

/// Returns the raw exception class field, ESR\[31:26\].
pub const fn ec_bits(esr: u64) -> u8 {
    ((esr >> EC_SHIFT) & EC_MASK) as u8
}

/// Returns the length in bytes of the trapped instruction (ESR.IL): 4 for a 32-bit instruction,
/// 2 for a 16-bit T32 one. Add this to `ELR_EL2` to step over a trapped instruction.
pub const fn instruction_length(esr: u64) -> u64 {
    if esr & IL_BIT != 0 {
        4
    } else {
        2
    }
}

/// The exception classes the hypervisor distinguishes. Everything else keeps its raw EC value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// EC 0x00: unknown reason (e.g. an undefined instruction).
    Unknown,
    /// EC 0x01: trapped WFI or WFE.
    WfiWfe,
    /// EC 0x16: HVC executed in AArch64 state.
    Hvc64,
    /// EC 0x17: SMC executed in AArch64 state.
    Smc64,
    /// EC 0x18: trapped MSR, MRS or system instruction in AArch64 state.
    SysReg64,
    /// EC 0x20: instruction abort from a lower exception level (stage 2 fault for a guest).
    InstrAbortLower,
    /// EC 0x24: data abort from a lower exception level (stage 2 fault for a guest).
    DataAbortLower,
    /// Any other EC value (raw, 6 bits).
    Other(u8),
}

impl ExceptionClass {
    /// Decodes the EC field of an ESR value.
    pub const fn from_esr(esr: u64) -> Self {
        match ec_bits(esr) {
            ec::UNKNOWN => Self::Unknown,
            ec::WFI_WFE => Self::WfiWfe,
            ec::HVC64 => Self::Hvc64,
            ec::SMC64 => Self::Smc64,
            ec::SYSREG64 => Self::SysReg64,
            ec::INSTR_ABORT_LOWER => Self::InstrAbortLower,
            ec::DATA_ABORT_LOWER => Self::DataAbortLower,
            other => Self::Other(other),
        }
    }

    /// The raw 6-bit EC value of this class.
    pub const fn code(self) -> u8 {
        match self {
            Self::Unknown => ec::UNKNOWN,
            Self::WfiWfe => ec::WFI_WFE,
            Self::Hvc64 => ec::HVC64,
            Self::Smc64 => ec::SMC64,
            Self::SysReg64 => ec::SYSREG64,
            Self::InstrAbortLower => ec::INSTR_ABORT_LOWER,
            Self::DataAbortLower => ec::DATA_ABORT_LOWER,
            Self::Other(code) => code,
        }
    }

    /// A short human-readable name, for fault reports.
    pub const fn name(self) -> &'static str {
        match self.code() {
            0x00 => "unknown reason",
            0x01 => "WFI/WFE",
            0x03 => "MCR/MRC (cp15)",
            0x04 => "MCRR/MRRC (cp15)",
            0x05 => "MCR/MRC (cp14)",
            0x06 => "LDC/STC (cp14)",
            0x07 => "SVE/SIMD/FP access",
            0x0c => "MRRC (cp14)",
            0x0d => "branch target exception",
            0x0e => "illegal execution state",
            0x11 => "SVC (AArch32)",
            0x12 => "HVC (AArch32)",
            0x13 => "SMC (AArch32)",
            0x15 => "SVC (AArch64)",
            0x16 => "HVC (AArch64)",
            0x17 => "SMC (AArch64)",
            0x18 => "MSR/MRS/system instruction",
            0x19 => "SVE access",
            0x1a => "ERET/ERETAA/ERETAB",
            0x1c => "pointer authentication failure",
            0x20 => "instruction abort from lower EL",
            0x21 => "instruction abort at EL2",
            0x22 => "PC alignment fault",
            0x24 => "data abort from lower EL",
            0x25 => "data abort at EL2",
            0x26 => "SP alignment fault",
            0x28 => "FP exception (AArch32)",
            0x2c => "FP exception (AArch64)",
            0x2f => "SError",
            0x30 => "breakpoint from lower EL",
            0x31 => "breakpoint at EL2",
            0x32 => "software step from lower EL",
            0x33 => "software step at EL2",
            0x34 => "watchpoint from lower EL",
            0x35 => "watchpoint at EL2",
            0x38 => "BKPT (AArch32)",
            0x3c => "BRK (AArch64)",
            _ => "reserved/unhandled exception class",
        }
    }
}

impl fmt::Display for ExceptionClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (EC {:#04x})", self.name(), self.code())
    }
}

/// The ISS of a data abort (EC 0x24/0x25), ESR\[24:0\].
///
/// `size`, `sign_extend`, `reg` and `sixty_four` come from the instruction syndrome and are only
/// meaningful when `valid` (ISS.ISV) is set; when it is clear they are decoded as 0/false so that
/// nobody accidentally emulates an access from garbage. `write`, `fault_status` and `s1ptw` are
/// always meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// ISV: the instruction syndrome (size, register, ...) is valid.
    pub valid: bool,
    /// WnR: the access was a write.
    pub write: bool,
    /// SAS decoded to bytes: 1, 2, 4 or 8 (0 if `!valid`).
    pub size: u8,
    /// SSE: a load needs its value sign-extended to the register width.
    pub sign_extend: bool,
    /// SRT: transfer register number; 31 means xzr/wzr.
    pub reg: u8,
    /// SF: the transfer register is 64-bit (x) rather than 32-bit (w).
    pub sixty_four: bool,
    /// DFSC: data fault status code; see [`describe_fault_status`].
    pub fault_status: u8,
    /// S1PTW: the fault happened on a stage 2 walk for a stage 1 table access.
    pub s1ptw: bool,
}

impl DataAbort {
    /// Decodes the ISS of a data-abort ESR value. The EC is not checked.
    pub const fn decode(esr: u64) -> Self {
        let valid = esr & (1 << 24) != 0;
        let write = esr & (1 << 6) != 0;
        let fault_status = (esr & 0x3f) as u8;
        let s1ptw = esr & (1 << 7) != 0;
        if valid {
            DataAbort {
                valid,
                write,
                size: 1 << ((esr >> 22) & 0x3),
                sign_extend: esr & (1 << 21) != 0,
                reg: ((esr >> 16) & 0x1f) as u8,
                sixty_four: esr & (1 << 15) != 0,
                fault_status,
                s1ptw,
            }
        } else {
            DataAbort {
                valid,
                write,
                size: 0,
                sign_extend: false,
                reg: 0,
                sixty_four: false,
                fault_status,
                s1ptw,
            }
        }
    }

    /// Describes the fault status code.
    pub const fn fault_description(&self) -> &'static str {
        describe_fault_status(self.fault_status)
    }

    /// Returns the 0-3 lookup level for translation, access-flag, permission and address-size
    /// faults, `None` for other fault kinds.
    pub const fn fault_level(&self) -> Option<u8> {
        match self.fault_status {
            0x00..=0x0f => Some(self.fault_status & 0x3),
            _ => None,
        }
    }

    /// True for a translation fault at any level (typically: the guest touched an IPA that the
    /// stage 2 tables do not map, i.e. emulated MMIO or a bad access).
    pub const fn is_translation_fault(&self) -> bool {
        matches!(self.fault_status, 0x04..=0x07)
    }

    /// True for a permission fault at any level.
    pub const fn is_permission_fault(&self) -> bool {
        matches!(self.fault_status, 0x0c..=0x0f)
    }
}

impl fmt::Display for DataAbort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.write { "write" } else { "read" })?;
        if self.valid {
            let prefix = if self.sixty_four { 'x' } else { 'w' };
            write!(f, " of {} byte(s) ", self.size)?;
            f.write_str(if self.write { "from " } else { "to " })?;
            if self.reg == 31 {
                write!(f, "{prefix}zr")?;
            } else {
                write!(f, "{prefix}{}", self.reg)?;
            }
            if self.sign_extend {
                f.write_str(" (sign-extended)")?;
            }
        } else {
            f.write_str(" (no instruction syndrome)")?;
        }
        write!(
            f,
            ", {} (DFSC {:#04x})",
            self.fault_description(),
            self.fault_status
        )?;
        if self.s1ptw {
            f.write_str(", on stage 1 table walk")?;
        }
        Ok(())
    }
}

/// Describes a data or instruction fault status code (DFSC/IFSC, ISS\[5:0\]).
pub const fn describe_fault_status(dfsc: u8) -> &'static str {
    match dfsc & 0x3f {
        0x00 => "address size fault, level 0",
        0x01 => "address size fault, level 1",
        0x02 => "address size fault, level 2",
        0x03 => "address size fault, level 3",
        0x04 => "translation fault, level 0",
        0x05 => "translation fault, level 1",
        0x06 => "translation fault, level 2",
        0x07 => "translation fault, level 3",
        0x08 => "access flag fault, level 0",
        0x09 => "access flag fault, level 1",
        0x0a => "access flag fault, level 2",
        0x0b => "access flag fault, level 3",
        0x0c => "permission fault, level 0",
        0x0d => "permission fault, level 1",
        0x0e => "permission fault, level 2",
        0x0f => "permission fault, level 3",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x13 => "synchronous external abort on table walk, level -1",
        0x14 => "synchronous external abort on table walk, level 0",
        0x15 => "synchronous external abort on table walk, level 1",
        0x16 => "synchronous external abort on table walk, level 2",
        0x17 => "synchronous external abort on table walk, level 3",
        0x18 => "synchronous parity/ECC error",
        0x1b => "synchronous parity/ECC error on table walk, level -1",
        0x1c => "synchronous parity/ECC error on table walk, level 0",
        0x1d => "synchronous parity/ECC error on table walk, level 1",
        0x1e => "synchronous parity/ECC error on table walk, level 2",
        0x1f => "synchronous parity/ECC error on table walk, level 3",
        0x21 => "alignment fault",
        0x22 => "granule protection fault",
        0x23 => "granule protection fault on table walk, level -1",
        0x24 => "granule protection fault on table walk, level 0",
        0x25 => "granule protection fault on table walk, level 1",
        0x26 => "granule protection fault on table walk, level 2",
        0x27 => "granule protection fault on table walk, level 3",
        0x29 => "address size fault, level -1",
        0x2b => "translation fault, level -1",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update fault",
        0x34 => "implementation defined fault (lockdown)",
        0x35 => "implementation defined fault (unsupported exclusive or atomic access)",
        _ => "reserved fault status code",
    }
}

/// A trapped `MSR`/`MRS`/system instruction (EC 0x18), decoded from the ISS.
///
/// The register is identified by `op0, op1, CRn, CRm, op2` as in the `S<op0>_<op1>_C<n>_C<m>_<op2>`
/// assembler syntax; `reg` is the general-purpose register Rt (31 = xzr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// Rt: the general-purpose register transferred; 31 means xzr.
    pub reg: u8,
    /// Direction: true for a read (MRS), false for a write (MSR).
    pub read: bool,
}

impl SysRegAccess {
    /// Decodes the ISS of an EC 0x18 ESR value. The EC is not checked.
    pub const fn decode(esr: u64) -> Self {
        SysRegAccess {
            op0: ((esr >> 20) & 0x3) as u8,
            op2: ((esr >> 17) & 0x7) as u8,
            op1: ((esr >> 14) & 0x7) as u8,
            crn: ((esr >> 10) & 0xf) as u8,
            reg: ((esr >> 5) & 0x1f) as u8,
            crm: ((esr >> 1) & 0xf) as u8,
            read: esr & 1 != 0,
        }
    }

    /// The register encoding with `reg` and `read` stripped, for matching against a known
    /// register: `(op0, op1, crn, crm, op2)`.
    pub const fn encoding(&self) -> (u8, u8, u8, u8, u8) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

impl fmt::Display for SysRegAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sysreg = SysRegName(*self);
        if self.read {
            write!(f, "mrs x{}, {sysreg}", self.reg)
        } else {
            write!(f, "msr {sysreg}, x{}", self.reg)
        }
    }
}

struct SysRegName(SysRegAccess);

impl fmt::Display for SysRegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(f, "s{}_{}_c{}_c{}_{}", a.op0, a.op1, a.crn, a.crm, a.op2)
    }
}

/// Returns the faulting IPA of a stage 2 abort from `HPFAR_EL2` (FIPA, bits \[43:4\] holding
/// IPA\[51:12\]) and the page offset from `FAR_EL2`.
pub const fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    (((hpfar >> 4) & ((1 << 40) - 1)) << 12) | (far & 0xfff)
}

/// A one-line report of a whole exception, for logging a guest fault:
/// `data abort from lower EL (EC 0x24) at ELR 0x...: write of 4 byte(s) from w1, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionReport {
    pub esr: u64,
    /// `ELR_EL2`, the guest PC of the trapping instruction.
    pub elr: u64,
    /// `FAR_EL2` (only meaningful for aborts, alignment faults and watchpoints).
    pub far: u64,
}

impl fmt::Display for ExceptionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = ExceptionClass::from_esr(self.esr);
        write!(f, "{class} at pc {:#x}", self.elr)?;
        match class {
            ExceptionClass::DataAbortLower | ExceptionClass::Other(0x25) => {
                let abort = DataAbort::decode(self.esr);
                write!(f, ", address {:#x}: {abort}", self.far)?;
            }
            ExceptionClass::InstrAbortLower | ExceptionClass::Other(0x21) => {
                let ifsc = (self.esr & 0x3f) as u8;
                write!(
                    f,
                    ", address {:#x}: {} (IFSC {ifsc:#04x})",
                    self.far,
                    describe_fault_status(ifsc)
                )?;
            }
            ExceptionClass::SysReg64 => {
                write!(f, ": {}", SysRegAccess::decode(self.esr))?;
            }
            ExceptionClass::Hvc64 | ExceptionClass::Smc64 => {
                write!(f, ": #{:#x}", self.esr & 0xffff)?;
            }
            _ => {}
        }
        write!(f, " (ESR {:#x})", self.esr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    // Hand-assembled from the ESR_EL2 layout:
    // EC=0x24 (0x9000_0000) | IL (0x0200_0000) | ISV (0x0100_0000) | SAS=2 (0x0080_0000)
    // | SRT=1 (0x0001_0000) | SF=0 | WnR (0x40) | DFSC=0x07 (translation fault, level 3)
    const STR_W1_WORD: u64 = 0x9381_0047;

    #[test]
    fn data_abort_32bit_store_from_w1() {
        assert_eq!(
            ExceptionClass::from_esr(STR_W1_WORD),
            ExceptionClass::DataAbortLower
        );
        assert_eq!(instruction_length(STR_W1_WORD), 4);
        let abort = DataAbort::decode(STR_W1_WORD);
        assert_eq!(
            abort,
            DataAbort {
                valid: true,
                write: true,
                size: 4,
                sign_extend: false,
                reg: 1,
                sixty_four: false,
                fault_status: 0x07,
                s1ptw: false,
            }
        );
        assert!(abort.is_translation_fault());
        assert_eq!(abort.fault_level(), Some(3));
        assert_eq!(abort.fault_description(), "translation fault, level 3");
    }

    #[test]
    fn data_abort_64bit_store_from_x0() {
        // 0x93C0_8046: EC 0x24, IL, ISV, SAS=3 (8 bytes), SRT=0, SF=1, WnR, DFSC=0x06.
        let abort = DataAbort::decode(0x93C0_8046);
        assert!(abort.valid && abort.write && abort.sixty_four && !abort.sign_extend);
        assert_eq!(abort.size, 8);
        assert_eq!(abort.reg, 0);
        assert_eq!(abort.fault_status, 0x06);
        assert_eq!(abort.fault_level(), Some(2));
    }

    #[test]
    fn data_abort_sign_extending_halfword_load() {
        // ldrsh x5, [..]: EC 0x24 | IL | ISV | SAS=1 (0x40_0000) | SSE (0x20_0000) | SRT=5
        // (0x5_0000) | SF (0x8000) | WnR=0 | DFSC=0x07.
        let esr = 0x9000_0000
            | 0x0200_0000
            | 0x0100_0000
            | 0x40_0000
            | 0x20_0000
            | 0x5_0000
            | 0x8000
            | 0x07;
        assert_eq!(esr, 0x9365_8007);
        let abort = DataAbort::decode(esr);
        assert!(abort.valid && !abort.write && abort.sign_extend && abort.sixty_four);
        assert_eq!((abort.size, abort.reg), (2, 5));
    }

    #[test]
    fn data_abort_byte_load_to_xzr() {
        // ldrb wzr: ISV, SAS=0, SRT=31 (0x1f_0000), read, DFSC=0x07
        let abort = DataAbort::decode(0x9300_0000 | 0x1f_0000 | 0x07);
        assert_eq!((abort.size, abort.reg, abort.write), (1, 31, false));
        assert_eq!(
            abort.to_string(),
            "read of 1 byte(s) to wzr, translation fault, level 3 (DFSC 0x07)"
        );
    }

    #[test]
    fn data_abort_without_syndrome() {
        // ISV clear but junk in the syndrome bits (e.g. from a load pair): they must be ignored.
        let esr = 0x9200_0000 | 0x00ff_0000 | (1 << 7) | 0x40 | 0x0f;
        let abort = DataAbort::decode(esr);
        assert!(!abort.valid);
        assert_eq!((abort.size, abort.reg, abort.sixty_four), (0, 0, false));
        assert!(abort.write && abort.s1ptw && abort.is_permission_fault());
        assert_eq!(abort.fault_level(), Some(3));
    }

    #[test]
    fn fault_status_strings() {
        assert_eq!(describe_fault_status(0x04), "translation fault, level 0");
        assert_eq!(describe_fault_status(0x0a), "access flag fault, level 2");
        assert_eq!(describe_fault_status(0x0d), "permission fault, level 1");
        assert_eq!(describe_fault_status(0x21), "alignment fault");
        assert_eq!(describe_fault_status(0x10), "synchronous external abort");
        assert_eq!(describe_fault_status(0x3f), "reserved fault status code");
        // Upper bits are ignored rather than indexing out of anything.
        assert_eq!(describe_fault_status(0xc7), "translation fault, level 3");
    }

    #[test]
    fn sysreg_read_id_aa64pfr0() {
        // mrs x1, ID_AA64PFR0_EL1 (op0=3 op1=0 CRn=0 CRm=4 op2=0):
        // EC 0x18 (0x6000_0000) | IL | op0 (3<<20) | Rt=1 (1<<5) | CRm=4 (4<<1) | read (1)
        let esr = 0x6230_0029;
        assert_eq!(ExceptionClass::from_esr(esr), ExceptionClass::SysReg64);
        let access = SysRegAccess::decode(esr);
        assert_eq!(
            access,
            SysRegAccess {
                op0: 3,
                op1: 0,
                crn: 0,
                crm: 4,
                op2: 0,
                reg: 1,
                read: true
            }
        );
        assert_eq!(access.encoding(), (3, 0, 0, 4, 0));
        assert_eq!(access.to_string(), "mrs x1, s3_0_c0_c4_0");
    }

    #[test]
    fn sysreg_write_cntp_ctl() {
        // msr CNTP_CTL_EL0, x5 (op0=3 op1=3 CRn=14 CRm=2 op2=1):
        // (3<<20) | (1<<17) | (3<<14) | (14<<10) | (5<<5) | (2<<1) = 0x32_F8A4
        let esr = 0x6200_0000 | 0x32_F8A4;
        let access = SysRegAccess::decode(esr);
        assert_eq!(
            access,
            SysRegAccess {
                op0: 3,
                op1: 3,
                crn: 14,
                crm: 2,
                op2: 1,
                reg: 5,
                read: false
            }
        );
        assert_eq!(access.to_string(), "msr s3_3_c14_c2_1, x5");
    }

    #[test]
    fn exception_classes() {
        assert_eq!(
            ExceptionClass::from_esr(0x0200_0000),
            ExceptionClass::Unknown
        );
        assert_eq!(
            ExceptionClass::from_esr(0x0600_0000),
            ExceptionClass::WfiWfe
        );
        assert_eq!(ExceptionClass::from_esr(0x5A00_0000), ExceptionClass::Hvc64);
        assert_eq!(ExceptionClass::from_esr(0x5E00_0000), ExceptionClass::Smc64);
        assert_eq!(
            ExceptionClass::from_esr(0x8200_0007),
            ExceptionClass::InstrAbortLower
        );
        assert_eq!(
            ExceptionClass::from_esr(0xF200_0000),
            ExceptionClass::Other(0x3c)
        );
        assert_eq!(ExceptionClass::Other(0x3c).name(), "BRK (AArch64)");
        assert_eq!(ExceptionClass::from_esr(0x9200_0000).code(), 0x24);
        // Bits above 31 (ISS2) do not disturb the class.
        assert_eq!(
            ExceptionClass::from_esr(0xffff_ffff_0000_0000 | 0x5A00_0000),
            ExceptionClass::Hvc64
        );
        // A 16-bit instruction (IL clear).
        assert_eq!(instruction_length(0x0400_0000), 2);
    }

    #[test]
    fn ipa_from_hpfar() {
        // IPA 0x0900_1234: HPFAR.FIPA = 0x0900_1 << 4, FAR supplies the page offset.
        assert_eq!(fault_ipa(0x9001 << 4, 0xffff_0000_1234_5234), 0x0900_1234);
    }

    #[test]
    fn report_display() {
        let report = ExceptionReport {
            esr: STR_W1_WORD,
            elr: 0x4008_0000,
            far: 0x900_0000,
        };
        assert_eq!(
            report.to_string(),
            "data abort from lower EL (EC 0x24) at pc 0x40080000, address 0x9000000: write of \
             4 byte(s) from w1, translation fault, level 3 (DFSC 0x07) (ESR 0x93810047)"
        );
        let hvc = ExceptionReport {
            esr: 0x5A00_0000,
            elr: 0x1000,
            far: 0,
        };
        assert_eq!(
            hvc.to_string(),
            "HVC (AArch64) (EC 0x16) at pc 0x1000: #0x0 (ESR 0x5a000000)"
        );
    }
}
