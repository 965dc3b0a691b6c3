#!/bin/sh
# A throw-away Slurm cluster on this machine, for the Slurm tests.
#   cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld -D and slurmd -D in the
#                          background (their pids in DIR/*.pid) and waits until every node is idle;
#                          prints `export SLURM_CONF=DIR/slurm.conf`
#     Nodes: `localhost` (partition `debug`, the default) on loopback; and, when this machine lets
#     root make network namespaces, `n1` and `n2` (partition `wide`), each a slurmd in a network
#     namespace of its own with its own address on a bridge made here: two hosts as far as Slurm,
#     srun and a task's network are concerned. DIR/wide then names them; the namespaces and the
#     bridge are removed by `stop`.
#   cluster.sh stop DIR    stops exactly the processes whose pids are in DIR/*.pid
#   cluster.sh restart-ctld DIR   kill -9 of slurmctld, then a new one on the same state
# Only processes started here are ever signalled (by the pids recorded here).
set -eu
command=$1
dir=$(cd "$2" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF="$conf"

start_ctld() {
    slurmctld -D -f "$conf" >"$dir/slurmctld.log" 2>&1 &
    echo $! >"$dir/slurmctld.pid"
}

wait_idle() {
    want=$(cat "$dir/nodecount" 2>/dev/null || echo 1)
    i=0
    until [ "$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -Ec ' (idle|mixed|allocated)$')" -ge "$want" ]; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "the Slurm nodes did not come up ($want expected); sinfo says:" >&2
            sinfo -N >&2 || true
            tail -n 30 "$dir"/slurmctld.log "$dir"/slurmd*.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# Two network namespaces, each with an address on a bridge whose host side carries slurmctld's
# address; names and subnet come from the port, so two clusters on one machine do not collide.
# Prints nothing and returns 1 when the machine does not allow it (no CAP_NET_ADMIN, no veth).
make_namespaces() {
    tag=$1; net=$2
    ip link add "bkbr$tag" type bridge 2>/dev/null || return 1
    echo "link bkbr$tag" >>"$dir/netns"
    ip addr add "$net.1/24" dev "bkbr$tag" && ip link set "bkbr$tag" up || return 1
    for index in 1 2; do
        ns="bk$tag-n$index"
        ip netns add "$ns" || return 1
        echo "netns $ns" >>"$dir/netns"
        ip link add "bkv$tag$index" type veth peer name "bkp$tag$index" || return 1
        echo "link bkv$tag$index" >>"$dir/netns"
        ip link set "bkv$tag$index" master "bkbr$tag" && ip link set "bkv$tag$index" up || return 1
        ip link set "bkp$tag$index" netns "$ns" || return 1
        ip -n "$ns" addr add "$net.$((index + 1))/24" dev "bkp$tag$index" || return 1
        ip -n "$ns" link set "bkp$tag$index" up && ip -n "$ns" link set lo up || return 1
    done
    return 0
}

remove_namespaces() {
    [ -f "$dir/netns" ] || return 0
    while read -r kind name; do
        case $kind in
        netns) ip netns del "$name" 2>/dev/null || true ;;
        link) ip link del "$name" 2>/dev/null || true ;;
        esac
    done <"$dir/netns"
    rm -f "$dir/netns"
}

case $command in
start)
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
    chmod 0755 "$dir" "$dir/munge"
    chown munge:munge "$dir/munge"
    rm -f "$dir/munge/munge.key"
    mungekey -c -k "$dir/munge/munge.key"
    chown munge:munge "$dir/munge/munge.key"
    chmod 0600 "$dir/munge/munge.key"
    # munged runs as the munge user, as packaged; the socket folder must be 0755 for others to use it.
    setpriv --reuid=munge --regid=munge --clear-groups -- munged -F --force \
        --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" >"$dir/munged.out" 2>&1 &
    echo $! >"$dir/munged.pid"
    i=0
    until [ -S "$dir/munge/munge.sock" ]; do
        i=$((i + 1)); [ $i -gt 100 ] && { echo "munged did not start" >&2; cat "$dir/munged.out" "$dir/munge/munged.log" >&2; exit 1; }
        sleep 0.1
    done
    port=${SLURM_TEST_PORT:-$((20000 + $$ % 20000))}
    net="10.231.$((port % 250))"
    ctld_addr=127.0.0.1
    rm -f "$dir/wide"
    echo 1 >"$dir/nodecount"
    if [ "${BOOKEND_SLURM_ONE_HOST:-0}" != 1 ] && command -v ip >/dev/null && make_namespaces "$port" "$net"; then
        ctld_addr=$net.1
        printf 'n1 n2\n' >"$dir/wide"
        echo 3 >"$dir/nodecount"
    else
        remove_namespaces
        echo "cluster.sh: no network namespaces here; one node only" >&2
    fi
    cat >"$conf" <<CONF
ClusterName=bookendtest
SlurmctldHost=localhost($ctld_addr)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.daemonpid
SlurmdPidFile=$dir/slurmd-%n.daemonpid
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MpiDefault=none
# Messages to several nodes go straight from slurmctld, not relayed by one slurmd to another.
TreeWidth=65533
CONF
    # The namespaced nodes come first: while `localhost` is the only node Slurm has read, Slurm
    # takes every other name it looks up for it, and n1 would clash with it.
    if [ -f "$dir/wide" ]; then
        cat >>"$conf" <<CONF
NodeName=n1 NodeAddr=$net.2 CPUs=2 State=UNKNOWN
NodeName=n2 NodeAddr=$net.3 CPUs=2 State=UNKNOWN
PartitionName=wide Nodes=n1,n2 MaxTime=INFINITE State=UP
CONF
    fi
    cat >>"$conf" <<CONF
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    mkdir -p "$dir/spool/localhost" "$dir/spool/n1" "$dir/spool/n2"
    start_ctld
    slurmd -D -N localhost -f "$conf" >"$dir/slurmd.log" 2>&1 &
    echo $! >"$dir/slurmd.pid"
    if [ -f "$dir/wide" ]; then
        for index in 1 2; do
            # nsenter enters only the network namespace (`ip netns exec` would also remount /sys,
            # hiding the cgroup file system slurmd reads) and execs slurmd: $! is slurmd's own pid.
            nsenter --net="/run/netns/bk$port-n$index" slurmd -D -N "n$index" -f "$conf" >"$dir/slurmd-n$index.log" 2>&1 &
            echo $! >"$dir/slurmd-n$index.pid"
        done
    fi
    wait_idle
    echo "export SLURM_CONF=$conf"
    ;;
restart-ctld)
    kill -9 "$(cat "$dir/slurmctld.pid")" 2>/dev/null || true
    sleep 0.5
    start_ctld
    wait_idle
    ;;
kill-ctld)
    kill -9 "$(cat "$dir/slurmctld.pid")" 2>/dev/null || true
    ;;
start-ctld)
    start_ctld
    wait_idle
    ;;
stop)
    # Every job of this cluster ends through Slurm first, so no slurmstepd outlives its slurmd.
    if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
        ids=$(squeue -h -o %i 2>/dev/null || true)
        if [ -n "$ids" ]; then
            scancel $ids 2>/dev/null || true
            i=0
            while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        fi
    fi
    for name in slurmctld slurmd slurmd-n1 slurmd-n2 munged; do
        if [ -f "$dir/$name.pid" ]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
        fi
    done
    for name in slurmctld slurmd slurmd-n1 slurmd-n2 munged; do
        if [ -f "$dir/$name.pid" ]; then
            pid=$(cat "$dir/$name.pid"); i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$name.pid"
        fi
    done
    # A job slurmctld forgot (killed before it saved its state) cannot be cancelled through Slurm:
    # its slurmstepd and the job's processes outlive slurmd. The slurmstepds this cluster's slurmd
    # started carry its SLURM_CONF; they and everything below them (found before any is killed,
    # while the parent links still hold) end here.
    stepds=""
    for environ in /proc/[0-9]*/environ; do
        pid=${environ#/proc/}; pid=${pid%/environ}
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmstepd ] || continue
        if tr '\0' '\n' <"$environ" 2>/dev/null | grep -qx "SLURM_CONF=$conf"; then
            stepds="$stepds $pid"
        fi
    done
    victims=$stepds
    frontier=$stepds
    while [ -n "$frontier" ]; do
        next=""
        for pid in $frontier; do next="$next $(ps -o pid= --ppid "$pid" 2>/dev/null || true)"; done
        frontier=$(echo $next)
        victims="$victims $frontier"
    done
    for pid in $victims; do kill -9 "$pid" 2>/dev/null || true; done
    remove_namespaces
    ;;
*)
    echo "usage: cluster.sh start|stop|restart-ctld|kill-ctld|start-ctld DIR" >&2; exit 2 ;;
esac
