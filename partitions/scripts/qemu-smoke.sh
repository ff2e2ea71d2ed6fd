#!/bin/sh
# Smoke-tests a Bulkhead guest on bare QEMU virt (no hypervisor), reproducing the entry contract:
# EL1, MMU off, x0 = address of a DTB naming the partition.
#
# usage: partitions/scripts/qemu-smoke.sh <hello|trespasser> [bootargs] [memory size, hex]
#   e.g. partitions/scripts/qemu-smoke.sh hello "count=3"
#        partitions/scripts/qemu-smoke.sh trespasser "" 0x1000000
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

qemu="qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1G -smp 2 -nographic"
$qemu -machine dumpdtb="$work/guest.dtb" >/dev/null 2>&1
fdtput -t s "$work/guest.dtb" /chosen bulkhead,partition "smoke-$guest"
[ -z "$bootargs" ] || fdtput -t s "$work/guest.dtb" /chosen bootargs "$bootargs"
[ -z "$memsize" ] || fdtput -t x "$work/guest.dtb" /memory@40000000 reg 0 0x40000000 0 "$memsize"

# movz x0, #0x4800, lsl #16 ; movz x1, #0x4000, lsl #16 ; br x1  (little-endian)
printf '\000\000\251\322\001\000\250\322\040\000\037\326' >"$work/stub.bin"

timeout 60 $qemu -kernel "$elf" \
    -device loader,file="$work/guest.dtb",addr=0x48000000,force-raw=on \
    -device loader,file="$work/stub.bin",addr=0x47ff0000,force-raw=on \
    -device loader,addr=0x47ff0000,cpu-num=0
