"""Optuna studies on a PostgreSQL server, the storage of a search spread over several machines.

A module fixture starts a real server (Debian's ``postgresql`` package) in a
temporary folder on a free port of 127.0.0.1, with its unix socket in that
folder too, creates a user and a database as an administrator would, and
always stops the server. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user that the package creates.

``skcrater tune`` workers then share one study through a plain
``postgresql://user@host:port/db`` URL, as on several machines: concurrent
workers record every trial once, the trial of a worker killed mid-trial is
failed by the heartbeat and retried, and a later run resumes the study.

Without the server binaries or the psycopg driver the tests skip, except
under ``CI=true``, where ``.ci/run`` installs both and a missing one fails.
"""

import contextlib
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from skcrater.datasets import make_craters

ROOT = Path(__file__).resolve().parents[1]
STUDY = "craters"
#: Short heartbeat settings so that a killed worker's trial is stale in seconds. The grace
#: period leaves a live worker on 2 busy cores ample time between two heartbeats.
HEARTBEAT, GRACE = 1, 8
#: Upper bound on any one wait of these tests, so that a broken set-up fails instead of hanging.
PATIENCE = 240


def _unavailable(reason):
    """Skip, or fail under CI=true, where .ci/run installs what the tests need."""
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{reason}; under CI=true this test must run: .ci/run installs the Debian package "
            "postgresql and the test extra installs psycopg[binary]",
            pytrace=False,
        )
    pytest.skip(reason)


def _server_bin():
    """The folder of the newest installed PostgreSQL server's pg_ctl, or None."""

    def version(path):
        major = Path(path).parts[-3]
        return (int(major), major) if major.isdigit() else (0, major)

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def driver():
    """The DB-API module SQLAlchemy uses for a plain postgresql:// URL (psycopg since 2.1)."""
    import sqlalchemy

    dialect = sqlalchemy.engine.make_url("postgresql://").get_dialect()
    try:
        return dialect.import_dbapi()
    except ImportError as exc:
        _unavailable(
            f"the PostgreSQL driver {dialect.driver} of postgresql:// URLs is not installed "
            f"({exc}; pip install 'skcrater[postgres]')"
        )


class Server(NamedTuple):
    port: int
    folder: Path
    url: str  # of the database of the user "tuner", as a user of skcrater types it


@pytest.fixture(scope="module")
def server(driver):
    """A PostgreSQL server with a user ``tuner`` owning a database ``studies``."""
    bin_dir = _server_bin()
    if bin_dir is None:
        _unavailable(
            "no PostgreSQL server: no pg_ctl under /usr/lib/postgresql/*/bin nor on PATH "
            "(apt-get install postgresql)"
        )
    as_server_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root, and there is no system user postgres to run the server")
        if shutil.which("runuser"):
            as_server_user = ["runuser", "-u", "postgres", "--"]
        else:
            as_server_user = ["su", "postgres", "-s", "/bin/sh", "-c"]
    # not under pytest's tmp_path, which only root may enter
    folder = Path(tempfile.mkdtemp(prefix="skcrater-pg-", dir="/tmp" if as_server_user else None))
    if as_server_user:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, log = folder / "data", folder / "server.log"

    def run(*command):
        command = [str(part) for part in command]
        if as_server_user[:1] == ["su"]:
            command = [*as_server_user, shlex.join(command)]
        else:
            command = [*as_server_user, *command]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(
                f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"{server_log}",
                pytrace=False,
            )

    port = _free_port()
    started = False
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C")  # fmt: skip
        # fsync off: a throw-away server, and far faster on a busy CI disk
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
        started = True
        # what an administrator does once on the server (docs/user_guide/tuning.rst)
        admin = driver.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        admin.autocommit = True  # CREATE DATABASE runs outside transactions
        try:
            with admin.cursor() as cursor:
                cursor.execute("CREATE USER tuner")
                cursor.execute("CREATE DATABASE studies OWNER tuner")
        finally:
            admin.close()
        yield Server(port, folder, f"postgresql://tuner@127.0.0.1:{port}/studies")
    finally:
        if started:
            with contextlib.suppress(Exception):
                run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def course_data(tmp_path_factory):
    """Xtrain1.npy / Ytrain1.npy of 16x16 synthetic tiles, the course layout --data reads."""
    X, y = make_craters(40, image_size=16, random_state=0)
    folder = tmp_path_factory.mktemp("data")
    np.save(folder / "Xtrain1.npy", X)
    np.save(folder / "Ytrain1.npy", y)
    return folder


class Worker:
    """One ``skcrater tune`` process on the study, its output in files."""

    def __init__(self, name, data, url, n_trials, logs):
        self.name, self.out, self.err = name, logs / f"{name}.out", logs / f"{name}.err"
        command = [sys.executable, "-m", "skcrater.cli", "tune", "--data", str(data)]
        command += ["--n-trials", str(n_trials), "--cv", "2", "--max-epochs", "1"]
        command += ["--storage", url, "--study-name", STUDY]
        command += ["--heartbeat-interval", str(HEARTBEAT), "--grace-period", str(GRACE)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, env=env)

    def output(self):
        return f"--- {self.name} stdout\n{self.out.read_text()}--- stderr\n{self.err.read_text()}"

    def finish(self):
        """Wait for a successful exit; return the JSON summary it printed."""
        try:
            code = self.process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"worker {self.name} still running after {PATIENCE} s\n{self.output()}")
        assert code == 0, f"worker {self.name} exited with {code}\n{self.output()}"
        text = self.out.read_text()
        return json.loads(text[text.index("{\n") :])

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def _workers():
    """Workers started in the block, each killed at its end if still running."""
    started = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


#: A RUNNING trial that has recorded a heartbeat and its parameters: killed now, it is stale
#: after the grace period and its configuration can be retried. Optuna's tables, read directly.
RUNNING_TRIALS = """
SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id
WHERE s.study_name = %s AND t.state = 'RUNNING'
  AND EXISTS (SELECT 1 FROM trial_heartbeats h WHERE h.trial_id = t.trial_id)
  AND EXISTS (SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)
"""


def _kill_mid_trial(worker, connection):
    """SIGKILL ``worker`` while it runs a trial; return that trial's number.

    The worker is stopped (SIGSTOP) while the storage is read, so that its trial
    cannot finish between the read and the kill.
    """
    deadline = time.monotonic() + PATIENCE
    while True:
        if worker.process.poll() is not None:
            pytest.fail(f"worker {worker.name} exited before it could be killed\n{worker.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"worker {worker.name} ran no trial in {PATIENCE} s\n{worker.output()}")
        os.kill(worker.process.pid, signal.SIGSTOP)
        with connection.cursor() as cursor:
            cursor.execute(RUNNING_TRIALS, (STUDY,))
            running = [number for (number,) in cursor.fetchall()]
        if running:
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
            assert len(running) == 1, running  # the only worker on the study
            return running[0]
        os.kill(worker.process.pid, signal.SIGCONT)
        time.sleep(0.2)


def _retry_callback():
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated or experimental, depending on Optuna
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        return retry or optuna.storages.RetryFailedTrialCallback


def _retried(trial):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental
        return _retry_callback().retried_trial_number(trial)


@pytest.mark.slow
def test_workers_on_a_postgresql_server_share_a_study_and_retry_a_killed_trial(
    server, driver, course_data, tmp_path
):
    import optuna
    from optuna.trial import TrialState

    done_states = (TrialState.COMPLETE, TrialState.PRUNED)

    def trials():
        return optuna.load_study(study_name=STUDY, storage=server.url).get_trials(deepcopy=False)

    # two workers at once on a fresh database: both create its tables and the study
    with _workers() as started:
        started += [Worker(name, course_data, server.url, 2, tmp_path) for name in "AB"]
        for worker in started:
            worker.finish()
    first = trials()
    assert sorted(t.number for t in first) == [0, 1, 2, 3]
    assert all(t.state in done_states for t in first), [t.state for t in first]

    # a third worker is killed in the middle of a trial: the trial stays RUNNING
    connection = driver.connect(
        server.url, connect_timeout=10, options="-c statement_timeout=20000"
    )
    connection.autocommit = True  # each read sees what the workers have committed
    try:
        with _workers() as started:
            started.append(Worker("killed", course_data, server.url, 50, tmp_path))
            number = _kill_mid_trial(started[0], connection)
    finally:
        connection.close()
    before = {t.number: t for t in trials()}
    dead = before[number]
    assert dead.state == TrialState.RUNNING and dead.params
    finished_by_killed = len(before) - len(first) - 1  # trials it completed before its death
    assert all(t.state in done_states for t in before.values() if t.number != number)

    # once the grace period has passed since its last heartbeat, the next trial started fails
    # it and runs its configuration again; this run resumes the study with 2 more trials,
    # through the URL that names the driver psycopg, the same database on any SQLAlchemy 2
    time.sleep(GRACE + HEARTBEAT)
    explicit = server.url.replace("postgresql://", "postgresql+psycopg://")
    with _workers() as started:
        started.append(Worker("resumed", course_data, explicit, 2, tmp_path))
        summary = started[0].finish()

    final = trials()
    assert sorted(t.number for t in final) == list(range(len(final)))
    assert len({t._trial_id for t in final}) == len(final)  # every trial recorded once
    states = {t.number: t.state for t in final}
    assert [n for n, state in states.items() if state not in done_states] == [number], states
    assert states[number] == TrialState.FAIL
    done = [t for t in final if t.state in done_states]
    assert len(done) == 4 + finished_by_killed + 2  # what the runs asked for
    retries = [t for t in final if _retried(t) is not None]
    assert [_retried(t) for t in retries] == [number]
    assert retries[0].params == dead.params and retries[0].number > number
    # no configuration evaluated twice (the killed one's evaluation was never recorded)
    assert len({t.params["learning_rate"] for t in done}) == len(done)
    assert summary["study"] == STUDY and summary["trials"] == len(final)


# ------------------------------------------------------------------ refused at once
def test_tune_refuses_a_postgresql_server_that_is_not_running_in_one_line(
    driver, course_data, capsys, monkeypatch
):
    import optuna

    from skcrater.cli import main

    def no_retries(self, *args, **kwargs):
        raise AssertionError("reached RDBStorage, which retries a refused connection")

    monkeypatch.setattr(optuna.storages.RDBStorage, "__init__", no_retries)
    port = _free_port()  # nothing listens there
    url = f"postgresql://tuner:secret@127.0.0.1:{port}/studies"
    argv = ["tune", "--data", str(course_data), "--n-trials", "1", "--storage", url]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    shown = f"postgresql://tuner:***@127.0.0.1:{port}/studies"
    assert err.startswith(f"skcrater tune: error: Cannot use the Optuna storage {shown!r}: ")
    assert f"port {port} failed" in err and "secret" not in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "Epoch" not in out  # refused before any training


def test_a_postgresql_server_that_never_answers_is_given_up_after_the_connect_timeout(
    driver, monkeypatch
):
    from skcrater import _storage

    # a socket that accepts connections (the kernel completes them) but never answers, like a
    # hung server; closed after a while, so that without a connect timeout the test fails with
    # another error instead of hanging
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    watchdog = threading.Timer(60, listener.close)
    watchdog.start()
    monkeypatch.setattr(_storage, "_CONNECT_TIMEOUT", 2)
    url = f"postgresql://tuner@127.0.0.1:{listener.getsockname()[1]}/studies"
    try:
        with pytest.raises(ValueError) as error:
            _storage.make_storage(url, HEARTBEAT, GRACE)
    finally:
        watchdog.cancel()
        listener.close()
    message = str(error.value)
    assert message.startswith(f"Cannot use the Optuna storage {url!r}: ")
    assert "timeout expired" in message and "\n" not in message


def test_a_postgresql_url_without_its_driver_says_what_to_install(monkeypatch):
    from skcrater._storage import make_storage

    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg fails
    url = "postgresql+psycopg://tuner@127.0.0.1:5432/studies"
    with pytest.raises(ValueError) as error:
        make_storage(url, HEARTBEAT, GRACE)
    message = str(error.value)
    assert message.startswith(f"Cannot use the Optuna storage {url!r}: its database driver ")
    assert "pip install 'skcrater[postgres]'" in message and "\n" not in message


def test_tune_refuses_a_grace_period_not_longer_than_the_heartbeat_interval(tmp_path, capsys):
    from skcrater.cli import main

    argv = ["tune", "--data", str(tmp_path), "--n-trials", "1", "--storage", "study.log"]
    assert main([*argv, "--heartbeat-interval", "10", "--grace-period", "10"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "skcrater tune: error: --grace-period 10 must be longer than --heartbeat-interval 10: "
        "otherwise live workers' trials are failed as stale\n"
    )
