#!/usr/bin/env python3
"""Smoke-test the Linux side of the IPC demo on plain QEMU (no hypervisor).

usage: ipc-native-smoke.py IMAGE INITRAMFS [--count N] [--timeout S]

IMAGE and INITRAMFS are the Linux recipe's outputs (`cargo run -p bulkhead-linux-guest
--example prepare -- build/cache/linux` prints them). QEMU virt's own device tree is dumped and
given a channel node as Bulkhead's guest device trees have it (see docs/channels.md), over the
last MiB of RAM, which `mem=` keeps from Linux (QEMU rewrites /memory in a given DTB), so that
it is not System RAM and /dev/mem may map it, as a channel outside partition memory is. No
hypervisor traps the doorbell page here (it is plain memory), so both endpoints run in this
Linux, as two processes polling through /dev/mem (`wait=poll`: they would otherwise both ask
for the GPIO line of step 4):

  1. a channel that does not exist is reported as such;
  2. a sender whose peer never attaches gives up with a clear error;
  3. an echo (endpoint 1) and a sender (endpoint 0) exchange COUNT requests and answers, and
     the sender prints `ipc: COUNT sent, COUNT verified, 0 lost`;
  4. doorbell interrupts through a GPIO line (the path for kernels without uio_pdrv_genirq):
     line 3 of QEMU's PL061, which QEMU pulses on `system_powerdown`, is named `ipc0`
     (`gpio-line-names`, the gpio-keys node that would claim it is removed); `role=listen`
     must hear two doorbells when the QEMU monitor pulses the line twice.

Needs qemu-system-aarch64 and fdtput (device-tree-compiler). Exits 0 when all four held.
"""
import argparse
import os
import re
import select
import subprocess
import sys
import tempfile
import time

MARKER = b"bulkhead-linux: userspace up"
RAM = 0x40000000
RAM_SIZE = 0x10000000
SHM = RAM + RAM_SIZE - 0x100000
SHM_SIZE = 0x10000
DOORBELL = SHM + SHM_SIZE


def make_dtb(path):
    # acpi=off: otherwise QEMU signals system_powerdown through ACPI instead of the PL061 line.
    qemu = ["qemu-system-aarch64", "-M", "virt,gic-version=3,acpi=off", "-cpu", "cortex-a72",
            "-smp", "2", "-m", "256M", "-nographic", "-nic", "none"]
    subprocess.run(qemu + ["-machine", f"dumpdtb={path}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    put = lambda *a: subprocess.run(["fdtput", path, *a], check=True)
    node = f"/ipc0@{SHM:x}"
    put("-c", node)
    put("-t", "s", node, "compatible", "bulkhead,channel", "generic-uio")
    put("-t", "x", node, "reg", "0", hex(SHM), "0", hex(SHM_SIZE), "0", hex(DOORBELL), "0",
        "0x1000")
    put("-t", "s", node, "reg-names", "shm", "doorbell")
    put("-t", "u", node, "bulkhead,endpoint", "0")
    put("-t", "s", node, "bulkhead,access", "read-write")
    put("-t", "s", "/pl061@9030000", "gpio-line-names", "", "", "", "ipc0", "", "", "", "")
    subprocess.run(["fdtput", "-r", path, "/gpio-keys"], check=False)
    return qemu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("initramfs")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dtb = os.path.join(tmp, "virt-ipc.dtb")
        qemu = make_dtb(dtb)
        cmd = qemu + ["-dtb", dtb, "-kernel", a.image, "-initrd", a.initramfs,
                      "-append", f"console=ttyAMA0 mem={(RAM_SIZE - 0x100000) >> 20}M"]
        # (console text to wait for, what to type then)
        script = [
            (MARKER,
             b"bulkhead-ipc-demo channel=nope; echo step1 rc=$?\n"
             b"bulkhead-ipc-demo endpoint=0 count=5 attach-timeout-ms=1500; echo step2 rc=$?\n"
             b"bulkhead-ipc-demo role=echo endpoint=1 count=0 timeout-ms=4000 wait=poll &\n"
             + f"bulkhead-ipc-demo endpoint=0 count={a.count} wait=poll; echo step3 rc=$?\n".encode()),
            (b"step3 rc=",
             b"wait; bulkhead-ipc-demo role=listen count=2 timeout-ms=30000; echo step4 rc=$?\n"),
            # QEMU's monitor (Ctrl-A c toggles it on the -nographic console) pulses line 3.
            (b"(doorbell interrupts: GPIO line 3", b"\x01csystem_powerdown\n\x01c"),
            (b"doorbell 1 at", b"\x01csystem_powerdown\n\x01c"),
            (b"step4 rc=", b"poweroff -f\n"),
        ]
        start = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        out = b""
        seen = 0
        fd = p.stdout.fileno()
        deadline = start + a.timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out += chunk
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                # Each step waits for its text after the previous step's.
                while script and (at := out.find(script[0][0], seen)) >= 0:
                    seen = at + len(script[0][0])
                    time.sleep(0.3)
                    p.stdin.write(script.pop(0)[1])
                    p.stdin.flush()
            elif p.poll() is not None:
                break
        if p.poll() is None:
            p.kill()
        p.wait()

    text = out.decode(errors="replace")
    checks = [
        ("unknown channel reported", 'no channel named "nope"' in text
         and "step1 rc=2" in text),
        ("absent peer reported", "peer never attached within 1500 ms" in text
         and "step2 rc=1" in text),
        (f"{a.count} round trips verified",
         f"ipc: {a.count} sent, {a.count} verified, 0 lost" in text and "step3 rc=0" in text),
        ("doorbells heard through a GPIO line", "heard 2 doorbells" in text
         and "step4 rc=0" in text),
    ]
    rates = re.findall(r"ipc-bench: window [0-9]+, ([0-9]+) round trips in ([0-9]+) ms", text)
    print("\n--- summary ---")
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    rates = [(int(n), int(ms)) for n, ms in rates if int(n) > 0]
    if rates:
        n, ms = rates[-1]
        print(f"native /dev/mem polling: {n} round trips in {ms} ms (pipelined)")
    print(f"total {time.monotonic() - start:.1f} s")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
