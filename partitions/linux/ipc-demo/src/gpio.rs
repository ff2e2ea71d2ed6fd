//! Doorbell interrupts through a GPIO line (Linux's GPIO character device, uAPI v2): for
//! kernels without `uio_pdrv_genirq` (Debian's), a hypervisor can show each Linux endpoint's
//! doorbell as an edge on a line of an emulated PL061 named after the channel
//! (`gpio-line-names`); `gpio-pl061` and the GPIO character device are built into Debian's
//! kernel. This module finds the line by name and waits for its rising edges.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

/// `struct gpiochip_info`.
#[repr(C)]
struct ChipInfo {
    name: [u8; 32],
    label: [u8; 32],
    lines: u32,
}

/// `struct gpio_v2_line_attribute`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LineAttribute {
    id: u32,
    padding: u32,
    value: u64,
}

/// `struct gpio_v2_line_config_attribute`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LineConfigAttribute {
    attr: LineAttribute,
    mask: u64,
}

/// `struct gpio_v2_line_config`.
#[repr(C)]
struct LineConfig {
    flags: u64,
    num_attrs: u32,
    padding: [u32; 5],
    attrs: [LineConfigAttribute; 10],
}

/// `struct gpio_v2_line_request`.
#[repr(C)]
struct LineRequest {
    offsets: [u32; 64],
    consumer: [u8; 32],
    config: LineConfig,
    num_lines: u32,
    event_buffer_size: u32,
    padding: [u32; 5],
    fd: i32,
}

/// `struct gpio_v2_line_info`.
#[repr(C)]
struct LineInfo {
    name: [u8; 32],
    consumer: [u8; 32],
    offset: u32,
    num_attrs: u32,
    flags: u64,
    attrs: [LineAttribute; 10],
    padding: [u32; 4],
}

/// Size of `struct gpio_v2_line_event`.
const EVENT_SIZE: usize = 48;

/// `_IOC(dir, 0xB4, nr, size)` of `<linux/gpio.h>`.
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    dir << 30 | (size as u64) << 16 | 0xb4 << 8 | nr
}
const GPIO_GET_CHIPINFO_IOCTL: u64 = ioc(2, 0x01, size_of::<ChipInfo>());
const GPIO_V2_GET_LINEINFO_IOCTL: u64 = ioc(3, 0x05, size_of::<LineInfo>());
const GPIO_V2_GET_LINE_IOCTL: u64 = ioc(3, 0x07, size_of::<LineRequest>());
const FLAG_INPUT: u64 = 1 << 2;
const FLAG_EDGE_RISING: u64 = 1 << 4;

/// A GPIO line: the chip's device and the line's offset on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub chip: PathBuf,
    pub offset: u32,
}

fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

fn ioctl<T>(file: &File, request: u64, arg: &mut T) -> io::Result<()> {
    // SAFETY: `arg` is the `repr(C)` structure the request number encodes (its size is part of
    // the number), valid for reads and writes for the duration of the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg as *mut T) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Finds the line named `name` on any `/dev/gpiochip*` below `root`.
pub fn find_line(root: &Path, name: &str) -> Option<Line> {
    let mut chips: Vec<PathBuf> = fs::read_dir(root.join("dev"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gpiochip"))
        })
        .collect();
    chips.sort();
    for chip in chips {
        let Ok(file) = File::open(&chip) else {
            continue;
        };
        // SAFETY: all-zero bytes are a valid value of these plain C structures.
        let mut info: ChipInfo = unsafe { std::mem::zeroed() };
        if ioctl(&file, GPIO_GET_CHIPINFO_IOCTL, &mut info).is_err() {
            continue;
        }
        for offset in 0..info.lines {
            // SAFETY: as above.
            let mut line: LineInfo = unsafe { std::mem::zeroed() };
            line.offset = offset;
            if ioctl(&file, GPIO_V2_GET_LINEINFO_IOCTL, &mut line).is_ok()
                && c_str(&line.name) == name.as_bytes()
            {
                return Some(Line { chip, offset });
            }
        }
    }
    None
}

/// Requests `line` as an input reporting rising edges; returns the line's event file.
pub fn request_edges(line: &Line) -> io::Result<File> {
    let chip = OpenOptions::new().read(true).write(true).open(&line.chip)?;
    // SAFETY: all-zero bytes are a valid value of this plain C structure.
    let mut req: LineRequest = unsafe { std::mem::zeroed() };
    req.offsets[0] = line.offset;
    req.num_lines = 1;
    req.config.flags = FLAG_INPUT | FLAG_EDGE_RISING;
    let consumer = b"bulkhead-ipc-demo";
    req.consumer[..consumer.len()].copy_from_slice(consumer);
    ioctl(&chip, GPIO_V2_GET_LINE_IOCTL, &mut req)?;
    // SAFETY: the kernel returned a new file descriptor for the line, which nothing else owns.
    Ok(unsafe { File::from_raw_fd(req.fd) })
}

/// Reads every queued edge event; returns how many there were. Call when `poll()` says the
/// line file is readable.
pub fn drain_events(line: &mut File) -> io::Result<usize> {
    let mut buf = [0u8; EVENT_SIZE * 16];
    let n = line.read(&mut buf)?;
    Ok(n / EVENT_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_layout_matches_linux_gpio_h() {
        assert_eq!(size_of::<ChipInfo>(), 68);
        assert_eq!(size_of::<LineAttribute>(), 16);
        assert_eq!(size_of::<LineConfigAttribute>(), 24);
        assert_eq!(size_of::<LineConfig>(), 272);
        assert_eq!(size_of::<LineRequest>(), 592);
        assert_eq!(size_of::<LineInfo>(), 256);
        assert_eq!(GPIO_GET_CHIPINFO_IOCTL, 0x8044_b401);
        assert_eq!(GPIO_V2_GET_LINEINFO_IOCTL, 0xc100_b405);
        assert_eq!(GPIO_V2_GET_LINE_IOCTL, 0xc250_b407);
    }

    #[test]
    fn no_chips_no_line() {
        assert_eq!(find_line(Path::new("/nonexistent"), "ipc0"), None);
    }
}
