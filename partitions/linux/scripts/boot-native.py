#!/usr/bin/env python3
"""Boot the Linux guest on plain QEMU (no hypervisor) and measure time to userspace.

usage: boot-native.py IMAGE INITRAMFS DISK FILE [--eager] [--smp N] [--timeout S]

Starts qemu-system-aarch64 -M virt with the kernel, initramfs and DISK as a virtio-blk
(virtio-mmio) device, waits for the "bulkhead-linux: userspace up" marker, then types
`cat /mnt/FILE`, `grep -c ^processor /proc/cpuinfo` and `poweroff` (or as soon as the --send-on text shows up). With --eager the
commands are written to stdin right at start (before the kernel has even booted) to check
that early input is not lost. Prints the console and a summary; exits 0 when the file
contents were read back and QEMU exited by itself after poweroff.
"""
import argparse
import os
import select
import subprocess
import sys
import time

MARKER = b"bulkhead-linux: userspace up"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("initramfs")
    ap.add_argument("disk")
    ap.add_argument("file")
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--append", default="console=ttyAMA0")
    ap.add_argument("--send-on", default=MARKER.decode(),
                    help="console text after which the commands are typed (default: the marker)")
    a = ap.parse_args()

    cmd = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", str(a.smp),
        "-m", "256M", "-nographic", "-kernel", a.image, "-initrd", a.initramfs,
        "-append", a.append,
        "-drive", f"if=none,file={a.disk},format=raw,id=d0",
        "-device", "virtio-blk-device,drive=d0",
    ]
    commands = f"cat /mnt/{a.file}\ngrep -c ^processor /proc/cpuinfo\npoweroff\n".encode()
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    if a.eager:
        p.stdin.write(commands)
        p.stdin.flush()
    out = b""
    marker_at = None
    sent = a.eager
    send_on = a.send_on.encode()
    deadline = start + a.timeout
    fd = p.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            if marker_at is None and MARKER in out:
                marker_at = time.monotonic() - start
            if not sent and send_on in out:
                sent = True
                p.stdin.write(commands)
                p.stdin.flush()
        elif p.poll() is not None:
            break
    try:
        rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
        exited = True
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        exited = False
    total = time.monotonic() - start
    print("\n--- summary ---")
    print(f"time to userspace marker: {marker_at:.3f} s" if marker_at else "marker NOT seen")
    print(f"qemu exited by itself: {exited} (rc {rc}) after {total:.3f} s")
    return 0 if marker_at and exited else 1


if __name__ == "__main__":
    sys.exit(main())
