#!/bin/sh
# A throw-away one-node Slurm cluster on loopback, for the Slurm tests.
#   cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld -D and slurmd -D in the
#                          background (their pids in DIR/*.pid) and waits until the node is idle;
#                          prints `export SLURM_CONF=DIR/slurm.conf`
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
    i=0
    until sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "the Slurm node did not come up; logs:" >&2
            tail -n 30 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
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
    cat >"$conf" <<CONF
ClusterName=bookendtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.daemonpid
SlurmdPidFile=$dir/slurmd.daemonpid
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
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    start_ctld
    slurmd -D -f "$conf" >"$dir/slurmd.log" 2>&1 &
    echo $! >"$dir/slurmd.pid"
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
    for name in slurmctld slurmd munged; do
        if [ -f "$dir/$name.pid" ]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
        fi
    done
    for name in slurmctld slurmd munged; do
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
    ;;
*)
    echo "usage: cluster.sh start|stop|restart-ctld|kill-ctld|start-ctld DIR" >&2; exit 2 ;;
esac
