/** The guest's /init: load modules, bring up the network, run the checks, power off. */
export const GUEST_INIT = `#!/bin/sh
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run
# Digests need crc32c via the crypto API, which asks for modules through this helper.
echo /bin/modprobe > /proc/sys/kernel/modprobe
for m in $(cat /modules.order); do insmod "/lib/modules/$(uname -r)/$m" 2>/dev/null; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
NQN=""; DIGEST=0; MODE=initiator
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    nearbpf.nqn=*) NQN="\${kv#*=}" ;;
    nearbpf.digest=*) DIGEST="\${kv#*=}" ;;
    nearbpf.mode=*) MODE="\${kv#*=}" ;;
  esac
done
if [ "$MODE" = nvmet ]; then
  # The kernel's own target on a 16 MiB RAM disk (brd): a reference for testing our client. A block
  # device rather than a file on the initramfs, whose ramfs cannot fallocate (Write Zeroes would fail).
  mount -t configfs none /sys/kernel/config
  S=/sys/kernel/config/nvmet/subsystems/$NQN
  mkdir "$S" && echo 1 > "$S/attr_allow_any_host"
  mkdir "$S/namespaces/1"
  echo -n /dev/ram0 > "$S/namespaces/1/device_path"
  echo 1 > "$S/namespaces/1/enable"
  P=/sys/kernel/config/nvmet/ports/1
  mkdir "$P"
  echo tcp > "$P/addr_trtype"; echo ipv4 > "$P/addr_adrfam"; echo 0.0.0.0 > "$P/addr_traddr"; echo 4420 > "$P/addr_trsvcid"
  ln -s "$S" "$P/subsystems/$NQN"
  echo NEARBPF-NVMET-READY
  while true; do sleep 1000; done
fi
ok() { echo "NEARBPF-STEP $1 ok"; }
fail() { echo "NEARBPF-STEP $1 fail"; }
run() { name=$1; shift; if "$@" >/tmp/log 2>&1; then ok "$name"; else fail "$name"; cat /tmp/log; fi; }
ADDR="-t tcp -a 10.0.2.100 -s 4420"
run discover nvme discover $ADDR
if nvme discover $ADDR 2>/dev/null | grep -q "$NQN"; then ok discovery-lists-subsystem; else fail discovery-lists-subsystem; fi
DG=""
[ "$DIGEST" = 1 ] && DG="--hdr-digest --data-digest"
run connect nvme connect $ADDR -n "$NQN" $DG
i=0
while [ ! -b /dev/nvme0n1 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
if [ -b /dev/nvme0n1 ]; then ok namespace-appeared; else fail namespace-appeared; fi
run id-ctrl nvme id-ctrl /dev/nvme0
run id-ns nvme id-ns /dev/nvme0n1
nvme list 2>&1
dd if=/dev/urandom of=/tmp/a bs=65536 count=32 2>/dev/null
run write-direct dd if=/tmp/a of=/dev/nvme0n1 bs=65536 oflag=direct conv=fsync
run read-direct dd if=/dev/nvme0n1 of=/tmp/b bs=65536 count=32 iflag=direct
run compare cmp /tmp/a /tmp/b
run write-large dd if=/tmp/a of=/dev/nvme0n1 bs=1048576 seek=4 oflag=direct
run flush nvme flush /dev/nvme0n1
run write-zeroes nvme write-zeroes /dev/nvme0n1 --start-block=8 --block-count=7
run deallocate nvme dsm /dev/nvme0n1 --ad --slbs=64 --blocks=64
run smart-log nvme smart-log /dev/nvme0
echo "NEARBPF-MD5 $(dd if=/dev/nvme0n1 bs=65536 count=32 iflag=direct 2>/dev/null | md5sum)"
echo "NEARBPF-MD5-LARGE $(dd if=/dev/nvme0n1 bs=1048576 skip=4 count=2 iflag=direct 2>/dev/null | md5sum)"
run disconnect nvme disconnect -n "$NQN"
dmesg | grep -i nvme | tail -n 20
echo NEARBPF-DONE
poweroff -f
`;
