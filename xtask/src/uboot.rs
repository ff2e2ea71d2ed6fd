//! `cargo xtask run --uboot`: boots the board's `bulkhead.img` through U-Boot, as most
//! development boards load a hypervisor, instead of through QEMU's own `-kernel` loader.
//!
//! Debian's `u-boot-qemu` build for QEMU `virt` (`qemu_arm64`) runs as the machine's firmware
//! (`-bios`). With `virtualization=on` and no `secure=on`, QEMU starts it at EL2 and answers
//! PSCI calls made with `SMC` itself, so Bulkhead's PSCI `CPU_ON` for the secondary cores works
//! as with `-kernel`. Given `-bios`, QEMU does not load `-kernel` into RAM but offers it to the
//! firmware through fw_cfg; U-Boot's `qfw load` copies it to `kernel_addr_r`.
//!
//! U-Boot reads its environment from the second flash bank (`pflash` unit 1, at 0x04000000): a
//! CRC32 followed by `name=value` strings. xtask writes one there, [`environment`], whose
//! `bootcmd` loads the image and `booti`s it at once: nothing is typed. `booti` reads the arm64
//! Image header: `image_size` (which the packer makes cover the appended bundle) says how much
//! to move, and flags bit 3 clear says "put it `text_offset` (2 MiB) above the start of RAM",
//! 0x40200000, exactly where Bulkhead is linked (`hypervisor/link.ld`). U-Boot prints
//! `Moving Image from 0x40400000 to 0x40200000` and enters the image at EL2 with the MMU and
//! caches off, as the arm64 boot protocol says.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Where U-Boot's environment is read from: `pflash` unit 1, offset 0; U-Boot's
/// `CONFIG_ENV_SIZE` for `qemu_arm64`.
pub const ENV_SIZE: usize = 0x40000;
/// Size of a QEMU `virt` flash bank (QEMU requires the file to be exactly this big).
pub const FLASH_SIZE: u64 = 64 * 1024 * 1024;
/// Where `qfw load` puts the image (U-Boot's default `kernel_addr_r` for `qemu_arm64`); `booti`
/// then moves it down to RAM base + `text_offset`.
pub const LOAD_ADDRESS: u64 = 0x4040_0000;
/// Where `qfw load` would put an initrd (QEMU has none to give: `-initrd` is not used).
pub const INITRD_ADDRESS: u64 = 0x4400_0000;
/// What U-Boot prints last before it enters the image: piped input waits for output after it
/// (U-Boot would take it as a key that stops autoboot).
pub const HANDOVER_MESSAGE: &str = "Starting kernel ...";
/// The first thing the boot command prints, so a log shows U-Boot ran it.
pub const BOOTCMD_BANNER: &str = "bulkhead: U-Boot loads bulkhead.img from fw_cfg and boots it";

/// The U-Boot environment's variables: no autoboot delay (a key pressed before U-Boot starts
/// still stops it), the load addresses, the boot command, and `bootargs` (which `booti` puts in
/// the device tree it passes: the hypervisor's boot options) if given.
pub fn variables(bootargs: Option<&str>) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("bootdelay", "0".to_owned()),
        ("kernel_addr_r", format!("{LOAD_ADDRESS:#x}")),
        ("ramdisk_addr_r", format!("{INITRD_ADDRESS:#x}")),
        (
            "bootcmd",
            format!(
                "echo {BOOTCMD_BANNER}; qfw load ${{kernel_addr_r}} ${{ramdisk_addr_r}} && \
                 booti ${{kernel_addr_r}} - ${{fdtcontroladdr}}"
            ),
        ),
    ];
    if let Some(args) = bootargs {
        vars.push(("bootargs", args.to_owned()));
    }
    vars
}

/// U-Boot's environment block: CRC32 (little-endian) of the data, then `name=value\0` strings
/// ending with an empty one, zero-padded to [`ENV_SIZE`].
pub fn environment(vars: &[(&str, String)]) -> Vec<u8> {
    let mut data = Vec::with_capacity(ENV_SIZE);
    for (name, value) in vars {
        data.extend_from_slice(name.as_bytes());
        data.push(b'=');
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    data.push(0);
    assert!(data.len() <= ENV_SIZE - 4, "U-Boot environment too big");
    data.resize(ENV_SIZE - 4, 0);
    let mut block = crc32fast::hash(&data).to_le_bytes().to_vec();
    block.extend_from_slice(&data);
    block
}

/// Writes the flash bank holding [`environment`] of [`variables`] to `path` (sparse: only the
/// environment is written, the rest reads as zeros).
pub fn write_env_flash(path: &Path, bootargs: Option<&str>) -> Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&environment(&variables(bootargs)))
        .and_then(|_| file.set_len(FLASH_SIZE))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// QEMU arguments that boot `image` through U-Boot (`uboot` is its `qemu_arm64` build,
/// `env_flash` the file of [`write_env_flash`]), replacing `-kernel image`.
pub fn qemu_args(uboot: &Path, env_flash: &Path, image: &Path) -> Vec<String> {
    vec![
        "-bios".into(),
        uboot.to_string_lossy().into_owned(),
        "-drive".into(),
        format!(
            "if=pflash,unit=1,format=raw,readonly=on,file={}",
            env_flash.to_string_lossy()
        ),
        // With -bios, QEMU hands -kernel to the firmware through fw_cfg.
        "-kernel".into(),
        image.to_string_lossy().into_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_has_crc_strings_and_padding() {
        let env = environment(&[("a", "1".into()), ("bootcmd", "echo x".into())]);
        assert_eq!(env.len(), ENV_SIZE);
        let crc = u32::from_le_bytes(env[..4].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&env[4..]));
        assert!(env[4..].starts_with(b"a=1\0bootcmd=echo x\0\0"));
        assert!(env[4 + 20..].iter().all(|&b| b == 0));
    }

    #[test]
    fn boot_command_loads_and_boots_the_image() {
        let vars = variables(Some("bulkhead.console=plain"));
        let get = |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("bootargs"), "bulkhead.console=plain");
        assert!(!variables(None).iter().any(|(n, _)| *n == "bootargs"));
        assert_eq!(get("kernel_addr_r"), "0x40400000");
        let bootcmd = get("bootcmd");
        assert!(bootcmd.contains("qfw load ${kernel_addr_r} ${ramdisk_addr_r} && booti"));
        assert!(bootcmd.ends_with("booti ${kernel_addr_r} - ${fdtcontroladdr}"));
    }

    #[test]
    fn flash_file_is_a_full_bank() {
        let path = std::env::temp_dir().join(format!("xtask-uboot-env-{}", std::process::id()));
        write_env_flash(&path, None).unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(data.len() as u64, FLASH_SIZE);
        assert_eq!(&data[..ENV_SIZE], environment(&variables(None)).as_slice());
    }
}
