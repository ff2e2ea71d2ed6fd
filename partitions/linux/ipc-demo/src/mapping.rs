//! Memory mappings of the channel (shared memory and doorbell page) from a UIO device or
//! `/dev/mem`, and the doorbell register. Both kernels' mappings of such physical ranges are
//! non-cacheable Device memory, so every access goes through `bulkhead_channel`'s aligned
//! 64-bit atomics or, for the doorbell, one aligned 32-bit volatile store.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};

use bulkhead_channel::{doorbell, SharedRegion};

/// A `MAP_SHARED` mapping, unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `file` at `offset` (page-aligned) read-write.
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        // SAFETY: a fresh mapping chosen by the kernel (null hint), of a file we hold open; the
        // result is checked before use and only unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The mapping as a channel region.
    pub fn region(&self) -> Result<SharedRegion<'_>, bulkhead_channel::Error> {
        // SAFETY: the mapping is live, readable and writable for `self.len` bytes as long as
        // `self` (the region borrows it), and this program accesses it only through the region.
        unsafe { SharedRegion::from_raw(self.ptr, self.len) }
    }

    /// Rings the doorbell whose page this mapping is: one 32-bit store to `RING`.
    pub fn ring(&self) {
        // Everything published before (ring indices, slots) is ordered before the doorbell
        // write, which the hypervisor traps.
        fence(Ordering::SeqCst);
        // SAFETY: `RING` is at offset 0 of the mapped doorbell page (at least 4 KiB, checked at
        // discovery), 4-byte aligned since mappings are page-aligned; a volatile store is the
        // MMIO access the hypervisor traps.
        unsafe { std::ptr::write_volatile(self.ptr.add(doorbell::RING).cast::<u32>(), 1) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which nothing uses any more (regions
        // borrow `self`).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The system's page size.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}
