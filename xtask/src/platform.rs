//! The platforms xtask knows, as data: how a board config's platform is recognised (its root
//! `compatible`), which QEMU machine emulates it, and, for a board that boots from an SD card,
//! what goes on the card ([`SdCard`]: the boot firmware's Debian package and files, the device
//! tree, the kernel's name and the firmware's `config.txt`). Adding a board of the same family
//! is adding an entry here.

use anyhow::{anyhow, bail, Result};

/// A platform board configs are written for.
#[derive(Debug)]
pub struct Platform {
    /// Short name, for messages and `cargo xtask image --platform`.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// A root `compatible` string of its device tree that identifies it.
    pub compatible: &'static str,
    /// The QEMU machine type that emulates it.
    pub qemu_machine: &'static str,
    /// How its SD card is made, if it boots from one.
    pub sd_card: Option<&'static SdCard>,
    /// Changes the board's device tree needs to boot Linux on the QEMU machine, which models
    /// less than the board has (applied to the copy QEMU is given, never to the card's).
    pub qemu_dtb_fixes: &'static [DtbFix],
    /// What a Linux partition's `initrd = "linux"` is on this platform.
    pub linux_initrd: LinuxInitrd,
}

/// The initramfs a board's Linux partition gets for `initrd = "linux"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinuxInitrd {
    /// The Linux recipe's (`partitions/linux`): virtio disks.
    Recipe,
    /// The platform's native one ([`crate::native_linux`]): the recipe's with the platform's SD,
    /// FAT and watchdog modules, and the SD card check.
    Native,
}

/// A change to a device tree, made with `fdtput` (from dtc's package).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbFix {
    /// Set the node's `status` to `"disabled"`.
    Disable(&'static str),
    /// Delete a property of a node.
    DeleteProperty(&'static str, &'static str),
}

impl DtbFix {
    /// The `fdtput` arguments (after the file name) that make the change.
    pub fn fdtput_args(&self) -> Vec<&'static str> {
        match *self {
            DtbFix::Disable(node) => vec!["-t", "s", node, "status", "disabled"],
            DtbFix::DeleteProperty(node, prop) => vec!["-d", node, prop],
        }
    }
}

/// What a board boots from on an SD card with a FAT boot partition, read by its boot firmware.
#[derive(Debug)]
pub struct SdCard {
    /// The Debian package with the boot firmware, and the archive component it is in.
    pub firmware_package: &'static str,
    pub firmware_component: &'static str,
    /// Where the package keeps the firmware files.
    pub firmware_dir: &'static str,
    /// The firmware files the card needs, copied to the partition's root.
    pub firmware_files: &'static [&'static str],
    /// The board's device tree, below `usr/lib/linux-image-<release>/` of Debian's arm64 kernel
    /// package; it goes to the partition's root under its file name.
    pub dtb: &'static str,
    /// The name the firmware loads the kernel (our image) from.
    pub kernel_name: &'static str,
    /// `config.txt`, the firmware's configuration, for a Bulkhead image.
    pub config_txt: &'static str,
}

impl SdCard {
    /// The device tree's file name on the card.
    pub fn dtb_name(&self) -> &'static str {
        self.dtb.rsplit('/').next().unwrap_or(self.dtb)
    }
}

/// QEMU `virt`, what every board so far runs on.
pub const QEMU_VIRT: Platform = Platform {
    name: "qemu-virt",
    description: "QEMU virt (platforms/qemu-virt.dtsi)",
    compatible: "linux,dummy-virt",
    qemu_machine: "virt",
    sd_card: None,
    qemu_dtb_fixes: &[],
    linux_initrd: LinuxInitrd::Recipe,
};

/// The Raspberry Pi 4 Model B (BCM2711).
pub const RPI4: Platform = Platform {
    name: "rpi4",
    description: "Raspberry Pi 4 Model B (platforms/rpi4.dtsi)",
    compatible: "raspberrypi,4-model-b",
    qemu_machine: "raspi4b",
    sd_card: Some(&RPI4_SD_CARD),
    qemu_dtb_fixes: RPI4_QEMU_DTB_FIXES,
    linux_initrd: LinuxInitrd::Native,
};

/// What QEMU 10's `raspi4b` lacks that Linux trips over (QEMU itself disables the PCIe, RNG,
/// thermal and Ethernet nodes and says so):
/// - the HDMI block at 0x7ef00000 (its clock gates, interrupt controller, HDMI and DDC I2C
///   controllers): reading its registers is a synchronous external abort, which kills Linux;
/// - the firmware's GPIO expander, which drives the Wi-Fi's power sequence on the Arasan SDHCI
///   (`mmc@7e300000`): QEMU attaches its SD card (`-drive if=sd`) to that controller, whose
///   probe would wait for the power sequence forever.
const RPI4_QEMU_DTB_FIXES: &[DtbFix] = &[
    DtbFix::Disable("/soc/clock@7ef00000"),
    DtbFix::Disable("/soc/interrupt-controller@7ef00100"),
    DtbFix::Disable("/soc/hdmi@7ef00700"),
    DtbFix::Disable("/soc/i2c@7ef04500"),
    DtbFix::Disable("/soc/hdmi@7ef05700"),
    DtbFix::Disable("/soc/i2c@7ef09500"),
    DtbFix::DeleteProperty("/soc/mmc@7e300000", "mmc-pwrseq"),
];

const RPI4_SD_CARD: SdCard = SdCard {
    firmware_package: "raspi-firmware",
    firmware_component: "non-free-firmware",
    firmware_dir: "usr/lib/raspi-firmware",
    // start4.elf: the VideoCore firmware of the Pi 4 that reads config.txt, loads the kernel
    // and device tree and starts the ARM cores; fixup4.dat: its memory split.
    firmware_files: &["start4.elf", "fixup4.dat"],
    dtb: "broadcom/bcm2711-rpi-4-b.dtb",
    kernel_name: "kernel8.img",
    config_txt: RPI4_CONFIG_TXT,
};

/// `config.txt` for Bulkhead on a Pi 4.
const RPI4_CONFIG_TXT: &str = "\
# config.txt: read by the Raspberry Pi 4's boot firmware (start4.elf) from this partition.
# Written by `cargo xtask image` for Bulkhead; see README.md, \"Raspberry Pi 4\".

# Start the Cortex-A72 cores in AArch64 and load kernel8.img as an arm64 Linux Image. The
# firmware's built-in ARM stub enters it at EL2 on core 0 with x0 = the device tree; cores 1-3
# wait in the stub on the spin table (cpu-release-addr 0xd8, 0xe0, 0xe8, 0xf0).
arm_64bit=1
kernel=kernel8.img

# The device tree the firmware loads and passes in x0 (Debian's, next to this file).
device_tree=bcm2711-rpi-4-b.dtb

# The serial console: the firmware turns on the UART clocks (the PL011's at 48 MHz) and sets
# up the primary UART at 115200 baud; Bulkhead's console is the PL011 (UART0, 0xfe201000).
enable_uart=1
# On a Pi 4, Bluetooth has the PL011 and GPIO 14/15 carry the mini UART by default. Bulkhead
# puts GPIO 14/15 on the PL011 itself (function ALT0). Raspberry Pi OS does it with the
# firmware's disable-bt overlay, which Debian's raspi-firmware does not ship; with
# overlays/disable-bt.dtbo from the Raspberry Pi firmware on this partition, this works too:
#dtoverlay=disable-bt

# Interrupts go through the GIC-400 (the default on a Pi 4; said here because Bulkhead needs
# it: the legacy interrupt controller has no virtualization support).
enable_gic=1

# Uncomment to see the firmware's own progress on the serial console:
#uart_2ndstage=1
";

/// Every platform xtask knows.
pub const PLATFORMS: &[&Platform] = &[&QEMU_VIRT, &RPI4];

/// The platform named `name` (`--platform`).
pub fn by_name(name: &str) -> Result<&'static Platform> {
    PLATFORMS
        .iter()
        .copied()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            anyhow!(
                "unknown platform {name:?} (known: {})",
                PLATFORMS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The platform of a compiled board config, from its root `compatible`.
pub fn of_dtb(dtb: &[u8]) -> Result<&'static Platform> {
    let fdt = fdt::Fdt::new(dtb).map_err(|e| anyhow!("cannot read the board DTB: {e:?}"))?;
    let compatible: Vec<&str> = fdt
        .root()
        .property("compatible")
        .map(|p| {
            p.value
                .split(|&b| b == 0)
                .filter_map(|s| std::str::from_utf8(s).ok())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    of_compatible(&compatible)
}

/// The platform one of whose `compatible` strings is in `compatible`.
pub fn of_compatible(compatible: &[&str]) -> Result<&'static Platform> {
    if let Some(platform) = PLATFORMS
        .iter()
        .copied()
        .find(|p| compatible.contains(&p.compatible))
    {
        return Ok(platform);
    }
    bail!(
        "the board's root compatible {compatible:?} is none of the known platforms ({})",
        PLATFORMS
            .iter()
            .map(|p| format!("{:?} = {}", p.compatible, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The platform's SD card, or an error saying the platform does not boot from one.
pub fn sd_card(platform: &Platform) -> Result<&'static SdCard> {
    platform.sd_card.ok_or_else(|| {
        anyhow!(
            "platform {} ({}) does not boot from an SD card: `image` makes SD cards for {}",
            platform.name,
            platform.description,
            PLATFORMS
                .iter()
                .filter(|p| p.sd_card.is_some())
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_found_by_compatible_and_name() {
        assert_eq!(
            of_compatible(&["raspberrypi,4-model-b", "brcm,bcm2711"])
                .unwrap()
                .name,
            "rpi4"
        );
        assert_eq!(
            of_compatible(&["linux,dummy-virt"]).unwrap().name,
            "qemu-virt"
        );
        assert!(of_compatible(&["acme,board"]).is_err());
        assert_eq!(by_name("rpi4").unwrap().qemu_machine, "raspi4b");
        assert!(by_name("pi5").is_err());
    }

    #[test]
    fn only_sd_card_platforms_have_a_card() {
        assert_eq!(sd_card(&RPI4).unwrap().dtb_name(), "bcm2711-rpi-4-b.dtb");
        let err = sd_card(&QEMU_VIRT).unwrap_err().to_string();
        assert!(err.contains("does not boot from an SD card"), "{err}");
    }

    #[test]
    fn the_qemu_virt_platform_is_recognised_in_a_real_board() {
        let dts = crate::board::repo_root().join("board-configs/qemu-virt-hello.dts");
        let dtb = bulkhead_tools::dts::compile(&dts).unwrap();
        assert_eq!(of_dtb(&dtb).unwrap().name, "qemu-virt");
    }

    #[test]
    fn config_txt_names_the_kernel_and_device_tree() {
        let card = sd_card(&RPI4).unwrap();
        let lines: Vec<&str> = card.config_txt.lines().collect();
        assert!(lines.contains(&format!("kernel={}", card.kernel_name).as_str()));
        assert!(lines.contains(&format!("device_tree={}", card.dtb_name()).as_str()));
        assert!(lines.contains(&"arm_64bit=1"));
        assert!(lines.contains(&"enable_uart=1"));
    }
}
