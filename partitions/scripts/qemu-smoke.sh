#!/bin/sh
# Smoke-tests a Bulkhead guest on bare QEMU virt (no hypervisor), reproducing the entry contract:
# EL1, MMU off, x0 = address of a DTB naming the partition.
#
# usage: partitions/scripts/qemu-smoke.sh <hello|trespasser|ipc-echo> [bootargs] [memory size, hex]
#   e.g. partitions/scripts/qemu-smoke.sh hello "count=3"
#        partitions/scripts/qemu-smoke.sh trespasser "" 0x1000000
#        SEED=50 partitions/scripts/qemu-smoke.sh ipc-echo "count=50"
#
# For ipc-echo the DTB also gets a channel node as Bulkhead's guest device trees have it
# (docs/channels.md): `ipc0`, 64 KiB of shared memory at 0x50000000, a doorbell page at
# 0x50010000 (plain RAM here: nothing traps it), SPI 100, endpoint 1. With SEED=N the shared
# memory is preloaded with a region in which endpoint 0 attached and queued N demo requests
# (made on the host by the channel crate's `seed_region` example), so the echo has work to do.
#
# QEMU's own DTB is dumped, given `/chosen/bulkhead,partition = "smoke-<guest>"` (plus bootargs,
# and optionally a smaller /memory reg) and loaded at 0x48000000. The guest ELF is the -kernel
# (loaded at 0x40000000); the generic loader sets the PC to a 3-instruction stub at 0x47ff0000
# that does `x0 = 0x48000000` and branches to 0x40000000. Needs qemu-system-aarch64 and fdtput.
set -eu
guest=${1:?usage: $0 <hello|trespasser> [bootargs] [memory size]}
bootargs=${2:-}
memsize=${3:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
elf=$root/target/aarch64-unknown-none/release/$guest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$root" && cargo build --quiet -p "$guest" --release --target aarch64-unknown-none)

qemu="qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a72 -m 1G -smp 2 -nographic -nic none"
$qemu -machine dumpdtb="$work/guest.dtb" >/dev/null 2>&1
fdtput -t s "$work/guest.dtb" /chosen bulkhead,partition "smoke-$guest"
extra=""
if [ "$guest" = ipc-echo ]; then
    node=/ipc0@50000000
    fdtput -c "$work/guest.dtb" $node
    fdtput -t s "$work/guest.dtb" $node compatible bulkhead,channel generic-uio
    fdtput -t x "$work/guest.dtb" $node reg 0 0x50000000 0 0x10000 0 0x50010000 0 0x1000
    fdtput -t x "$work/guest.dtb" $node interrupts 0 100 1
    fdtput -t u "$work/guest.dtb" $node bulkhead,endpoint 1
    fdtput -t s "$work/guest.dtb" $node bulkhead,access read-write
    if [ -n "${SEED:-}" ]; then
        (cd "$root" && cargo run --quiet -p bulkhead-channel --example seed_region -- \
            "$work/region.bin" 65536 "$SEED")
        extra="-device loader,file=$work/region.bin,addr=0x50000000,force-raw=on"
    fi
fi
[ -z "$bootargs" ] || fdtput -t s "$work/guest.dtb" /chosen bootargs "$bootargs"
[ -z "$memsize" ] || fdtput -t x "$work/guest.dtb" /memory@40000000 reg 0 0x40000000 0 "$memsize"

# movz x0, #0x4800, lsl #16 ; movz x1, #0x4000, lsl #16 ; br x1  (little-endian)
printf '\000\000\251\322\001\000\250\322\040\000\037\326' >"$work/stub.bin"

timeout 60 $qemu -kernel "$elf" \
    -device loader,file="$work/guest.dtb",addr=0x48000000,force-raw=on \
    -device loader,file="$work/stub.bin",addr=0x47ff0000,force-raw=on \
    -device loader,addr=0x47ff0000,cpu-num=0 $extra
