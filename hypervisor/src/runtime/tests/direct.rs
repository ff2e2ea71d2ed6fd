//! The runtime with a `direct-interrupts` partition: the same board as the other tests, the
//! `ticker` on CPUs 2 and 3 taking its cores' physical interrupts itself. What is checked is the
//! policy around that: how its vCPUs start (no virtual CPU interface, the hypervisor's own
//! interrupts as FIQs), that its SGIs are physical but reach only its own cores, that the
//! hypervisor's FIQs still stop it, and that it gets no virtual interrupt nor anyone else's.

use super::*;

/// The hypervisor timer's INTID on the fake.
const HYP_TIMER: u32 = FakeHw::HYP_TIMER_IRQ;

/// The test board with the ticker on CPUs 2 and 3, `direct-interrupts`.
fn config_direct() -> BoardConfig {
    let mut config = config();
    let ticker = &mut config.partitions[TICKER.index()];
    ticker.cpus = vec![PcpuId(2), PcpuId(3)];
    ticker.direct_interrupts = true;
    validate::validate(&config).expect("the direct-interrupt test board is valid");
    config
}

/// A started system in which linux runs on CPU 0 and the ticker on CPUs 2 and 3.
fn system_direct() -> System<FakeHw> {
    let sys = System::new(FakeHw::default(), config_direct(), bundle()).unwrap();
    sys.start();
    enter(&sys, 0);
    enter(&sys, 2);
    assert_eq!(
        hvc(&sys, 2, [CPU_ON, 1, 0x4000_0000, 0]),
        (Continue::Guest, 0)
    );
    enter(&sys, 3);
    sys.hw.take_calls();
    sys
}

/// `msr ICC_SGI1R_EL1, x3` with `value` by the vCPU on `cpu`.
fn sgi1r(sys: &System<FakeHw>, cpu: usize, value: u64) -> Continue {
    let esr = (0x18 << 26) | (1 << 25) | (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
    let mut regs = TrapFrame::default();
    regs.x[3] = value;
    sys.hw.on_cpu(cpu);
    sys.handle_exit(
        PcpuId(cpu),
        &mut regs,
        Exit::SysReg(SysRegTrap::decode(esr)),
    )
}

#[test]
fn a_direct_vcpu_starts_on_the_physical_cpu_interface() {
    let sys = System::new(FakeHw::default(), config_direct(), bundle()).unwrap();
    sys.start();
    sys.hw.take_calls();
    sys.hw.on_cpu(2);
    let start = sys.next_vcpu_start(PcpuId(2)).expect("the ticker starts");
    assert!(start.direct_interrupts, "HCR_EL2.IMO = 0 for this vCPU");
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::DirectMode(PcpuId(2))));
    assert!(!calls.contains(&Call::ResetVcpuInterface));
    assert!(
        !calls.contains(&Call::SetEnabled(FakeHw::MAINTENANCE_IRQ, PcpuId(2), true)),
        "no virtual CPU interface, no maintenance interrupt"
    );
    for ppi in bulkhead_config::guest_view::GUEST_TIMER_PPIS {
        assert!(
            calls.contains(&Call::SetEnabled(ppi, PcpuId(2), false)),
            "the guest's timers stay off until it enables them"
        );
    }
    for sgi in (0..16).filter(|&sgi| sgi != FakeHw::KICK_SGI) {
        assert!(calls.contains(&Call::SetEnabled(sgi, PcpuId(2), false)));
    }
    assert!(!calls.contains(&Call::SetEnabled(FakeHw::KICK_SGI, PcpuId(2), false)));
    assert!(calls.contains(&Call::SetEnabled(HYP_TIMER, PcpuId(2), true)));
    // Linux, beside it, starts as always.
    sys.hw.on_cpu(0);
    let start = sys.next_vcpu_start(PcpuId(0)).expect("linux starts");
    assert!(!start.direct_interrupts);
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::ResetVcpuInterface));
    assert!(!calls.iter().any(|c| matches!(c, Call::DirectMode(_))));
}

/// A 32-bit write of `value` at `offset` in the ticker's GICR window by its vCPU on `cpu`.
fn gicr_write(sys: &System<FakeHw>, cpu: usize, offset: u64, value: u64) -> Continue {
    let gicr = sys.partitions[TICKER.index()].vgic.gicr.base.raw();
    access32(sys, cpu, gicr + offset, Some(value)).0
}

#[test]
fn a_direct_partitions_sgis_are_physical_and_reach_only_its_own_cores() {
    let sys = system_direct();
    // vCPU 1 enables SGIs 1 and the kick's INTID in its redistributor (GICR_ISENABLER0, in the
    // SGI frame of the second redistributor): SGI 1 on its own core, the kick left alone.
    let isenabler0 = 0x2_0000 + 0x1_0000 + 0x100;
    let value = (1 << 1) | (1 << FakeHw::KICK_SGI);
    assert_eq!(gicr_write(&sys, 3, isenabler0, value), Continue::Guest);
    assert_eq!(sys.hw.take_calls(), [Call::SetEnabled(1, PcpuId(3), true)]);
    // SGI 5 to the target list 0b1111 (Aff0 0..3): only its own two vCPUs exist for it.
    assert_eq!(sgi1r(&sys, 2, (5 << 24) | 0b1111), Continue::Guest);
    let calls = sys.hw.take_calls();
    let sent: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c, Call::SendSgi(..)))
        .collect();
    assert_eq!(
        sent,
        [&Call::SendSgi(PcpuId(2), 5), &Call::SendSgi(PcpuId(3), 5)]
    );
    assert!(!calls.iter().any(|c| matches!(c, Call::Kick(_))));
    // To all but itself (IRM): its other vCPU only.
    assert_eq!(sgi1r(&sys, 3, (1 << 40) | (6 << 24)), Continue::Guest);
    assert_eq!(sys.hw.take_calls(), [Call::SendSgi(PcpuId(2), 6)]);
    // The kick's INTID is the hypervisor's on these cores: dropped.
    assert_eq!(
        sgi1r(&sys, 2, (u64::from(FakeHw::KICK_SGI) << 24) | 0b10),
        Continue::Guest
    );
    assert!(sys.hw.take_calls().is_empty());
    // Nothing virtual went anywhere, linux's list registers included.
    for (p, vcpu) in [(TICKER, 0), (TICKER, 1), (LINUX, 0)] {
        assert!(pending(&sys, p, vcpu).is_empty());
    }
    sys.hw.on_cpu(0);
    assert!(sys.hw.lrs().iter().all(ListReg::is_free));
}

#[test]
fn a_direct_partition_cannot_enable_route_or_pend_another_partitions_spi() {
    let sys = system_direct();
    let bit = 1 << (PASSTHROUGH_SPI % 32);
    let word = u64::from(PASSTHROUGH_SPI / 32) * 4;
    // ISENABLER, ISPENDR, ISACTIVER and IROUTER of linux's SPI, by the ticker's vCPU 0.
    for (offset, value) in [
        (0x100 + word, bit),
        (0x200 + word, bit),
        (0x300 + word, bit),
        (0x6000 + u64::from(PASSTHROUGH_SPI) * 8, 2),
    ] {
        assert_eq!(
            access32(&sys, 2, GICD + offset, Some(value)).0,
            Continue::Guest,
            "RAZ/WI, not a fault"
        );
    }
    assert!(
        sys.hw.take_calls().is_empty(),
        "nothing reached the hardware"
    );
}

#[test]
fn the_hypervisors_interrupts_reach_a_direct_core_as_fiqs() {
    let sys = system_direct();
    // Its timer (the console's unfinished line) while the guest runs: served, the guest goes on.
    sys.hw.on_cpu(2);
    sys.hw.fiqs.lock().push_back(HYP_TIMER);
    assert_eq!(sys.handle_fiq_exit(PcpuId(2)), Continue::Guest);
    let calls = sys.hw.take_calls();
    assert!(calls.contains(&Call::CancelTimer));
    assert_eq!(calls.last(), Some(&Call::EndFiq(HYP_TIMER)));
    assert!(!calls.iter().any(|c| matches!(c, Call::PriorityDrop(_))));

    // vCPU 1 powers the partition off: CPU 2 is kicked, and its FIQ takes it out of the guest.
    let (next, _) = hvc(&sys, 3, [SYSTEM_OFF, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    assert!(sys.hw.take_calls().contains(&Call::Kick(PcpuId(2))));
    sys.hw.on_cpu(2);
    sys.hw.fiqs.lock().push_back(FakeHw::KICK_SGI);
    assert_eq!(sys.handle_fiq_exit(PcpuId(2)), Continue::Idle);
    assert_eq!(sys.hw.take_calls(), [Call::EndFiq(FakeHw::KICK_SGI)]);
    // Idle, its guest timers are disabled so that they cannot keep waking the core.
    sys.left_guest(PcpuId(2));
    let calls = sys.hw.take_calls();
    for ppi in bulkhead_config::guest_view::GUEST_TIMER_PPIS {
        assert!(calls.contains(&Call::SetEnabled(ppi, PcpuId(2), false)));
    }
    assert!(sys.next_vcpu_start(PcpuId(2)).is_none());
    // Linux on CPU 0 was not touched and runs on.
    assert!(!calls.iter().any(|c| matches!(c, Call::Kick(PcpuId(0)))));
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Running);
}

#[test]
fn a_direct_partition_gets_no_virtual_interrupt_and_polls_its_console() {
    let sys = system_direct();
    // The ticker enables its virtual UART's receive interrupt, and it in its distributor.
    for (ipa, value) in [
        (VUART + 0x38, 1 << 4),
        (GICD, 0x12),
        (GICD + 0x104, 1 << (UART_SPI % 32)),
    ] {
        assert_eq!(access32(&sys, 2, ipa, Some(value)).0, Continue::Guest);
    }
    sys.hw
        .typed
        .lock()
        .push_back(crate::console::Typed::Byte(TICKER, b'x'));
    sys.hw.on_cpu(0);
    sys.hw.irqs.lock().push_back(UART_SPI);
    sys.handle_irqs(PcpuId(0));
    for vcpu in 0..2 {
        assert!(pending(&sys, TICKER, vcpu).is_empty());
    }
    assert!(!sys
        .hw
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Kick(_))));
    // Its guest polls: the byte is there to read.
    assert_eq!(
        access32(&sys, 2, VUART, None),
        (Continue::Guest, u64::from(b'x'))
    );
}

#[test]
fn a_direct_partition_restarts_alone_in_direct_mode() {
    let sys = system_direct();
    all_back_at_el2(&sys, TICKER);
    let (next, _) = hvc(&sys, 3, [SYSTEM_RESET, 0, 0, 0]);
    assert_eq!(next, Continue::Idle);
    let calls = sys.hw.take_calls();
    assert!(
        calls.contains(&Call::Kick(PcpuId(2))),
        "vCPU 0's core is told"
    );
    assert!(
        !calls.contains(&Call::Kick(PcpuId(0))),
        "linux is left alone"
    );
    // CPU 2 takes the kick as a FIQ and starts vCPU 0 afresh, in direct mode again.
    sys.hw.on_cpu(2);
    sys.hw.fiqs.lock().push_back(FakeHw::KICK_SGI);
    sys.handle_fiqs(PcpuId(2));
    let start = sys.next_vcpu_start(PcpuId(2)).expect("vCPU 0 restarts");
    assert!(start.direct_interrupts);
    assert!(sys.hw.take_calls().contains(&Call::DirectMode(PcpuId(2))));
    assert_eq!(sys.partitions[LINUX.index()].state(), State::Running);
}
