"""The Optuna storages of :class:`~skcrater.tuning.OptunaSearch`: checked, with heartbeats.

A worker killed mid-trial (``kill -9``, the out-of-memory killer, a lost host)
cannot tell the storage, so without a heartbeat its trial stays RUNNING for
ever and its configuration is never tried again. With Optuna's heartbeat,
every running trial records every ``heartbeat_interval`` seconds that its
worker is alive; a worker about to start a trial fails the RUNNING trials
whose last heartbeat is older than ``grace_period``
(:func:`optuna.storages.fail_stale_trials`), and Optuna's retry callback
queues each one's parameters again as a WAITING trial, which the next trial
of any worker runs first.

:class:`~optuna.storages.RDBStorage` has the heartbeat built in. Optuna's
:class:`~optuna.storages.JournalStorage` has none (optuna/optuna#6615), so
:class:`_HeartbeatJournalStorage` adds the same one, recording the heartbeat
as a trial system attribute; everything else is Optuna's own machinery.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import NamedTuple

from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

#: How many times the trial of a killed worker is queued again: a configuration
#: that kills every worker running it (out of memory) must not kill them all.
MAX_RETRY = 2

#: Trial system attribute of the journal heartbeat: ``[trial_id, time.time()]``.
_HEARTBEAT_ATTR = "skcrater:heartbeat"


class _Heartbeat(NamedTuple):
    """A storage's heartbeat settings, in seconds, and its stale-trial callback."""

    interval: int
    grace_period: int
    callback: object


def make_storage(storage, heartbeat_interval, grace_period):
    """Map :class:`~skcrater.tuning.OptunaSearch`'s ``storage`` to what ``create_study`` takes.

    Parameters
    ----------
    storage : None, str, path-like or optuna.storages.BaseStorage
        A database URL (a string with ``://``), a journal file path, or a
        storage object, which is returned as it is (and None).
    heartbeat_interval : int or None
        Seconds between the heartbeats of a running trial; None: no heartbeat.
    grace_period : int or None
        Seconds without a heartbeat after which a running trial is failed and
        retried; None: twice ``heartbeat_interval``.

    Returns
    -------
    storage : None or optuna.storages.BaseStorage

    Raises
    ------
    ValueError
        If ``grace_period`` is not longer than ``heartbeat_interval`` (whatever
        the storage), or if the URL is not one SQLAlchemy can use or its
        database cannot be opened.
    """
    heartbeat = _heartbeat(heartbeat_interval, grace_period)
    if isinstance(storage, str) and "://" in storage:
        return _rdb_storage(storage, heartbeat)
    if isinstance(storage, str | os.PathLike):
        return _journal_storage(os.fspath(storage), heartbeat)
    return storage


def _heartbeat(interval, grace_period):
    if interval is None:
        return None
    grace_period = 2 * interval if grace_period is None else grace_period
    if grace_period <= interval:
        raise ValueError(
            f"grace_period={grace_period} must be longer than heartbeat_interval={interval}: "
            "otherwise the trials of live workers are failed as stale between two heartbeats."
        )
    with _quiet():
        try:  # Optuna >= 4.9
            from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
        except ImportError:
            from optuna.storages import RetryFailedTrialCallback as Retry
        return _Heartbeat(interval, grace_period, Retry(max_retry=MAX_RETRY))


@contextlib.contextmanager
def _quiet():
    """Silence Optuna's warning that heartbeats are experimental, which a user who never
    asked for one cannot act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


# ------------------------------------------------------------ databases
def _rdb_storage(url, heartbeat, attempts=5):
    """An ``RDBStorage`` of a checked URL, retrying while another process creates the same
    new database.

    Processes started together on a fresh database race to create its tables
    (optuna/optuna#1092): the losers fail once and then find the tables made.
    SQLite waits up to a minute for a lock instead of failing after 5 s.
    """
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs = _engine_kwargs(url)
    _check_url(url, engine_kwargs)
    kwargs = {"engine_kwargs": engine_kwargs, **_rdb_heartbeat_kwargs(heartbeat)}
    for attempt in range(attempts):
        try:
            with _quiet():
                return RDBStorage(url, **kwargs)
        except SQLAlchemyError as exc:
            if attempt == attempts - 1:
                raise _unusable(url, _reason(exc)) from exc
            time.sleep(0.5 * (attempt + 1))


#: Seconds a PostgreSQL connection may take to open (libpq's ``connect_timeout``), unless the
#: URL sets its own: without it, a server that accepts the connection but never answers (a
#: hung host, a firewall that drops packets) keeps a worker waiting for minutes.
_CONNECT_TIMEOUT = 10


def _engine_kwargs(url):
    """SQLAlchemy ``create_engine`` arguments for the database of ``url``.

    SQLite waits up to a minute for a lock instead of failing after 5 s;
    PostgreSQL through libpq (psycopg2, psycopg) gives up on a connection
    after ``_CONNECT_TIMEOUT`` seconds unless the URL says
    ``?connect_timeout=N``.
    """
    import sqlalchemy

    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    try:  # the driver of a plain postgresql:// URL is the dialect's default
        parsed = sqlalchemy.engine.make_url(url)
        libpq = parsed.get_backend_name() == "postgresql" and _driver(parsed) in _POSTGRES_DRIVERS
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError):
        return {}  # _check_url says what is wrong with the URL
    if libpq and "connect_timeout" not in parsed.query:
        return {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT}}
    return {}


def _rdb_heartbeat_kwargs(heartbeat):
    import inspect

    from optuna.storages import RDBStorage

    if heartbeat is None:
        return {}
    # Optuna 4.9 renamed failed_trial_callback, and warns about the old name
    parameters = inspect.signature(RDBStorage).parameters
    callback = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in parameters
        else "failed_trial_callback"
    )
    return {
        "heartbeat_interval": heartbeat.interval,
        "grace_period": heartbeat.grace_period,
        callback: heartbeat.callback,
    }


def _check_url(url, engine_kwargs):
    """Refuse at once a URL that RDBStorage would retry for seconds, then reject with a
    raw SQLAlchemy error: a misspelt database kind, a missing SQLite folder, a missing
    driver, a database that cannot be reached."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except ArgumentError as exc:
        raise _unusable(url, _reason(exc) + _URL_FORM) from exc
    try:
        parsed.get_dialect()
    except NoSuchModuleError as exc:
        unknown = f"SQLAlchemy knows no database {parsed.drivername!r}"
        raise _unusable(url, unknown + _URL_FORM) from exc
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_folder(url, parsed.database)
    try:
        engine = sqlalchemy.create_engine(parsed, **engine_kwargs)
    except ImportError as exc:
        missing = f"its database driver is not installed ({_reason(exc)})"
        raise _unusable(url, missing + _POSTGRES_DRIVERS.get(_driver(parsed), "")) from exc
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        raise _unusable(url, _reason(exc)) from exc
    finally:
        engine.dispose()


def _driver(parsed):
    return f"{parsed.get_backend_name()}+{parsed.get_driver_name()}"


#: The PostgreSQL drivers built on libpq, and what to install when one is missing.
_POSTGRES_DRIVERS = {
    "postgresql+psycopg": "; pip install 'skcrater[postgres]' installs it",
    "postgresql+psycopg2": (
        "; pip install psycopg2-binary, or pip install 'skcrater[postgres]' "
        "and write postgresql+psycopg://"
    ),
}

_URL_FORM = (
    ". A database URL looks like sqlite:///study.db or postgresql://user@host/db; "
    "a path without '://' is a journal file"
)


def _check_sqlite_folder(url, database):
    # ":memory:", "" and "file:" URIs name no folder to check
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    if not folder.is_dir():
        raise _unusable(url, f"the folder {str(folder)!r} of the SQLite file does not exist")


def _unusable(url, reason):
    import sqlalchemy

    with contextlib.suppress(Exception):  # hide a password; an unparsable URL has none to find
        url = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    end = "" if reason.endswith("?") else "."  # libpq: "Is the server running on that host...?"
    return ValueError(f"Cannot use the Optuna storage {url!r}: {reason}{end}")


def _reason(exc):
    """The driver's own message on one line, without SQLAlchemy's background link."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split()).rstrip(".")


# -------------------------------------------------------------- journals
def _journal_storage(path, heartbeat):
    from optuna.storages.journal import JournalFileBackend

    if heartbeat is None:
        return JournalStorage(JournalFileBackend(path))
    return _HeartbeatJournalStorage(JournalFileBackend(path), heartbeat)


class _HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A :class:`~optuna.storages.JournalStorage` with the heartbeat of ``RDBStorage``.

    Each heartbeat appends the trial system attribute ``[trial_id, time.time()]``
    to the journal; a RUNNING trial whose last one is older than the grace
    period is stale. The trial id in it tells a trial's own heartbeat from the
    one Optuna's retry callback copies into the retried trial with the other
    system attributes. Time is each host's clock: hosts sharing a journal need
    clocks that agree to well within the grace period.

    Parameters
    ----------
    backend : optuna.storages.journal.BaseJournalBackend
        The journal.
    heartbeat : _Heartbeat
        The interval, the grace period and the stale-trial callback.
    """

    def __init__(self, backend, heartbeat):
        super().__init__(backend)
        self.heartbeat = heartbeat

    def record_heartbeat(self, trial_id):
        try:
            self.set_trial_system_attr(trial_id, _HEARTBEAT_ATTR, [trial_id, time.time()])
        except UpdateFinishedTrialError:
            pass  # another worker has just failed it as stale: its retry is queued

    def _get_stale_trial_ids(self, study_id):
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # as in RDBStorage, a trial without a heartbeat of its own (run by a worker
            # without heartbeats, or retried and just started) is never stale
            beat = trial.system_attrs.get(_HEARTBEAT_ATTR)
            if beat and beat[0] == trial._trial_id and now - beat[1] > self.heartbeat.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self):
        return self.heartbeat.interval

    def get_heartbeat_stale_trial_callback(self):
        return self.heartbeat.callback

    # the name before Optuna 4.9
    get_failed_trial_callback = get_heartbeat_stale_trial_callback
