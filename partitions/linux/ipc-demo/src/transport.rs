//! The ways the demo waits for the peer's doorbell: the interrupt of a UIO device (a `read()`
//! of its event counter, re-armed by writing 1, as `uio_pdrv_genirq` requires), edges of a GPIO
//! line named after the channel, or polling when the kernel offers neither.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bulkhead_channel::{Transport, Wake};

use crate::gpio;
use crate::mapping::Mapping;

/// Where doorbell interrupts come from.
pub enum Interrupts {
    /// `/dev/uioN`.
    Uio(File),
    /// The event file of a GPIO line requested for rising edges.
    Gpio(File),
}

/// Doorbell interrupts delivered to this process.
pub struct IrqTransport {
    source: Interrupts,
    doorbell: Mapping,
    timeout_ms: i32,
    /// Interrupts taken (UIO) or edges seen (GPIO).
    pub interrupts: u64,
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl IrqTransport {
    /// Waits on `source` (enabling a UIO interrupt first); `timeout` bounds each wait.
    pub fn new(mut source: Interrupts, doorbell: Mapping, timeout: Duration) -> io::Result<Self> {
        if let Interrupts::Uio(dev) = &mut source {
            dev.write_all(&1u32.to_ne_bytes()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("enabling the UIO interrupt (write of 1) failed: {e}"),
                )
            })?;
        }
        Ok(Self {
            source,
            doorbell,
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            interrupts: 0,
        })
    }

    fn file(&self) -> &File {
        match &self.source {
            Interrupts::Uio(f) | Interrupts::Gpio(f) => f,
        }
    }
}

impl Transport for IrqTransport {
    fn ring(&mut self) -> Result<(), i32> {
        self.doorbell.ring();
        Ok(())
    }

    fn wait(&mut self) -> Result<Wake, i32> {
        let mut pfd = libc::pollfd {
            fd: self.file().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, self.timeout_ms) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(Wake::Signalled)
            } else {
                Err(errno(e))
            };
        }
        if ready == 0 {
            return Ok(Wake::TimedOut);
        }
        match &mut self.source {
            Interrupts::Uio(dev) => {
                // The event counter: reading it consumes the event; the interrupt stays
                // disabled (uio_pdrv_genirq disables it in its handler) until we write 1.
                let mut count = [0u8; 4];
                dev.read_exact(&mut count).map_err(errno)?;
                dev.write_all(&1u32.to_ne_bytes()).map_err(errno)?;
                self.interrupts += 1;
            }
            Interrupts::Gpio(line) => {
                self.interrupts += gpio::drain_events(line).map_err(errno)? as u64;
            }
        }
        Ok(Wake::Signalled)
    }
}

/// No interrupt: sleep a little and look again (every wait "succeeds"; the demo's own
/// progress deadline says when the peer is gone).
pub struct PollTransport {
    doorbell: Mapping,
    interval: Duration,
}

impl PollTransport {
    pub fn new(doorbell: Mapping, interval: Duration) -> Self {
        Self { doorbell, interval }
    }
}

impl Transport for PollTransport {
    fn ring(&mut self) -> Result<(), i32> {
        self.doorbell.ring();
        Ok(())
    }

    fn wait(&mut self) -> Result<Wake, i32> {
        std::thread::sleep(self.interval);
        Ok(Wake::Signalled)
    }
}
