//! The guests' panic handler: reports the panic on the console (if one was found) and powers the
//! partition off.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crate::println!("\nguest panic: {info}");
    crate::power_off()
}
