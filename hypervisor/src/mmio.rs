//! What the emulated devices with 32-bit registers (the virtual PL011, the doorbell GPIO)
//! accept of a guest's MMIO access, and the error for what they refuse.

#![forbid(unsafe_code)]

use core::fmt;

/// Why an emulated device refused an MMIO access. The runtime stops the partition with a
/// report; the device's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// The access size (in bytes) is not 1, 2 or 4.
    UnsupportedSize(u8),
    /// The offset is not aligned to the access size.
    Misaligned { offset: u64, size: u8 },
    /// The offset lies outside the device's register window.
    OutOfRange(u64),
}

impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedSize(size) => write!(f, "unsupported {size}-byte access"),
            Self::Misaligned { offset, size } => {
                write!(f, "misaligned {size}-byte access at offset {offset:#x}")
            }
            Self::OutOfRange(offset) => write!(f, "offset {offset:#x} outside the device"),
        }
    }
}

/// Checks an access of `size` bytes at `offset` in a register window of `window` bytes: 1, 2
/// or 4 bytes, inside the window, naturally aligned. Returns the offset of the 32-bit register
/// it falls in and the byte lane it starts at.
pub fn check_access(offset: u64, size: u8, window: u64) -> Result<(u64, u32), MmioError> {
    if !matches!(size, 1 | 2 | 4) {
        return Err(MmioError::UnsupportedSize(size));
    }
    if offset >= window {
        return Err(MmioError::OutOfRange(offset));
    }
    if !offset.is_multiple_of(u64::from(size)) {
        return Err(MmioError::Misaligned { offset, size });
    }
    Ok((offset & !3, (offset & 3) as u32))
}
