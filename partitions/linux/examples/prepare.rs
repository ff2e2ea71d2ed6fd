//! Prepares the Linux guest into a cache directory and prints what it made:
//! `cargo run -p bulkhead-linux-guest --example prepare -- <cache-dir> [<disk.img> <file> <text>]`.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cache = PathBuf::from(
        args.next()
            .context("usage: prepare <cache-dir> [disk file text]")?,
    );
    let start = Instant::now();
    let guest = bulkhead_linux_guest::prepare(&cache)?;
    let elapsed = start.elapsed();
    let image = std::fs::read(&guest.kernel)?;
    let header = bulkhead_linux_guest::ImageHeader::parse(&image)?;
    println!(
        "kernel:         {} ({} bytes)",
        guest.kernel.display(),
        image.len()
    );
    println!("header:         {header:x?}");
    println!(
        "initramfs:      {} ({} bytes)",
        guest.initramfs.display(),
        std::fs::metadata(&guest.initramfs)?.len()
    );
    println!("kernel_version: {}", guest.kernel_version);
    println!("kernel_package: {}", guest.kernel_package);
    println!("prepare took:   {elapsed:?}");
    if let (Some(disk), Some(file), Some(text)) = (args.next(), args.next(), args.next()) {
        bulkhead_linux_guest::make_disk_image(disk.as_ref(), &file, &text)?;
        println!("disk:           {disk} holds {file}");
    }
    Ok(())
}
