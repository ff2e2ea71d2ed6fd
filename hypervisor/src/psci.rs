//! PSCI (and the SMCCC discovery calls) for guests, as pure dispatch.
//!
//! This module owns the decision of what a guest's HVC/SMC call means: [`dispatch`] looks at the
//! function ID and arguments in x0..x3 and the calling partition's vCPU states, and returns a
//! [`PsciAction`] that the caller carries out (write x0, start or stop a vCPU, stop the
//! partition). It never touches hardware, never forwards anything to the real firmware, and only
//! ever sees the calling partition's own vCPUs through [`PartitionView`], so a guest can neither
//! power other partitions' CPUs nor the machine.
//!
//! Emulated interface: **PSCI 1.1** (the version described by the `smccc` crate whose constants
//! are used here) with:
//!
//! - `PSCI_VERSION`, `PSCI_FEATURES`, `CPU_ON` (SMC32 and SMC64), `CPU_OFF`, `AFFINITY_INFO`
//!   (SMC32 and SMC64, affinity level 0 only), `MIGRATE_INFO_TYPE` (2: no Trusted OS),
//!   `SYSTEM_OFF` and `SYSTEM_RESET`, which act on the calling partition only;
//! - `SMCCC_VERSION` (1.1) so Linux's SMCCC probing works, and `SMCCC_ARCH_FEATURES`, which
//!   reports every queried function as not supported (no firmware workarounds are exposed).
//!
//! Everything else — `CPU_SUSPEND`, `SYSTEM_SUSPEND`, `SYSTEM_RESET2`, `MIGRATE`, the statistics
//! calls, vendor and Trusted OS calls — returns `NOT_SUPPORTED`. Note that PSCI 1.x formally
//! makes `CPU_SUSPEND` mandatory; guests (Linux included) cope with its absence by not using PSCI
//! idle states, and `PSCI_FEATURES` reports it as unsupported.
//!
//! Per SMCCC, the function ID is W0 (the upper half of x0 is ignored) and SMC32/HVC32 functions
//! only look at the low 32 bits of their arguments.

#![forbid(unsafe_code)]

use bulkhead_config::guest_view::vcpu_of_mpidr;
use bulkhead_config::{GuestPhysAddr, VcpuId};
use log::debug;
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
use smccc::psci::error::{
    ALREADY_ON, INVALID_ADDRESS, INVALID_PARAMETERS, NOT_SUPPORTED, ON_PENDING,
};
use smccc::psci::{
    AffinityState, MigrateType, PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF,
    PSCI_CPU_ON_32, PSCI_CPU_ON_64, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// The PSCI version reported by `PSCI_VERSION`: 1.1.
pub const EMULATED_PSCI_VERSION: smccc::psci::Version = smccc::psci::Version { major: 1, minor: 1 };

/// The SMCCC version reported by `SMCCC_VERSION`: 1.1.
pub const EMULATED_SMCCC_VERSION: smccc::arch::Version =
    smccc::arch::Version { major: 1, minor: 1 };

/// Function IDs `PSCI_FEATURES` reports as implemented.
const SUPPORTED: [u32; 11] = [
    PSCI_VERSION,
    PSCI_FEATURES,
    PSCI_CPU_ON_32,
    PSCI_CPU_ON_64,
    PSCI_CPU_OFF,
    PSCI_AFFINITY_INFO_32,
    PSCI_AFFINITY_INFO_64,
    PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF,
    PSCI_SYSTEM_RESET,
    SMCCC_VERSION,
];

/// The power state of one of the partition's vCPUs, as the scheduler tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuPower {
    /// Running (or runnable).
    On,
    /// Powered off; may be started with `CPU_ON`.
    Off,
    /// A `CPU_ON` was accepted but the vCPU has not started executing yet.
    OnPending,
}

/// The calling partition's vCPUs, numbered `0..vcpu_count()`; vCPU `n` has the affinity the
/// guest's view gives it ([`vcpu_of_mpidr`]).
pub trait PartitionView {
    /// Number of vCPUs in the partition.
    fn vcpu_count(&self) -> usize;
    /// Power state of `vcpu` (`vcpu < vcpu_count()`).
    fn vcpu_state(&self, vcpu: VcpuId) -> VcpuPower;
}

/// What the caller must do to complete the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciAction {
    /// Write this value to the caller's x0 and resume it (past the HVC/SMC).
    Return(u64),
    /// Start `vcpu` (which was `Off`) at `entry` with x0 = `context`, in the state PSCI requires
    /// (EL1h, MMU and caches off, interrupts masked), and return `SUCCESS` (0) to the caller.
    /// The caller should first check that `entry` lies in the partition's memory and return
    /// `INVALID_ADDRESS` instead if it does not.
    CpuOn {
        vcpu: VcpuId,
        entry: GuestPhysAddr,
        context: u64,
    },
    /// Power off the calling vCPU; it does not return to the guest.
    CpuOff,
    /// Stop the whole partition.
    SystemOff,
    /// Restart the whole partition from its initial state.
    SystemReset,
}

fn error(code: i32) -> PsciAction {
    PsciAction::Return(i64::from(code) as u64)
}

fn success(value: u64) -> PsciAction {
    PsciAction::Return(value)
}

/// Finds the vCPU whose affinity is `mpidr`.
fn find_vcpu(view: &dyn PartitionView, mpidr: u64) -> Option<VcpuId> {
    vcpu_of_mpidr(mpidr, view.vcpu_count())
}

/// Decides what a PSCI/SMCCC call from `caller_vcpu` of the partition described by `view` does.
/// `regs` are the caller's x0..x3.
pub fn dispatch(caller_vcpu: VcpuId, regs: [u64; 4], view: &dyn PartitionView) -> PsciAction {
    let function = regs[0] as u32;
    // SMC32/HVC32 calls (bit 30 clear) use only W1..W3.
    let args = if function & (1 << 30) == 0 {
        [
            regs[1] & 0xffff_ffff,
            regs[2] & 0xffff_ffff,
            regs[3] & 0xffff_ffff,
        ]
    } else {
        [regs[1], regs[2], regs[3]]
    };
    match function {
        PSCI_VERSION => success(u32::from(EMULATED_PSCI_VERSION).into()),
        PSCI_FEATURES => {
            // An SMC32 call, so args[0] already holds just W1.
            if SUPPORTED.contains(&(args[0] as u32)) {
                // 0: supported, and for these functions no feature flags are defined.
                success(0)
            } else {
                error(NOT_SUPPORTED)
            }
        }
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(args, view),
        PSCI_CPU_OFF => PsciAction::CpuOff,
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => {
            if args[1] != 0 {
                // Only affinity level 0 (a single vCPU) is supported.
                return error(INVALID_PARAMETERS);
            }
            match find_vcpu(view, args[0]) {
                None => error(INVALID_PARAMETERS),
                Some(vcpu) => success(match view.vcpu_state(vcpu) {
                    VcpuPower::On => AffinityState::On as u64,
                    VcpuPower::Off => AffinityState::Off as u64,
                    VcpuPower::OnPending => AffinityState::OnPending as u64,
                }),
            }
        }
        PSCI_MIGRATE_INFO_TYPE => success(MigrateType::MigrationNotRequired as u64),
        PSCI_SYSTEM_OFF => PsciAction::SystemOff,
        PSCI_SYSTEM_RESET => PsciAction::SystemReset,
        SMCCC_VERSION => success(u32::from(EMULATED_SMCCC_VERSION).into()),
        SMCCC_ARCH_FEATURES => error(smccc::arch::error::NOT_SUPPORTED),
        _ => {
            debug!(
                "vCPU {caller_vcpu}: unsupported SMCCC/PSCI function {function:#010x}, \
                 returning NOT_SUPPORTED"
            );
            error(NOT_SUPPORTED)
        }
    }
}

fn cpu_on(args: [u64; 3], view: &dyn PartitionView) -> PsciAction {
    let [target, entry, context] = args;
    let Some(vcpu) = find_vcpu(view, target) else {
        return error(INVALID_PARAMETERS);
    };
    match view.vcpu_state(vcpu) {
        VcpuPower::On => error(ALREADY_ON),
        VcpuPower::OnPending => error(ON_PENDING),
        // A64 instructions are 4-byte aligned; anything else cannot be an entry point.
        VcpuPower::Off if entry % 4 != 0 => error(INVALID_ADDRESS),
        VcpuPower::Off => PsciAction::CpuOn {
            vcpu,
            entry: GuestPhysAddr(entry),
            context,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smccc::psci::{
        PSCI_CPU_SUSPEND_64, PSCI_MIGRATE_INFO_UP_CPU_64, PSCI_SYSTEM_RESET2_64,
        PSCI_SYSTEM_SUSPEND_64,
    };

    /// vCPU i has the affinity 0.0.0.i.
    struct FakeView(Vec<VcpuPower>);

    impl PartitionView for FakeView {
        fn vcpu_count(&self) -> usize {
            self.0.len()
        }
        fn vcpu_state(&self, vcpu: VcpuId) -> VcpuPower {
            self.0[vcpu.index()]
        }
    }

    fn view() -> FakeView {
        FakeView(vec![
            VcpuPower::On,
            VcpuPower::Off,
            VcpuPower::OnPending,
            VcpuPower::Off,
        ])
    }

    fn call(regs: [u64; 4]) -> PsciAction {
        dispatch(VcpuId(0), regs, &view())
    }

    fn err(code: i32) -> PsciAction {
        PsciAction::Return(code as i64 as u64)
    }

    #[test]
    fn versions() {
        assert_eq!(
            call([PSCI_VERSION.into(), 0, 0, 0]),
            PsciAction::Return(0x1_0001)
        );
        assert_eq!(
            call([SMCCC_VERSION.into(), 0, 0, 0]),
            PsciAction::Return(0x1_0001)
        );
        // The upper half of x0 is not part of the function ID.
        assert_eq!(
            call([0xdead_0000_0000_0000 | u64::from(PSCI_VERSION), 0, 0, 0]),
            PsciAction::Return(0x1_0001)
        );
    }

    #[test]
    fn features() {
        for id in SUPPORTED {
            assert_eq!(
                call([PSCI_FEATURES.into(), id.into(), 0, 0]),
                PsciAction::Return(0)
            );
        }
        for id in [
            PSCI_CPU_SUSPEND_64,
            PSCI_SYSTEM_SUSPEND_64,
            SMCCC_ARCH_FEATURES,
            0xc200_0000,
        ] {
            assert_eq!(
                call([PSCI_FEATURES.into(), id.into(), 0, 0]),
                err(NOT_SUPPORTED)
            );
        }
        // PSCI_FEATURES is an SMC32 call: only W1 holds the queried ID.
        assert_eq!(
            call([
                PSCI_FEATURES.into(),
                0x1_0000_0000 | u64::from(PSCI_VERSION),
                0,
                0
            ]),
            PsciAction::Return(0)
        );
        assert_eq!(NOT_SUPPORTED as i64 as u64, u64::MAX);
    }

    #[test]
    fn cpu_on() {
        // vCPU 1 = MPIDR 0x1 (with or without the RES1 bit 31), Off.
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x1, 0x4008_0000, 0x1234_5678_9abc]),
            PsciAction::CpuOn {
                vcpu: VcpuId(1),
                entry: GuestPhysAddr(0x4008_0000),
                context: 0x1234_5678_9abc
            }
        );
        // vCPU 3 = 0.0.0.3, with the RES1 bit 31 set as Linux passes it.
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x8000_0003, 0x4000_0000, 7]),
            PsciAction::CpuOn {
                vcpu: VcpuId(3),
                entry: GuestPhysAddr(0x4000_0000),
                context: 7
            }
        );
        // Another cluster has no vCPU of this partition.
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x101, 0x4000_0000, 0]),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x0, 0x4000_0000, 0]),
            err(ALREADY_ON)
        );
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x2, 0x4000_0000, 0]),
            err(ON_PENDING)
        );
        // Not one of this partition's vCPUs.
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x4, 0x4000_0000, 0]),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x1_0000_0000, 0x4000_0000, 0]),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            call([PSCI_CPU_ON_64.into(), 0x1, 0x4000_0002, 0]),
            err(INVALID_ADDRESS)
        );
    }

    #[test]
    fn cpu_on_32_ignores_upper_halves() {
        assert_eq!(
            call([
                PSCI_CPU_ON_32.into(),
                0xffff_ffff_0000_0001,
                0xffff_ffff_4000_0000,
                0x1_0000_0005
            ]),
            PsciAction::CpuOn {
                vcpu: VcpuId(1),
                entry: GuestPhysAddr(0x4000_0000),
                context: 5
            }
        );
    }

    #[test]
    fn affinity_info() {
        let cases = [(0x0, 0), (0x1, 1), (0x2, 2), (0x8000_0003, 1)];
        for (mpidr, state) in cases {
            assert_eq!(
                call([PSCI_AFFINITY_INFO_64.into(), mpidr, 0, 0]),
                PsciAction::Return(state)
            );
            assert_eq!(
                call([PSCI_AFFINITY_INFO_32.into(), mpidr, 0, 0]),
                PsciAction::Return(state)
            );
        }
        assert_eq!(
            call([PSCI_AFFINITY_INFO_64.into(), 0x0, 1, 0]),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            call([PSCI_AFFINITY_INFO_64.into(), 0x100, 0, 0]),
            err(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn power_actions() {
        assert_eq!(call([PSCI_CPU_OFF.into(), 0, 0, 0]), PsciAction::CpuOff);
        assert_eq!(
            call([PSCI_SYSTEM_OFF.into(), 0, 0, 0]),
            PsciAction::SystemOff
        );
        assert_eq!(
            call([PSCI_SYSTEM_RESET.into(), 0, 0, 0]),
            PsciAction::SystemReset
        );
        assert_eq!(
            call([PSCI_MIGRATE_INFO_TYPE.into(), 0, 0, 0]),
            PsciAction::Return(2)
        );
    }

    #[test]
    fn everything_else_is_not_supported() {
        for id in [
            PSCI_CPU_SUSPEND_64,
            PSCI_SYSTEM_SUSPEND_64,
            PSCI_SYSTEM_RESET2_64,
            PSCI_MIGRATE_INFO_UP_CPU_64,
            smccc::arch::SMCCC_ARCH_WORKAROUND_1,
            0xc200_0000, // SiP service
            0xbf00_0000, // Trusted OS
            0x8600_ff01, // vendor hypervisor service
            0xffff_ffff,
            0,
        ] {
            assert_eq!(call([id.into(), 1, 2, 3]), err(NOT_SUPPORTED), "{id:#x}");
        }
        assert_eq!(
            call([
                SMCCC_ARCH_FEATURES.into(),
                smccc::arch::SMCCC_ARCH_WORKAROUND_1.into(),
                0,
                0
            ]),
            err(smccc::arch::error::NOT_SUPPORTED)
        );
    }

    #[test]
    fn empty_partition_view_is_harmless() {
        let empty = FakeView(Vec::new());
        assert_eq!(
            dispatch(VcpuId(5), [PSCI_CPU_ON_64.into(), 0, 0x1000, 0], &empty),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            dispatch(VcpuId(5), [PSCI_AFFINITY_INFO_64.into(), 0, 0, 0], &empty),
            err(INVALID_PARAMETERS)
        );
    }
}
