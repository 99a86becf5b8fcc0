#!/usr/bin/env bash
# A real two-node SLURM cluster on this machine, for the tests (tests/cluster/fixtures.py):
#
#   tests/cluster/slurm.sh up [DIR]    # installs Debian's slurm-wlm and munge when missing (root),
#                                      # starts munged, slurmctld and `slurmd -N n1|n2` with their
#                                      # state, logs and pid files in DIR (default: a new temp dir),
#                                      # waits until sinfo shows both nodes idle, and prints
#                                      # `export SLURM_CONF=DIR/slurm.conf` (last line of stdout)
#   tests/cluster/slurm.sh down DIR    # stops exactly the daemons that `up DIR` started
#
# Both nodes are 127.0.0.1 with slurmd ports of their own; no cgroups (proctrack/linuxproc,
# task/none), no accounting database, SlurmUser=root, JobRequeue=1 (jobs are requeued on a node
# failure or `scontrol requeue`; cred_expire=10 lets a requeued job start again after 10 s, not
# SLURM's default 120). Job ids start at a number of this cluster's own: Lightning derives
# MASTER_PORT from the id's last 4 digits, and pytest-xdist's workers each start a cluster.
# Node names n1, n2 are added to /etc/hosts (as 127.0.0.1) when they do not resolve, and removed
# again by `down`. `up` exits 3 with one line on stderr when SLURM cannot start here (not root, no
# packages, a daemon that does not come up): the tests skip (or fail under CI) with it.
set -euo pipefail

die() { echo "slurm.sh: $*" >&2; exit 3; }

free_ports() {  # N free TCP ports on 127.0.0.1
    python3 - "$1" <<'PY'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null && return
    [ "$(id -u)" = 0 ] || die "SLURM is not installed and installing it needs root (apt-get install slurm-wlm munge)"
    command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get to install it"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge; } >"$1/apt.log" 2>&1 \
        || die "apt-get install slurm-wlm munge failed (see $1/apt.log)"
}

write_conf() {  # DIR CTLD_PORT N1_PORT N2_PORT
    local dir=$1 host
    host=$(hostname -s)
    cat >"$dir/slurm.conf" <<CONF
ClusterName=torchlab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
FirstJobId=$(( $2 % 500 * 20 + 1 ))
MinJobAge=600
KillWait=30
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$3 CPUs=2 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$4 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
}

add_hosts() {  # node names resolve to 127.0.0.1 (Lightning's MASTER_ADDR is the first node's name)
    # Each cluster adds a line of its own (pytest-xdist's workers start one each) and removes only it.
    if getent hosts n1 >/dev/null && getent hosts n2 >/dev/null && ! grep -q '^127.0.0.1 n1 n2  # ' /etc/hosts; then
        return
    fi
    echo "127.0.0.1 n1 n2  # $1" >>/etc/hosts  # appended in place: /etc/hosts may be a bind mount
    touch "$1/hosts.added"
}

remove_hosts() {
    [ -f "$1/hosts.added" ] || return 0
    python3 - "$1" <<'PY'
import sys
with open("/etc/hosts", "r+") as hosts:  # rewritten in place, same inode
    kept = [line for line in hosts if line.rstrip("\n") != f"127.0.0.1 n1 n2  # {sys.argv[1]}"]
    hosts.seek(0), hosts.truncate(), hosts.writelines(kept)
PY
    rm -f "$1/hosts.added"
}

up() {
    local dir=${1:-$(mktemp -d /tmp/tl-slurm.XXXXXX)}
    [ "$(id -u)" = 0 ] || die "the test cluster runs its daemons as root (SlurmUser=root); this is uid $(id -u)"
    mkdir -p "$dir/state" "$dir/spool-n1" "$dir/spool-n2"
    chmod 700 "$dir"
    install_packages "$dir"
    # shellcheck disable=SC2046
    set -- $(free_ports 3)
    write_conf "$dir" "$1" "$2" "$3"
    export SLURM_CONF=$dir/slurm.conf
    add_hosts "$dir"
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge.key"
    munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
        --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" \
        || die "munged did not start (see $dir/munged.log)"
    slurmctld -f "$SLURM_CONF" || die "slurmctld did not start (see $dir/slurmctld.log)"
    for node in n1 n2; do
        slurmd -f "$SLURM_CONF" -N "$node" || die "slurmd -N $node did not start (see $dir/slurmd-$node.log)"
    done
    local start=$SECONDS
    until [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u | tr '\n' ' ')" = "n1 idle n2 idle " ]; do
        [ $((SECONDS - start)) -lt 60 ] || die "the nodes are not idle after 60 s: $(sinfo -h -N -o '%N %t %E' 2>&1 | tr '\n' ';') (see $dir/*.log)"
        sleep 0.5
    done
    echo "export SLURM_CONF=$SLURM_CONF"
}

down() {
    local dir=${1:?usage: slurm.sh down DIR}
    local pidfile pid
    for pidfile in "$dir"/slurmd-n1.pid "$dir"/slurmd-n2.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    remove_hosts "$dir"
}

case "${1:-}" in
    up) up "${2:-}" ;;
    down) down "${2:-}" ;;
    *) echo "usage: $0 up [DIR] | down DIR" >&2; exit 2 ;;
esac
