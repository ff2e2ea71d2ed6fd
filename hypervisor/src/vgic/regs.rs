//! Register plumbing shared by the distributor and the redistributor: access checks, per-interrupt
//! configuration and the "one bit / one byte / two bits per interrupt" register families.

use super::{AccessError, Actions, VgicAction};

/// Guest-visible configuration and latched state of one virtual interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IrqCfg {
    pub enabled: bool,
    pub pending: bool,
    pub active: bool,
    /// `IGROUPR` bit. Resets to 1 (Group 1) like other hypervisors' vGICs, since a Non-secure
    /// guest can only use Group 1 anyway; it is stored and read back, nothing more.
    pub group1: bool,
    /// `ICFGR` odd bit: edge-triggered.
    pub edge: bool,
    pub priority: u8,
}

impl IrqCfg {
    pub const fn reset(edge: bool) -> Self {
        Self {
            enabled: false,
            pending: false,
            active: false,
            group1: true,
            edge,
            priority: 0,
        }
    }
}

/// Something that holds [`IrqCfg`]s by INTID; `None` means "not ours": RAZ/WI, no action.
pub(crate) trait IrqBank {
    fn cfg(&self, intid: u32) -> Option<&IrqCfg>;
    fn cfg_mut(&mut self, intid: u32) -> Option<&mut IrqCfg>;
}

/// Which access sizes a register accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 32-bit accesses only.
    Word,
    /// 8- or 32-bit accesses (`IPRIORITYR`, `ITARGETSR`, `[CS]PENDSGIR`).
    ByteOrWord,
    /// 64-bit register: 64-bit accesses, or 32-bit accesses to either half.
    Dword,
}

/// Checks the generic constraints: a supported size, natural alignment, inside the window.
pub(crate) fn check_access(offset: u64, size: u8, window: u64) -> Result<(), AccessError> {
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(AccessError::BadSize { offset, size });
    }
    let end = offset
        .checked_add(u64::from(size))
        .ok_or(AccessError::OutOfRange { offset })?;
    if end > window {
        return Err(AccessError::OutOfRange { offset });
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(AccessError::Misaligned { offset, size });
    }
    Ok(())
}

/// Validates an access of `size` bytes at `offset` in a frame of `window` bytes and finds its
/// register with `decode`, which knows each 32-bit word's register and access width. Decoding by
/// the containing word makes a narrow access into a register that is not byte-accessible a bad
/// size rather than an unknown register.
pub(crate) fn decode_access<R>(
    offset: u64,
    size: u8,
    window: u64,
    decode: impl Fn(u64) -> Option<(R, Width)>,
) -> Result<R, AccessError> {
    check_access(offset, size, window)?;
    let (reg, width) = decode(offset & !3).ok_or(AccessError::UnknownRegister { offset })?;
    check_width(offset, size, width)?;
    Ok(reg)
}

/// Checks that `size` is acceptable for a register of `width`.
pub(crate) fn check_width(offset: u64, size: u8, width: Width) -> Result<(), AccessError> {
    let ok = match width {
        Width::Word => size == 4,
        Width::ByteOrWord => size == 1 || size == 4,
        Width::Dword => size == 4 || size == 8,
    };
    if ok {
        Ok(())
    } else {
        Err(AccessError::BadSize { offset, size })
    }
}

/// The "one bit per interrupt" register families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

impl BitReg {
    /// Maps the 0x80-sized block index (0x080 = 1 ... 0x380 = 7) to the family.
    pub fn from_block(block: u64) -> Option<Self> {
        Some(match block {
            1 => Self::Group,
            2 => Self::SetEnable,
            3 => Self::ClearEnable,
            4 => Self::SetPending,
            5 => Self::ClearPending,
            6 => Self::SetActive,
            7 => Self::ClearActive,
            _ => return None,
        })
    }
}

/// Reads a one-bit-per-interrupt register covering `first..first + 32`.
pub(crate) fn read_bits<B: IrqBank + ?Sized>(bank: &B, reg: BitReg, first: u32) -> u32 {
    let mut value = 0;
    for bit in 0..32u32 {
        let Some(cfg) = first.checked_add(bit).and_then(|intid| bank.cfg(intid)) else {
            continue;
        };
        let set = match reg {
            BitReg::Group => cfg.group1,
            BitReg::SetEnable | BitReg::ClearEnable => cfg.enabled,
            BitReg::SetPending | BitReg::ClearPending => cfg.pending,
            BitReg::SetActive | BitReg::ClearActive => cfg.active,
        };
        if set {
            value |= 1 << bit;
        }
    }
    value
}

/// Writes a one-bit-per-interrupt register covering `first..first + 32`. Set/clear registers act
/// on the bits written as 1 and report one action each; `IGROUPR` stores every bit, no action.
pub(crate) fn write_bits<B: IrqBank + ?Sized>(
    bank: &mut B,
    reg: BitReg,
    first: u32,
    value: u32,
    actions: &mut Actions,
) {
    for bit in 0..32u32 {
        let Some(intid) = first.checked_add(bit) else {
            continue;
        };
        let one = value & (1 << bit) != 0;
        let Some(cfg) = bank.cfg_mut(intid) else {
            continue;
        };
        if reg == BitReg::Group {
            cfg.group1 = one;
            continue;
        }
        if !one {
            continue;
        }
        let action = match reg {
            BitReg::Group => continue,
            BitReg::SetEnable => {
                cfg.enabled = true;
                VgicAction::Enable {
                    intid,
                    enable: true,
                }
            }
            BitReg::ClearEnable => {
                cfg.enabled = false;
                VgicAction::Enable {
                    intid,
                    enable: false,
                }
            }
            BitReg::SetPending => {
                cfg.pending = true;
                VgicAction::SetPending { intid }
            }
            BitReg::ClearPending => {
                cfg.pending = false;
                VgicAction::ClearPending { intid }
            }
            BitReg::SetActive => {
                cfg.active = true;
                VgicAction::SetActive { intid }
            }
            BitReg::ClearActive => {
                cfg.active = false;
                VgicAction::ClearActive { intid }
            }
        };
        actions.push(action);
    }
}

/// Reads `count` (1 or 4) priority bytes starting at `first`, little-endian.
pub(crate) fn read_priority<B: IrqBank + ?Sized>(bank: &B, first: u32, count: u32) -> u64 {
    let mut value = 0u64;
    for i in 0..count.min(4) {
        let prio = first
            .checked_add(i)
            .and_then(|intid| bank.cfg(intid))
            .map_or(0, |cfg| cfg.priority);
        value |= u64::from(prio) << (8 * i);
    }
    value
}

/// Writes `count` (1 or 4) priority bytes starting at `first`. The full byte is stored (the
/// list register's priority field is 8 bits; the virtual CPU interface ignores the low bits it
/// does not implement).
pub(crate) fn write_priority<B: IrqBank + ?Sized>(
    bank: &mut B,
    first: u32,
    count: u32,
    value: u64,
    actions: &mut Actions,
) {
    for i in 0..count.min(4) {
        let Some(intid) = first.checked_add(i) else {
            continue;
        };
        let prio = (value >> (8 * i)) as u8;
        if let Some(cfg) = bank.cfg_mut(intid) {
            cfg.priority = prio;
            actions.push(VgicAction::SetPriority { intid, prio });
        }
    }
}

/// Reads an `ICFGR` register covering `first..first + 16` (bit 2n+1 = edge, bit 2n RES0).
pub(crate) fn read_cfg<B: IrqBank + ?Sized>(bank: &B, first: u32) -> u32 {
    let mut value = 0;
    for i in 0..16u32 {
        let edge = first
            .checked_add(i)
            .and_then(|intid| bank.cfg(intid))
            .is_some_and(|cfg| cfg.edge);
        if edge {
            value |= 2 << (2 * i);
        }
    }
    value
}

/// Writes an `ICFGR` register covering `first..first + 16`; one `SetTrigger` per owned
/// interrupt.
pub(crate) fn write_cfg<B: IrqBank + ?Sized>(
    bank: &mut B,
    first: u32,
    value: u32,
    actions: &mut Actions,
) {
    for i in 0..16u32 {
        let Some(intid) = first.checked_add(i) else {
            continue;
        };
        let edge = value & (2 << (2 * i)) != 0;
        if let Some(cfg) = bank.cfg_mut(intid) {
            cfg.edge = edge;
            actions.push(VgicAction::SetTrigger { intid, edge });
        }
    }
}
