"""The Optuna study in the run directory: storage, sampler, objective names, and recovery after a killed
driver."""

from __future__ import annotations

import contextlib
import errno
import shutil
import warnings
import weakref
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError, exception_chain, first_line
from nas.records import Attr, TrialStatus
from nas.search._samplers import build_sampler

STUDY_NAME = "nas"
DIRECTIONS = ["maximize", "minimize"]  # proxy accuracy, latency (ms)
METRIC_NAMES = ["accuracy", "latency_ms"]  # the objectives' names, as optuna-dashboard and trackers show them

# Short names of the statuses for the search's modules (TrialStatus documents each).
COMPLETE, INFEASIBLE, FAILED = TrialStatus.COMPLETE, TrialStatus.INFEASIBLE, TrialStatus.FAILED
INTERRUPTED, SCREENED_OUT, STOPPED_EARLY = (
    TrialStatus.INTERRUPTED,
    TrialStatus.SCREENED_OUT,
    TrialStatus.STOPPED_EARLY,
)


# A run's study -> its SQLAlchemy engine, for `fast_commits` (a study made elsewhere has none).
_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def open_study(run_dir: Path, sampler, population: int, seed: int) -> optuna.Study:
    """Create or load the run's study. SQLite, so optuna-dashboard can open it while the search runs.
    sampler: a name registered in `SAMPLERS`, or an `optuna.samplers.BaseSampler` instance."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with _readable(run_dir):
        storage = optuna.storages.RDBStorage(
            storage_url(run_dir), engine_kwargs={"connect_args": {"timeout": 60}}
        )
        existing = (
            len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials) if _exists(storage) else 0
        )
    # A resumed run continues the random stream instead of replaying the first generation.
    sampler_seed = seed + existing
    with _readable(run_dir):
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            directions=DIRECTIONS,
            sampler=build_sampler(sampler, population, sampler_seed),  # an instance: as given
            load_if_exists=True,
        )
        _name_objectives(study)
    _ENGINES[study] = storage.engine
    return study


@contextlib.contextmanager
def fast_commits(study: optuna.Study):
    """While a driver runs: SQLite's write-ahead log with synchronous=NORMAL. A trial is written in about
    50 commits (parameters and attributes one by one: Optuna's storage has no public call that writes
    several); in the default rollback journal each waits for the disk (7-15 ms here), in the log it is an
    append the OS buffers (about 1 ms). A killed process loses no commit (the OS has it); a power cut may
    lose the last ones, never the database. On exit the log is folded back into study.db and the
    rollback journal restored, so a stopped run is one file again (to copy, or to read on a filesystem
    where the log cannot work); if another reader holds the study open then, the log stays until the
    last connection closes, which folds it in."""
    engine = _ENGINES.get(study)
    if engine is None:
        yield
        return
    import sqlalchemy.event
    import sqlalchemy.exc

    sqlalchemy.event.listen(engine, "connect", _use_write_ahead_log)
    engine.dispose()  # the pooled connections were opened without it
    try:
        yield
    except Exception as exc:  # Optuna wraps SQLAlchemy's error, which wraps sqlite3's
        _raise_if_disk_full(exc, Path(engine.url.database))
        raise
    finally:
        sqlalchemy.event.remove(engine, "connect", _use_write_ahead_log)
        engine.dispose()
        with contextlib.suppress(sqlalchemy.exc.OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout = 200")  # a reader holds it: leave the log
            connection.exec_driver_sql("PRAGMA journal_mode = DELETE")
        engine.dispose()


# Below this much free space, SQLite's "disk I/O error" is the log or its index failing to grow.
_NEARLY_FULL_BYTES = 1 << 20


def _raise_if_disk_full(exc: Exception, database: Path) -> None:
    """In WAL mode SQLite reports a full disk as "disk I/O error" (the -wal or -shm file cannot grow), not as
    "database or disk is full": say ENOSPC when that file system really has (almost) no room left."""
    if not any("disk I/O error" in str(cause) for cause in exception_chain(exc)):
        return
    try:
        free = shutil.disk_usage(database.parent).free
    except OSError:
        return
    if free < _NEARLY_FULL_BYTES:
        raise OSError(errno.ENOSPC, "no space left for the study database", str(database)) from exc


def _use_write_ahead_log(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _name_objectives(study: optuna.Study) -> None:
    """Name the objectives (optuna-dashboard shows "accuracy" and "latency_ms", not "Objective 0/1"), for a
    new study and for one an earlier version made without names. Optuna marks the call experimental."""
    if not hasattr(study, "set_metric_names"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != METRIC_NAMES:
            study.set_metric_names(METRIC_NAMES)


def load_run_study(run_dir: Path) -> optuna.Study:
    """The study of an existing run directory, for reading (reports, benchmarks); Optuna's logging quiet."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with _readable(Path(run_dir)):
        return optuna.load_study(study_name=STUDY_NAME, storage=storage_url(Path(run_dir)))


@contextlib.contextmanager
def _readable(run_dir: Path):
    """A study.db that SQLite cannot read (truncated, overwritten, not a database) is a one-line error."""
    import sqlalchemy.exc

    try:
        yield
    except sqlalchemy.exc.OperationalError as exc:  # locked, unopenable, ...: not known to be damaged
        raise NasError(
            f"{run_dir / 'study.db'}: cannot use the study database "
            f"({first_line(getattr(exc, 'orig', None) or exc)})"
        ) from None
    except sqlalchemy.exc.DatabaseError as exc:
        cause = first_line(getattr(exc, "orig", None) or exc)
        raise NasError(
            f"{run_dir / 'study.db'}: damaged study database ({cause}); restore it from a backup, or "
            "choose another --out to start a new run (trials.csv and checkpoints/ keep what was "
            "finished)"
        ) from None


def _exists(storage) -> bool:
    return any(s.study_name == STUDY_NAME for s in optuna.get_all_study_summaries(storage))


def recover_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a killed driver: mark them failed (interrupted) and queue them again.

    Only fully sampled trials (their architecture recorded) are re-queued with the same parameters;
    one killed while its parameters were being drawn never became a candidate.
    """
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        sampled = Attr.ARCH_HASH in trial.user_attrs
        reason = "driver stopped before the trial finished" + (
            "; re-queued" if sampled else " (while sampling)"
        )
        study._storage.set_trial_user_attr(trial._trial_id, Attr.STATUS, TrialStatus.INTERRUPTED.value)
        study._storage.set_trial_user_attr(trial._trial_id, Attr.FAILURE_REASON, reason)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if sampled:
            study.enqueue_trial(
                trial.params, user_attrs={Attr.REQUEUED_FROM: trial.number}, skip_if_exists=False
            )
        count += 1
    return count


def finished(trial: FrozenTrial) -> bool:
    """Counts toward --trials: evaluated to an answer (complete, infeasible or failed); not interrupted,
    not screened out by a training-free score."""
    status = trial.user_attrs.get(Attr.STATUS)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and status not in (
        TrialStatus.INTERRUPTED,
        TrialStatus.SCREENED_OUT,
    )
