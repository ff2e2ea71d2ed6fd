//! The saved register state of an interrupted context: what the exception vectors store on
//! entry and restore on return, and what guest entry loads. Its layout is defined here, once;
//! the vector assembly in `arch::aarch64::exceptions` takes its size and offsets as `const`
//! operands, so the two cannot drift. The runtime reads and writes a trapped vCPU's registers
//! through it (PSCI arguments and results, emulated loads, stepping over an instruction).

#![forbid(unsafe_code)]

/// General-purpose registers and return state of the interrupted context.
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// Where the context resumes (`ELR_EL2`).
    pub elr: u64,
    /// Its saved program status (`SPSR_EL2`).
    pub spsr: u64,
    _pad: u64,
}

impl TrapFrame {
    /// A frame that resumes at `elr` with `spsr`, x0 = `x0` and every other register zero.
    pub fn new(elr: u64, spsr: u64, x0: u64) -> Self {
        let mut frame = Self {
            elr,
            spsr,
            ..Self::default()
        };
        frame.x[0] = x0;
        frame
    }

    /// Reads register `n` as an instruction names it (31 = xzr, which reads 0).
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(usize::from(n)).copied().unwrap_or(0)
    }

    /// Writes register `n` (writes to xzr are dropped).
    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(usize::from(n)) {
            *r = value;
        }
    }
}

const _: () = assert!(core::mem::size_of::<TrapFrame>().is_multiple_of(16));
const _: () =
    assert!(core::mem::offset_of!(TrapFrame, spsr) == core::mem::offset_of!(TrapFrame, elr) + 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xzr_reads_zero_and_ignores_writes() {
        let mut f = TrapFrame::new(0x1000, 0x3c5, 7);
        assert_eq!((f.reg(0), f.elr, f.spsr), (7, 0x1000, 0x3c5));
        f.set_reg(31, 5);
        assert_eq!(f.reg(31), 0);
        f.set_reg(30, 5);
        assert_eq!(f.reg(30), 5);
    }
}
