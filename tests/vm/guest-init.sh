#!/bin/bash
# PID 1 of the throw-away ZFS guest (kernel command line: init=/darlings-init).
#   /dev/vda  the guest's root (attached with snapshot=on: stays pristine)
#   /dev/vdb  scratch disk for the pool
#   /dev/vdc  input: a tar holding run.sh and whatever it needs
#   /dev/vdd  output: a tar of $OUT is written onto the raw disk
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo "DARLINGS-VM-START uptime=$(cut -d' ' -f1 /proc/uptime)"
mkdir -p /tmp/in /tmp/out
tar -xf /dev/vdc -C /tmp/in
export OUT=/tmp/out IN=/tmp/in
bash /tmp/in/run.sh > "$OUT/guest.log" 2>&1
echo "$?" > "$OUT/status"
echo "DARLINGS-VM-DONE status=$(cat "$OUT/status") uptime=$(cut -d' ' -f1 /proc/uptime)"
tar -cf /dev/vdd -C "$OUT" .
sync
echo o > /proc/sysrq-trigger
sleep 30
