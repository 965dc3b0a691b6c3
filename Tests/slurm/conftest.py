"""A throw-away Slurm cluster on loopback (Tests/slurm/cluster.sh) and Slurm-backed `bookend serve` daemons.

The cluster is started once per session and stopped by the pids it recorded. It must come up: under
`make slurm-test` a cluster that cannot start is a failure, never a skip.
"""
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER = os.path.join(ROOT, "Tests", "slurm", "cluster.sh")


class Cluster:
    def __init__(self, directory):
        self.directory = directory
        self.conf = os.path.join(directory, "slurm.conf")

    def run(self, *arguments, check=True):
        return subprocess.run(list(arguments), env=dict(os.environ, SLURM_CONF=self.conf), check=check,
                              capture_output=True, text=True)

    def script(self, command):
        subprocess.run([CLUSTER, command, self.directory], check=True)

    def saved_state_since(self, moment):
        """slurmctld wrote its job state after `moment`: a kill -9 from now on loses nothing it knew then."""
        try:
            return os.stat(os.path.join(self.directory, "state", "job_state")).st_mtime > moment
        except FileNotFoundError:
            return False

    @property
    def wide_nodes(self):
        """The Slurm nodes of partition `wide`, each a slurmd in a network namespace of its own; empty
        when this machine could not make the namespaces (cluster.sh then starts `localhost` only)."""
        try:
            with open(os.path.join(self.directory, "wide")) as handle:
                return handle.read().split()
        except FileNotFoundError:
            return []

    def allocations(self):
        """{job id: (state, name)} of every job slurmctld knows."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i|%T|%j").stdout
        return {line.split("|")[0]: tuple(line.split("|")[1:]) for line in out.splitlines() if line}


@pytest.fixture(scope="session")
def cluster():
    directory = tempfile.mkdtemp(prefix="bookend-slurm-")
    try:
        subprocess.run([CLUSTER, "start", directory], check=True)
    except subprocess.CalledProcessError:
        subprocess.run([CLUSTER, "stop", directory])
        raise
    yield Cluster(directory)
    subprocess.run([CLUSTER, "stop", directory])
    # BOOKEND_SLURM_KEEP=1 keeps the cluster's folder (its logs and state) for a look after a failure.
    if os.environ.get("BOOKEND_SLURM_KEEP") != "1":
        shutil.rmtree(directory, ignore_errors=True)


class Daemon:
    """`bookend serve` on a data directory that outlives it, so it can be killed and started again."""

    def __init__(self, cluster, arguments):
        self.binary = os.environ.get("BOOKEND_BIN") or os.path.join(ROOT, ".build", "debug", "bookend")
        self.data_dir = tempfile.mkdtemp(prefix="bookend-slurm-data-")
        self.cluster = cluster
        self.arguments = arguments
        self.process = None
        self.log = []

    def start(self):
        arguments = [self.binary, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                     "--account", "slurmacct"] + self.arguments
        env = dict(os.environ, SLURM_CONF=self.cluster.conf)
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, start_new_session=True)
        endpoint = None
        for line in self.process.stdout:
            self.log.append(line)
            if line.startswith("Endpoint:"):
                endpoint = line.split(":", 1)[1].strip()
                break
        if endpoint is None:
            self.process.kill()
            raise RuntimeError("bookend serve did not start:\n" + "".join(self.log))
        process = self.process
        threading.Thread(target=lambda: [self.log.append(line) for line in process.stdout], daemon=True).start()
        with open(os.path.join(self.data_dir, "account.key")) as handle:
            self.key = handle.read().strip()
        self.endpoint = endpoint
        return self

    def kill9(self):
        self.process.kill()
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def sql(self, query):
        """Rows of a read-only query on the daemon's database, as dicts."""
        out = subprocess.run([self.binary, "sql", "--data-dir", self.data_dir, "--output", "json", query],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def client(self):
        from azure.batch import BatchClient
        from azure.core.credentials import AzureNamedKeyCredential
        return BatchClient(self.endpoint, AzureNamedKeyCredential("slurmacct", self.key))


@pytest.fixture
def daemon_factory(cluster):
    daemons = []

    def make(*arguments):
        daemon = Daemon(cluster, list(arguments))
        daemons.append(daemon)
        return daemon.start()

    yield make
    for daemon in daemons:
        daemon.stop()
        # Shown by pytest when the test failed.
        print("--- bookend serve log (%s):\n%s" % (daemon.data_dir, "".join(daemon.log[-60:])))
        # Whatever a failed test left in Slurm goes with its daemon's allocations.
        for job_id, (state, name) in cluster.allocations().items():
            if name.startswith("bookend-") and state in ("PENDING", "RUNNING"):
                cluster.run("scancel", job_id, check=False)
        shutil.rmtree(daemon.data_dir, ignore_errors=True)
