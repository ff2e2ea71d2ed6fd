//! The hypervisor's heap: a buddy allocator (`buddy_system_allocator`) over a static array to
//! start with, grown into the rest of the hypervisor's memory once the board config is known,
//! and the largest amount it ever had allocated (its high-water mark), which the footprint
//! figures report.

use buddy_system_allocator::LockedHeap;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

/// The heap the boot starts with, enough to parse the board config.
const INITIAL_SIZE: usize = 1024 * 1024;

#[repr(C, align(4096))]
struct Space([u8; INITIAL_SIZE]);

static mut SPACE: Space = Space([0; INITIAL_SIZE]);

/// The allocator and its high-water mark.
pub struct Heap {
    inner: LockedHeap<32>,
    high_water: AtomicUsize,
}

#[global_allocator]
static HEAP: Heap = Heap {
    inner: LockedHeap::empty(),
    high_water: AtomicUsize::new(0),
};

// SAFETY: allocation and deallocation are the buddy allocator's, unchanged; the wrapper only
// reads its statistics afterwards.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // One lock for the allocation and the statistics it changed.
        let mut heap = self.inner.lock();
        let ptr = heap
            .alloc(layout)
            .map_or(core::ptr::null_mut(), |allocation| allocation.as_ptr());
        self.high_water
            .fetch_max(heap.stats_alloc_actual(), Ordering::Relaxed);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.inner.dealloc(ptr, layout) }
    }
}

/// Gives the heap its initial space. Called once, first thing on the primary CPU.
pub fn init() {
    // SAFETY: the array is used by nothing else, and this runs once, before any allocation.
    unsafe {
        HEAP.inner
            .lock()
            .init(core::ptr::addr_of_mut!(SPACE) as usize, INITIAL_SIZE)
    };
}

/// Adds `start..end` to the heap.
///
/// # Safety
/// The range must be mapped memory that nothing else uses, ever.
pub unsafe fn grow(start: usize, end: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.inner.lock().add_to_heap(start, end) };
}

/// Bytes allocated now, and at most so far (allocator granularity included).
pub fn usage() -> (usize, usize) {
    let now = HEAP.inner.lock().stats_alloc_actual();
    (now, HEAP.high_water.load(Ordering::Relaxed).max(now))
}
