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
//!   answers for the CPU-vulnerability workarounds (`SMCCC_ARCH_WORKAROUND_1/2/3`) what the
//!   platform's firmware answered the hypervisor at boot ([`Workarounds`], found by
//!   [`query_workarounds`]); a guest's call of a workaround the firmware implements is passed
//!   to the firmware ([`PsciAction::Firmware`]), since only it can apply the mitigation.
//!
//! Everything else — `CPU_SUSPEND`, `SYSTEM_SUSPEND`, `SYSTEM_RESET2`, `MIGRATE`, the statistics
//! calls, vendor and Trusted OS calls — returns `NOT_SUPPORTED`. (The vendor-specific
//! hypervisor service's calls, Bulkhead's own, never get here: `runtime::hypercall` serves
//! them.) Note that PSCI 1.x formally
//! makes `CPU_SUSPEND` mandatory; guests (Linux included) cope with its absence by not using PSCI
//! idle states, and `PSCI_FEATURES` reports it as unsupported.
//!
//! Per SMCCC, the function ID is W0 (the upper half of x0 is ignored) and SMC32/HVC32 functions
//! only look at the low 32 bits of their arguments.

#![forbid(unsafe_code)]

use bulkhead_config::guest_view::vcpu_of_mpidr;
use bulkhead_config::{GuestPhysAddr, VcpuId};
use log::debug;
use smccc::arch::{
    SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2, SMCCC_ARCH_WORKAROUND_3,
    SMCCC_VERSION,
};
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
    /// Make this SMC32 call to the platform firmware and return its x0 to the caller: a
    /// CPU-vulnerability workaround the firmware implements.
    Firmware { function: u32, arg: u64 },
}

/// What the platform firmware answered `SMCCC_ARCH_FEATURES` for each CPU-vulnerability
/// workaround (`NOT_SUPPORTED` where its SMCCC is older than 1.1): 0 required, 1 implemented but
/// not required on these CPUs, negative not implemented or not needed (per the SMC Calling
/// Convention's definition of each). Guests are told the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workarounds {
    pub wa1: i32,
    pub wa2: i32,
    pub wa3: i32,
}

impl Workarounds {
    /// No workaround implemented (a firmware older than SMCCC 1.1).
    pub const NONE: Self = Self {
        wa1: NOT_SUPPORTED,
        wa2: NOT_SUPPORTED,
        wa3: NOT_SUPPORTED,
    };

    /// The firmware's answer for workaround `function`, if it is one.
    fn status(&self, function: u32) -> Option<i32> {
        match function {
            SMCCC_ARCH_WORKAROUND_1 => Some(self.wa1),
            SMCCC_ARCH_WORKAROUND_2 => Some(self.wa2),
            SMCCC_ARCH_WORKAROUND_3 => Some(self.wa3),
            _ => None,
        }
    }
}

/// Asks the platform firmware which workarounds it implements, through `call` (an SMC32 call of
/// `function` with one argument, returning x0). Only calls the firmware defines for its
/// version: `SMCCC_VERSION` only once `PSCI_FEATURES` says it exists (firmware that predates it,
/// like QEMU's built-in PSCI, may treat unknown calls as undefined instructions), and
/// `SMCCC_ARCH_FEATURES` only from SMCCC 1.1.
pub fn query_workarounds(call: &mut dyn FnMut(u32, u64) -> u64) -> Workarounds {
    if call(PSCI_FEATURES, SMCCC_VERSION.into()) as u32 != 0 {
        return Workarounds::NONE;
    }
    let version = call(SMCCC_VERSION, 0) as u32 as i32;
    if version < 0x1_0001 {
        return Workarounds::NONE;
    }
    let mut ask = |function: u32| call(SMCCC_ARCH_FEATURES, function.into()) as u32 as i32;
    Workarounds {
        wa1: ask(SMCCC_ARCH_WORKAROUND_1),
        wa2: ask(SMCCC_ARCH_WORKAROUND_2),
        wa3: ask(SMCCC_ARCH_WORKAROUND_3),
    }
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

/// Decides what a PSCI/SMCCC call from `caller_vcpu` of the partition described by `view` does,
/// on a platform whose firmware has `workarounds`. `regs` are the caller's x0..x3.
pub fn dispatch(
    caller_vcpu: VcpuId,
    regs: [u64; 4],
    view: &dyn PartitionView,
    workarounds: &Workarounds,
) -> PsciAction {
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
        SMCCC_ARCH_FEATURES => match args[0] as u32 {
            SMCCC_VERSION | SMCCC_ARCH_FEATURES => success(0),
            f => error(workarounds.status(f).unwrap_or(NOT_SUPPORTED)),
        },
        SMCCC_ARCH_WORKAROUND_1 | SMCCC_ARCH_WORKAROUND_2 | SMCCC_ARCH_WORKAROUND_3 => {
            // Only what the firmware implements reaches it (0 or 1, per SMCCC).
            match workarounds.status(function) {
                Some(0 | 1) => PsciAction::Firmware {
                    function,
                    arg: args[0],
                },
                _ => error(NOT_SUPPORTED),
            }
        }
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

    /// `SMCCC_ARCH_FEATURES` of `SMCCC_ARCH_WORKAROUND_2`: not needed, do not call.
    const NOT_REQUIRED_DO_NOT_INVOKE: i32 = -2;
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
        dispatch(VcpuId(0), regs, &view(), &Workarounds::NONE)
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
            SMCCC_ARCH_WORKAROUND_1,
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
                SMCCC_ARCH_WORKAROUND_1.into(),
                0,
                0
            ]),
            err(NOT_SUPPORTED),
            "nothing the firmware does not implement"
        );
    }

    #[test]
    fn workarounds_are_what_the_firmware_says() {
        let fw = Workarounds {
            wa1: 0,
            wa2: NOT_REQUIRED_DO_NOT_INVOKE,
            wa3: NOT_SUPPORTED,
        };
        let call = |regs| dispatch(VcpuId(0), regs, &view(), &fw);
        let features = |f: u32| call([SMCCC_ARCH_FEATURES.into(), f.into(), 0, 0]);
        assert_eq!(features(SMCCC_ARCH_WORKAROUND_1), PsciAction::Return(0));
        assert_eq!(features(SMCCC_ARCH_WORKAROUND_2), err(-2));
        assert_eq!(features(SMCCC_ARCH_WORKAROUND_3), err(NOT_SUPPORTED));
        assert_eq!(features(SMCCC_ARCH_FEATURES), PsciAction::Return(0));
        assert_eq!(features(SMCCC_VERSION), PsciAction::Return(0));
        assert_eq!(features(0x8000_1234), err(NOT_SUPPORTED));
        // Only the implemented one is passed to the firmware.
        assert_eq!(
            call([SMCCC_ARCH_WORKAROUND_1.into(), 0, 0, 0]),
            PsciAction::Firmware {
                function: SMCCC_ARCH_WORKAROUND_1,
                arg: 0
            }
        );
        assert_eq!(
            call([SMCCC_ARCH_WORKAROUND_2.into(), 1, 0, 0]),
            err(NOT_SUPPORTED)
        );
        assert_eq!(
            call([SMCCC_ARCH_WORKAROUND_3.into(), 0, 0, 0]),
            err(NOT_SUPPORTED)
        );
    }

    #[test]
    fn workarounds_are_queried_only_as_the_firmware_allows() {
        // QEMU's PSCI: no SMCCC_VERSION, so nothing else is asked.
        let mut asked = Vec::new();
        let w = query_workarounds(&mut |f, a| {
            asked.push((f, a));
            NOT_SUPPORTED as i64 as u64
        });
        assert_eq!(w, Workarounds::NONE);
        assert_eq!(asked, vec![(PSCI_FEATURES, u64::from(SMCCC_VERSION))]);
        // SMCCC 1.0: no ARCH_FEATURES.
        let w = query_workarounds(&mut |f, _| if f == SMCCC_VERSION { 0x1_0000 } else { 0 });
        assert_eq!(w, Workarounds::NONE);
        // TF-A on an affected core.
        let w = query_workarounds(&mut |f, a| match (f, a as u32) {
            (PSCI_FEATURES, _) => 0,
            (SMCCC_VERSION, _) => 0x1_0002,
            (SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1) => 0,
            (SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_2) => 1,
            _ => -1i64 as u64,
        });
        assert_eq!(
            w,
            Workarounds {
                wa1: 0,
                wa2: 1,
                wa3: -1
            }
        );
    }

    #[test]
    fn empty_partition_view_is_harmless() {
        let empty = FakeView(Vec::new());
        assert_eq!(
            dispatch(
                VcpuId(5),
                [PSCI_CPU_ON_64.into(), 0, 0x1000, 0],
                &empty,
                &Workarounds::NONE
            ),
            err(INVALID_PARAMETERS)
        );
        assert_eq!(
            dispatch(
                VcpuId(5),
                [PSCI_AFFINITY_INFO_64.into(), 0, 0, 0],
                &empty,
                &Workarounds::NONE
            ),
            err(INVALID_PARAMETERS)
        );
    }
}
