/**
 * The guest's /init: load modules, bring up the network, run the checks, power off.
 *
 * Every check prints `NEARBPF-STEP <name> ok|fail <seconds>`; a failing one also prints its command's
 * output. Data the host compares with the namespace files is printed as
 * `NEARBPF-REGION <nsid> <offset> <length> <md5>` (bytes), informational lines as `NEARBPF-INFO`.
 * Kernel command line: nearbpf.nqn=, nearbpf.digest=0|1, nearbpf.full=0|1 (multi-queue 8 MiB I/O,
 * keep-alive across idle, reconnect, ext4, storage functions), nearbpf.mode=nvmet (reference target),
 * nearbpf.mode=auth (DH-HMAC-CHAP as the initiator: nearbpf.key=, nearbpf.ckey=, nearbpf.badkey=,
 * nearbpf.badckey=), nearbpf.mode=multipath (two ports, one multipath namespace, a path lost and back);
 * with nearbpf.mode=nvmet, nearbpf.hostnqn= plus nearbpf.key= (and nearbpf.ckey=)
 * make the reference target require DH-HMAC-CHAP of that host (nearbpf.hash=, nearbpf.dhgroup=).
 */
export const GUEST_INIT = `#!/bin/sh
export PATH=/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run /mnt
ln -sf /proc/mounts /etc/mtab
# Digests need crc32c via the crypto API, which asks for modules through this helper.
echo /bin/modprobe > /proc/sys/kernel/modprobe
for m in $(cat /modules.order); do insmod "/lib/modules/$(uname -r)/$m" 2>/dev/null; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
NQN=""; DIGEST=0; MODE=initiator; FULL=0; KEY=""; CKEY=""; BADKEY=""; BADCKEY=""; HOSTNQN=""; HASH=""; DHGROUP=""
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    nearbpf.nqn=*) NQN="\${kv#*=}" ;;
    nearbpf.key=*) KEY="\${kv#*=}" ;;
    nearbpf.ckey=*) CKEY="\${kv#*=}" ;;
    nearbpf.badkey=*) BADKEY="\${kv#*=}" ;;
    nearbpf.badckey=*) BADCKEY="\${kv#*=}" ;;
    nearbpf.hostnqn=*) HOSTNQN="\${kv#*=}" ;;
    nearbpf.hash=*) HASH="\${kv#*=}" ;;
    nearbpf.dhgroup=*) DHGROUP="\${kv#*=}" ;;
    nearbpf.digest=*) DIGEST="\${kv#*=}" ;;
    nearbpf.mode=*) MODE="\${kv#*=}" ;;
    nearbpf.full=*) FULL="\${kv#*=}" ;;
  esac
done
if [ "$MODE" = nvmet ]; then
  # The kernel's own target on a 16 MiB RAM disk (brd): a reference for testing our client. A block
  # device rather than a file on the initramfs, whose ramfs cannot fallocate (Write Zeroes would fail).
  mount -t configfs none /sys/kernel/config
  S=/sys/kernel/config/nvmet/subsystems/$NQN
  mkdir "$S"
  if [ -n "$KEY" ]; then
    # DH-HMAC-CHAP: only this host, and only with its key (and the controller key, if given).
    H=/sys/kernel/config/nvmet/hosts/$HOSTNQN
    mkdir "$H"
    echo -n "$KEY" > "$H/dhchap_key"
    [ -n "$CKEY" ] && echo -n "$CKEY" > "$H/dhchap_ctrl_key"
    [ -n "$HASH" ] && echo -n "$HASH" > "$H/dhchap_hash"
    [ -n "$DHGROUP" ] && echo -n "$DHGROUP" > "$H/dhchap_dhgroup"
    echo 0 > "$S/attr_allow_any_host"
    ln -s "$H" "$S/allowed_hosts/$HOSTNQN"
    echo "NEARBPF-INFO nvmet requires DH-HMAC-CHAP of $HOSTNQN: hash $(cat "$H/dhchap_hash") group $(cat "$H/dhchap_dhgroup")"
  else
    echo 1 > "$S/attr_allow_any_host"
  fi
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
. /sf/env

now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
elapsed() { awk "BEGIN { printf \\"%.1f\\", $(now) - $T0 }"; }
report() { echo "NEARBPF-STEP $1 $2 $(elapsed)"; T0=$(now); }
ok() { report "$1" ok; }
fail() { report "$1" fail; }
# run NAME SECONDS COMMAND...: COMMAND (a program or a function below) in a subshell, killed after
# SECONDS; its output goes to /tmp/log and is shown when it fails (its NEARBPF-INFO lines always).
run() {
  name=$1; secs=$2; shift 2
  ( "$@" ) >/tmp/log 2>&1 &
  pid=$!
  ( sleep "$secs"; echo "timed out after $secs s" >>/tmp/log; kill -9 $pid ) >/dev/null 2>&1 &
  dog=$!
  if wait $pid; then rc=0; else rc=1; fi
  kill $dog 2>/dev/null
  grep '^NEARBPF-INFO' /tmp/log
  if [ $rc = 0 ]; then ok "$name"; else fail "$name"; echo "--- $name failed: $*"; tail -n 60 /tmp/log; echo "---"; fi
}
# check NAME COMMAND...: a quick check in this shell (it may set variables).
check() { name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# CTRL = the controller (nvmeX) connected to $NQN; NS1 / NS2 = the block devices of namespaces 1 and 2
# (native multipath names the namespace after the subsystem, so look them up rather than guess).
find_devs() {
  CTRL=""; NS1=""; NS2=""
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] && CTRL=\${c##*/}
  done
  for b in /sys/block/nvme*; do
    n=\${b##*/}
    case "$n" in nvme*c*) continue ;; esac
    [ "$(cat "$b/device/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
    case "$(cat "$b/nsid" 2>/dev/null)" in 1) NS1=/dev/$n ;; 2) NS2=/dev/$n ;; esac
  done
}
wait_devs() {
  i=0
  while [ $i -lt 300 ]; do
    find_devs
    [ -n "$CTRL" ] && [ -b "$NS1" ] && [ -b "$NS2" ] && { echo "NEARBPF-INFO controller $CTRL namespaces $NS1 $NS2"; return 0; }
    sleep 0.1; i=$((i+1))
  done
  echo "NEARBPF-INFO no devices: controller '$CTRL' namespaces '$NS1' '$NS2'"; ls /sys/class/nvme /sys/block; return 1
}
wait_gone() {
  i=0
  while [ $i -lt 300 ]; do find_devs; [ -z "$CTRL" ] && return 0; sleep 0.1; i=$((i+1)); done
  return 1
}
io_queues() {
  q=$(cat /sys/class/nvme/$CTRL/queue_count)
  echo "NEARBPF-INFO queue_count $q (admin + I/O queues)"
  [ "$q" -ge 3 ]
}

ADDR="-t tcp -a 10.0.2.100 -s 4420"
DG=""
[ "$DIGEST" = 1 ] && DG="--hdr-digest --data-digest"
# At least two I/O queues and a short keep-alive timeout (5 s).
connect_ctrl() { nvme connect $ADDR -n "$NQN" -i 2 -k 5 $DG; }

# Three 8 MiB O_DIRECT transfers at 8, 24 and 40 MiB at once, each pinned to a CPU (one I/O queue per CPU).
MQ="a:8:1 b:24:2 c:40:1"
mq_prepare() { for r in a b c; do dd if=/dev/urandom of=/tmp/r8$r bs=1048576 count=8 2>/dev/null || return 1; done; }
mq_write() {
  pids=""
  for x in $MQ; do
    r=\${x%%:*}; rest=\${x#*:}; off=\${rest%%:*}; cpu=\${rest#*:}
    taskset $cpu dd if=/tmp/r8$r of="$NS1" bs=1048576 seek=$off oflag=direct & pids="$pids $!"
  done
  rc=0; for p in $pids; do wait $p || rc=1; done; return $rc
}
mq_read() {
  pids=""
  for x in $MQ; do
    r=\${x%%:*}; rest=\${x#*:}; off=\${rest%%:*}; cpu=\${rest#*:}
    taskset $cpu dd if="$NS1" of=/tmp/b8$r bs=1048576 skip=$off count=8 iflag=direct & pids="$pids $!"
  done
  rc=0; for p in $pids; do wait $p || rc=1; done; return $rc
}
mq_compare() { cmp /tmp/r8a /tmp/b8a && cmp /tmp/r8b /tmp/b8b && cmp /tmp/r8c /tmp/b8c; }

alive_after_idle() {
  s=$(cat /sys/class/nvme/$CTRL/state); c=$(cat /sys/class/nvme/$CTRL/cntlid)
  echo "state $s cntlid $c (before the idle period: $CNTLID0)"
  [ "$s" = live ] && [ "$c" = "$CNTLID0" ] || return 1
  dd if="$NS1" of=/tmp/idle bs=1048576 skip=8 count=8 iflag=direct && cmp /tmp/idle /tmp/r8a
}
reconnect_read() { dd if="$NS1" of=/tmp/again bs=1048576 skip=24 count=8 iflag=direct && cmp /tmp/again /tmp/r8b; }
reconnect_write() {
  dd if=/tmp/a of="$NS1" bs=1048576 seek=56 oflag=direct && dd if="$NS1" of=/tmp/c bs=1048576 skip=56 count=2 iflag=direct && cmp /tmp/a /tmp/c
}

ext4_write() {
  mkdir -p /mnt/d && cp /tmp/r8a /mnt/big || return 1
  i=0; while [ $i -lt 100 ]; do echo "file $i" > /mnt/d/f$i || return 1; i=$((i+1)); done
  sync
}
ext4_verify() {
  mount -t ext4 -o ro "$NS2" /mnt || return 1
  rc=0
  cmp /mnt/big /tmp/r8a || rc=1
  [ "$(cat /mnt/d/f99)" = "file 99" ] || rc=1
  [ "$(ls /mnt/d | wc -l)" = 100 ] || rc=1
  umount /mnt || rc=1
  return $rc
}

# DW0 as nvme-cli prints it: "NVMe command result:0000002a" (2.3) or "... is Success and result: 0x0000002a".
result_of() { sed -nE 's/.*[Rr]esult: *(0x)?([0-9a-fA-F]+).*/\\2/p' "$1" | head -n 1; }
# passthru OUT nvme-args...: run nvme, keep its output in OUT, show it, fail if nvme fails.
passthru() { out=$1; shift; nvme "$@" >"$out" 2>&1; rc=$?; echo "nvme $*"; head -n 20 "$out"; return $rc; }
sf_load_one() {
  passthru /tmp/sf.out admin-passthru /dev/$CTRL --opcode=0xc1 --cdw10=0 --cdw11=$SF_PLUS1_SIZE --cdw12=1 \\
    --data-len=$SF_PLUS1_SIZE --input-file=/sf/plus1.img -w || return 1
  h=$(result_of /tmp/sf.out); [ -n "$h" ] || return 1
  echo $((0x$h)) > /tmp/h1; echo "NEARBPF-INFO plus-one loaded: handle $(cat /tmp/h1)"; [ "$(cat /tmp/h1)" != 0 ]
}
sf_load_chunks() {
  passthru /tmp/sf.out admin-passthru /dev/$CTRL --opcode=0xc1 --cdw10=0 --cdw11=$SF_READ_SIZE --cdw12=2 \\
    --data-len=$SF_READ_PART0 --input-file=/sf/readu64.part0 -w || return 1
  passthru /tmp/sf.out admin-passthru /dev/$CTRL --opcode=0xc1 --cdw10=$SF_READ_PART0 --cdw11=$SF_READ_SIZE --cdw12=2 \\
    --data-len=$SF_READ_PART1 --input-file=/sf/readu64.part1 -w || return 1
  h=$(result_of /tmp/sf.out); [ -n "$h" ] || return 1
  echo $((0x$h)) > /tmp/h2; echo "NEARBPF-INFO read-u64 loaded in 2 chunks: handle $(cat /tmp/h2)"; [ "$(cat /tmp/h2)" != 0 ] && [ "$(cat /tmp/h2)" != "$(cat /tmp/h1)" ]
}
# sf_list COUNT [NAME...]: LIST_PROGRAMS (raw data) says COUNT programs and names each NAME.
sf_list() {
  want=$1; shift
  nvme admin-passthru /dev/$CTRL --opcode=0xc2 --data-len=4096 -r -b >/tmp/list.bin 2>/tmp/list.err || { cat /tmp/list.err; return 1; }
  n=$(od -An -tu4 -N4 /tmp/list.bin | tr -d ' ')
  echo "NEARBPF-INFO listed $n programs: $(strings /tmp/list.bin | tr '\\n' ' ')"
  [ "$n" = "$want" ] || return 1
  for name in "$@"; do grep -q "$name" /tmp/list.bin || { echo "$name not listed"; return 1; }; done
}
sf_exec_plus1() {
  p0=41
  passthru /tmp/sf.out io-passthru "$NS1" --opcode=0x82 --namespace-id=1 --cdw2=$p0 --cdw12=$(cat /tmp/h1) --data-len=4096 -r || return 1
  r=$(result_of /tmp/sf.out); echo "NEARBPF-INFO plus-one($p0) -> 0x$r"; [ -n "$r" ] && [ $((0x$r)) -eq $((p0 + 1)) ]
}
sf_exec_read() {
  dd if=/sf/block.bin of="$NS1" bs=512 seek=$SF_BLOCK_LBA512 oflag=direct || return 1
  passthru /tmp/sf.out io-passthru "$NS1" --opcode=0x82 --namespace-id=1 --cdw2=$SF_BLOCK_OFFSET --cdw12=$(cat /tmp/h2) --data-len=4096 -r || return 1
  r=$(result_of /tmp/sf.out); echo "NEARBPF-INFO read-u64($SF_BLOCK_OFFSET) -> 0x$r (want 0x$SF_READ_DW0)"
  [ -n "$r" ] && [ $((0x$r)) -eq $((0x$SF_READ_DW0)) ]
}
sf_exec_output() {
  nvme io-passthru "$NS1" --opcode=0x82 --namespace-id=1 --cdw2=$SF_BLOCK_OFFSET --cdw12=$(cat /tmp/h2) --data-len=4096 -r -b \\
    >/tmp/exec.bin 2>/tmp/exec.err || { cat /tmp/exec.err; return 1; }
  head -c 8 /tmp/exec.bin > /tmp/exec8.bin
  echo "NEARBPF-INFO read-u64 output starts with: $(od -An -c -N8 /tmp/exec.bin)"
  cmp /tmp/exec8.bin /sf/value.bin
}
sf_unload() { passthru /tmp/sf.out admin-passthru /dev/$CTRL --opcode=0xc4 --cdw10=$(cat /tmp/$1); }
sf_exec_unloaded() {
  if passthru /tmp/sf.out io-passthru "$NS1" --opcode=0x82 --namespace-id=1 --cdw2=41 --cdw12=$(cat /tmp/h1) --data-len=4096 -r; then
    echo "EXECUTE of an unloaded handle succeeded"; return 1
  fi
  echo "NEARBPF-INFO EXECUTE of the unloaded handle: $(grep -i status /tmp/sf.out | head -n 1)"
}

# region NSID DEV OFFSET LENGTH (bytes, multiples of 64 KiB): md5 for the host to compare with the file.
region() {
  bs=65536; [ $(($3 % 1048576)) = 0 ] && [ $(($4 % 1048576)) = 0 ] && bs=1048576
  echo "NEARBPF-REGION $1 $3 $4 $(dd if=$2 bs=$bs skip=$(($3 / bs)) count=$(($4 / bs)) iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
}

if [ "$MODE" = auth ]; then
  # DH-HMAC-CHAP against our target: the right key (plain; digests and 2 I/O queues; bidirectional)
  # connects and moves data; a wrong or missing key, and a wrong controller key, are refused.
  dd if=/dev/urandom of=/tmp/a bs=65536 count=4 2>/dev/null
  auth_session() {
    nvme connect $ADDR -n "$NQN" "$@" || return 1
    rc=0
    wait_devs || rc=1
    [ $rc = 0 ] && echo "NEARBPF-INFO queue_count $(cat /sys/class/nvme/$CTRL/queue_count)"
    [ $rc = 0 ] && { dd if=/tmp/a of="$NS1" bs=65536 oflag=direct && dd if="$NS1" of=/tmp/b bs=65536 count=4 iflag=direct && cmp /tmp/a /tmp/b; } || rc=1
    nvme disconnect -n "$NQN" || rc=1
    wait_gone || rc=1
    return $rc
  }
  queues_at_least() { minq=$1; shift; auth_session "$@" >/tmp/q 2>&1; rc=$?; cat /tmp/q; [ $rc = 0 ] && [ "$(sed -n 's/.*queue_count //p' /tmp/q)" -ge "$minq" ]; }
  refused() {
    if nvme connect $ADDR -n "$NQN" "$@"; then echo "connect succeeded"; nvme disconnect -n "$NQN"; return 1; fi
    find_devs; [ -z "$CTRL" ]
  }
  run auth-plain 90 auth_session -i 1 --dhchap-secret="$KEY"
  run auth-digests-2-queues 90 queues_at_least 3 -i 2 --hdr-digest --data-digest --dhchap-secret="$KEY"
  run auth-bidirectional 90 auth_session -i 2 --dhchap-secret="$KEY" --dhchap-ctrl-secret="$CKEY"
  run auth-wrong-key-refused 90 refused -i 1 --dhchap-secret="$BADKEY"
  run auth-missing-key-refused 90 refused -i 1
  run auth-wrong-ctrl-key-refused 90 refused -i 1 --dhchap-secret="$KEY" --dhchap-ctrl-secret="$BADCKEY"
  dmesg | grep -i -E 'nvme|auth' | tail -n 40
  echo NEARBPF-DONE
  poweroff -f
fi

if [ "$MODE" = multipath ]; then
  # Linux native multipath over two ports of one target (10.0.2.100:4420 and :4421): one namespace
  # device with two paths, round-robin I/O on both, a path lost under I/O (no error reaches dd), the
  # path back. NEARBPF-REQ lines ask the host to act (port-down, port-up) or to look (rr-done, reconnected).
  P1="-t tcp -a 10.0.2.100 -s 4420"; P2="-t tcp -a 10.0.2.100 -s 4421"
  mp_connect() { nvme connect $1 -n "$NQN" -i 2 -k 5 --reconnect-delay=1 --ctrl-loss-tmo=120; }
  # ctrl_of PORT: the controller (nvmeX) of $NQN connected to that port.
  ctrl_of() {
    for c in /sys/class/nvme/nvme*; do
      [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] && grep -q "trsvcid=$1" "$c/address" 2>/dev/null && { echo "\${c##*/}"; return 0; }
    done
    return 1
  }
  state_of() { c=$(ctrl_of "$1") && cat "/sys/class/nvme/$c/state"; }
  # wait_state PORT live|notlive TENTHS
  wait_state() {
    i=0
    while [ $i -lt "$3" ]; do
      s=$(state_of "$1")
      if [ "$2" = live ]; then [ "$s" = live ] && return 0; else [ "$s" != live ] && { echo "NEARBPF-INFO port $1 path: $s"; return 0; }; fi
      sleep 0.1; i=$((i+1))
    done
    echo "port $1 path state: $(state_of "$1")"; return 1
  }
  # Linux scans a new controller's namespaces asynchronously: the second path can appear a moment
  # after \`nvme connect\` returns (seconds on a loaded host), so look for up to 10 s.
  one_namespace() {
    wait_devs || return 1
    i=0
    until paths_of_ns1 quiet; do
      i=$((i+1)); [ $i -ge 100 ] && { paths_of_ns1; return 1; }
      sleep 0.1
    done
    paths_of_ns1
  }
  # paths_of_ns1 [quiet]: one device for namespace 1 with a path through each port's controller.
  paths_of_ns1() {
    SUBSYS=""
    for s in /sys/class/nvme-subsystem/nvme-subsys*; do [ "$(cat "$s/subsysnqn")" = "$NQN" ] && SUBSYS=$s; done
    # The hidden per-path devices nvme<subsys>c<ctrl>n<ns> of namespace 1, one per controller.
    paths=$(ls /sys/block | grep -E "^nvme\${SUBSYS##*nvme-subsys}c[0-9]+n1$" | tr '\\n' ' ')
    npaths=$(echo $paths | wc -w)
    heads=0
    for b in /sys/block/nvme*; do
      case "\${b##*/}" in nvme*c*) continue ;; esac
      [ "$(cat "$b/device/subsysnqn" 2>/dev/null)" = "$NQN" ] && [ "$(cat "$b/nsid")" = 1 ] && heads=$((heads+1))
    done
    [ "$1" = quiet ] || echo "NEARBPF-INFO subsystem $SUBSYS: controllers $(ls "$SUBSYS" | grep -E '^nvme[0-9]+$' | tr '\\n' ' ')namespace 1 = $NS1 ($heads device, paths: $paths)"
    [ "$heads" = 1 ] && [ "$npaths" = 2 ] && [ "$(ctrl_of 4420)" != "$(ctrl_of 4421)" ]
  }
  round_robin() { echo round-robin > "$SUBSYS/iopolicy" && [ "$(cat "$SUBSYS/iopolicy")" = round-robin ]; }
  rr_io() {
    dd if=/tmp/a of="$NS1" bs=65536 oflag=direct || return 1
    dd if="$NS1" of=/tmp/b bs=65536 count=64 iflag=direct && cmp /tmp/a /tmp/b
  }
  # 32 writes of 256 KiB at 16 MiB, one every 0.2 s, while the host takes port 2 down.
  writer() {
    i=0
    while [ $i -lt 32 ]; do
      dd if=/tmp/m of="$NS1" bs=262144 skip=$i seek=$((64 + i)) count=1 oflag=direct 2>/tmp/writer.err || { cat /tmp/writer.err; return 1; }
      i=$((i+1)); sleep 0.2
    done
  }
  failover_verify() { dd if="$NS1" of=/tmp/n bs=262144 skip=64 count=32 iflag=direct && cmp /tmp/m /tmp/n; }
  dd if=/dev/urandom of=/tmp/a bs=65536 count=64 2>/dev/null
  dd if=/dev/urandom of=/tmp/m bs=262144 count=32 2>/dev/null
  run mp-discover-2-ports 60 sh -c "nvme discover $P1 | grep -c "subnqn: *$NQN" | grep -qx 2"
  run mp-connect-port1 60 mp_connect "$P1"
  run mp-connect-port2 60 mp_connect "$P2"
  check mp-one-namespace-two-paths one_namespace
  check mp-iopolicy-round-robin round_robin
  run mp-round-robin-io 120 rr_io
  echo "NEARBPF-REQ rr-done"
  writer >/tmp/writer.log 2>&1 &
  WRITER=$!
  echo "NEARBPF-REQ port-down"
  run mp-path-lost 60 wait_state 4421 notlive 600
  check mp-other-path-live wait_state 4420 live 10
  if wait $WRITER; then ok mp-writes-during-failover-no-error; else fail mp-writes-during-failover-no-error; cat /tmp/writer.log; fi
  run mp-failover-verify 60 failover_verify
  echo "NEARBPF-REQ port-up"
  run mp-path-reconnected 90 wait_state 4421 live 900
  run mp-io-after-reconnect 120 rr_io
  echo "NEARBPF-REQ reconnected"
  region 1 "$NS1" 0 4194304
  region 1 "$NS1" 16777216 8388608
  run mp-disconnect 60 nvme disconnect -n "$NQN"
  check mp-controllers-removed wait_gone
  dmesg | grep -i nvme | tail -n 40
  echo NEARBPF-DONE
  poweroff -f
fi

run discover 60 nvme discover $ADDR
if nvme discover $ADDR 2>/dev/null | grep -q "$NQN"; then ok discovery-lists-subsystem; else fail discovery-lists-subsystem; fi
run connect 60 connect_ctrl
check namespace-appeared wait_devs
check io-queues io_queues
run id-ctrl 30 nvme id-ctrl /dev/$CTRL
run id-ns 30 nvme id-ns "$NS1"
nvme list 2>&1
dd if=/dev/urandom of=/tmp/a bs=65536 count=32 2>/dev/null
run write-direct 60 dd if=/tmp/a of="$NS1" bs=65536 oflag=direct conv=fsync
run read-direct 60 dd if="$NS1" of=/tmp/b bs=65536 count=32 iflag=direct
run compare 10 cmp /tmp/a /tmp/b
run write-large 60 dd if=/tmp/a of="$NS1" bs=1048576 seek=4 oflag=direct
run flush 30 nvme flush "$NS1"
run write-zeroes 30 nvme write-zeroes "$NS1" --start-block=8 --block-count=7
run deallocate 30 nvme dsm "$NS1" --ad --slbs=64 --blocks=64
run smart-log 30 nvme smart-log /dev/$CTRL
run mq-prepare 60 mq_prepare
run mq-write-3x8MiB 180 mq_write
run mq-read-3x8MiB 180 mq_read
run mq-compare 30 mq_compare
if [ "$FULL" = 1 ]; then
  CNTLID0=$(cat /sys/class/nvme/$CTRL/cntlid)
  # KATO is 5 s: stay idle for more than twice that; the association must survive untouched.
  run idle-12s 30 sleep 12
  run alive-after-idle 60 alive_after_idle
  run disconnect-1 60 nvme disconnect -n "$NQN"
  check controller-removed wait_gone
  run reconnect 60 connect_ctrl
  check reconnect-namespaces wait_devs
  check reconnect-io-queues io_queues
  run reconnect-read-old-data 60 reconnect_read
  run reconnect-write-read 60 reconnect_write
  run ext4-mkfs 120 mkfs.ext4 -q -F "$NS2"
  run ext4-mount 60 mount -t ext4 "$NS2" /mnt
  run ext4-write-files 120 ext4_write
  run ext4-umount 60 umount /mnt
  run ext4-fsck 120 e2fsck -fn "$NS2"
  run ext4-remount-verify 120 ext4_verify
  run sf-load 30 sf_load_one
  run sf-load-chunked 30 sf_load_chunks
  run sf-list 30 sf_list 2 "$SF_PLUS1_NAME" "$SF_READ_NAME"
  run sf-exec-plus-one 30 sf_exec_plus1
  run sf-exec-read-u64 30 sf_exec_read
  run sf-exec-output 30 sf_exec_output
  run sf-unload 30 sf_unload h1
  run sf-exec-unloaded-fails 30 sf_exec_unloaded
  run sf-list-after-unload 30 sf_list 1 "$SF_READ_NAME"
  run sf-unload-last 30 sf_unload h2
  run sf-list-empty 30 sf_list 0
fi
region 1 "$NS1" 0 2097152
region 1 "$NS1" 4194304 2097152
region 1 "$NS1" 8388608 8388608
region 1 "$NS1" 25165824 8388608
region 1 "$NS1" 41943040 8388608
if [ "$FULL" = 1 ]; then
  region 1 "$NS1" 58720256 2097152
  region 1 "$NS1" $SF_BLOCK_OFFSET 65536
fi
echo "NEARBPF-INFO regions read back in $(elapsed) s"; T0=$(now)
run disconnect 60 nvme disconnect -n "$NQN"
dmesg | grep -i nvme | tail -n 30
echo NEARBPF-DONE
poweroff -f
`;
