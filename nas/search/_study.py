"""The Optuna study in the run directory: storage, sampler, objective names, and recovery after a killed
driver."""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import shutil
import sqlite3
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._cached_storage import _CachedStorage
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
        storage = _create_storage(run_dir)
        existing = (
            len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
            if _has_study(run_dir)
            else 0
        )
    # A resumed run continues the random stream instead of replaying the first generation.
    sampler_seed = seed + existing
    with _readable(run_dir):
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=RunStorage(storage),
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
        save_trials(study)
    except Exception as exc:  # Optuna wraps SQLAlchemy's error, which wraps sqlite3's
        _raise_if_disk_full(exc, Path(engine.url.database))
        raise
    finally:
        # Stopped (Ctrl-C, SIGTERM, an error) while sampling: what was set on the trial, so that resuming
        # re-queues it if it was sampled whole. The stop's own exception is the one to report.
        with contextlib.suppress(Exception):
            save_trials(study)
        sqlalchemy.event.remove(engine, "connect", _use_write_ahead_log)
        engine.dispose()
        with contextlib.suppress(sqlalchemy.exc.OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout = 200")  # a reader holds it: leave the log
            connection.exec_driver_sql("PRAGMA journal_mode = DELETE")
        engine.dispose()


class RunStorage(_CachedStorage):
    """Optuna's cached SQLite storage for the one driver of a run (`RUN_DIR/.lock`), which keeps the trials
    it writes in memory as it writes them.

    Optuna's cache re-reads every unfinished trial from SQLite at each read of the study, so in a batch each
    `study.ask` (which looks for queued trials) re-read every candidate asked before it, and every
    `get_trials` of the driver re-read the trials in flight: a third of a profiled driver's time. Here the
    study is read whole once; afterwards only trials created elsewhere (none, while the lock is held) are
    read, and a trial in flight is what this process wrote to it.

    A trial's parameters and attributes are written together, in one transaction, when `save_trials`
    asks (after a candidate is sampled, so that a killed driver's trials in flight can be re-queued) or
    before its state changes; a tell is then two commits instead of one per attribute. That is the
    persistence Optuna's cached storage promises: writes on a trial's attributes are in the database before
    the write of its state succeeds. A state change re-reads that one trial, so a finished trial in memory
    is the stored one."""

    def __init__(self, backend: optuna.storages.RDBStorage):
        super().__init__(backend)
        self._read_whole: set[int] = set()  # studies read from the database once
        self._newest_id: dict[int, int] = {}  # study id -> the largest trial id known here
        self._unsaved: dict[int, _Unsaved] = {}  # trial id -> what was set on it since it was last saved

    # --- reads ---------------------------------------------------------------------------------------
    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        if study_id not in self._read_whole:
            self.save()
            super()._read_trials_from_remote_storage(study_id)
            with self._lock:
                self._read_whole.add(study_id)
                self._note_newest(study_id, [t._trial_id for t in self._studies[study_id].trials.values()])
            return
        with self._lock:
            newer = self._backend._get_trials(study_id, None, set(), self._newest_id.get(study_id, -1))
            if newer:
                self._add_trials_to_cache(study_id, newer)
                self._note_newest(study_id, [t._trial_id for t in newer])

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            trial = self._known(trial_id)
            if trial is not None:  # a trial in flight is copied: optuna.Trial updates the one it is given
                return trial if trial.state.is_finished() else copy.deepcopy(trial)
        return self._backend.get_trial(trial_id)

    # --- writes --------------------------------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        with self._lock:
            self._note_newest(study_id, [trial_id])
        return trial_id

    def set_trial_param(self, trial_id, param_name, param_value_internal, distribution) -> None:
        with self._lock:
            trial = self._known(trial_id)
            study_id = self._trial_id_to_study_id_and_number[trial_id][0] if trial else None
            seen = trial is not None and param_name in self._studies[study_id].param_distribution
            if seen:
                self.check_trial_is_updatable(trial_id, trial.state)
                earlier = self._studies[study_id].param_distribution[param_name]
                optuna.distributions.check_distribution_compatibility(earlier, distribution)
                self._unsaved_of(trial_id).params.append((param_name, param_value_internal, distribution))
        if not seen:  # a name's first value: the database checks it against the stored trials
            super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        if trial is not None:
            with self._lock:
                trial._params[param_name] = distribution.to_external_repr(param_value_internal)
                trial._distributions[param_name] = distribution

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=False)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=True)

    def _set_attr(self, trial_id: int, key: str, value: Any, system: bool) -> None:
        stored = json.loads(json.dumps(value))  # as a read gives it back; unserializable: an error now
        with self._lock:
            trial = self._known(trial_id)
            if trial is not None:
                self.check_trial_is_updatable(trial_id, trial.state)
                unsaved = self._unsaved_of(trial_id)
                (unsaved.system_attrs if system else unsaved.user_attrs)[key] = value
                (trial._system_attrs if system else trial._user_attrs)[key] = stored
                return
        if system:
            super().set_trial_system_attr(trial_id, key, value)
        else:
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        self.save(trial_id)
        changed = self._backend.set_trial_state_values(trial_id, state=state, values=values)
        if changed:
            self._reread(trial_id)
        return changed

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self.save(trial_id)
        self._backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
        self._reread(trial_id)

    def save(self, trial_id: int | None = None) -> None:
        """Write what was set on `trial_id` (None: on every trial) since it was last saved: one transaction,
        one statement per table (Optuna's own calls spend a query or two per parameter or attribute)."""
        import sqlalchemy
        from optuna.distributions import distribution_to_json
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
        from sqlalchemy.dialects import sqlite

        with self._lock:
            ids = list(self._unsaved) if trial_id is None else [trial_id]
            batches = [(i, self._unsaved.pop(i)) for i in ids if i in self._unsaved]
        if not batches:
            return
        params = [
            {"trial_id": i, "param_name": n, "param_value": v, "distribution_json": distribution_to_json(d)}
            for i, unsaved in batches
            for n, v, d in unsaved.params
        ]
        with _create_scoped_session(self._backend.scoped_session) as session:
            for i, _ in batches:  # as Optuna's own writes check it
                self.check_trial_is_updatable(i, models.TrialModel.find_or_raise_by_id(i, session).state)
            if params:
                session.execute(sqlalchemy.insert(models.TrialParamModel), params)
            for model, kind in (
                (models.TrialUserAttributeModel, "user_attrs"),
                (models.TrialSystemAttributeModel, "system_attrs"),
            ):
                rows = [
                    {"trial_id": i, "key": key, "value_json": json.dumps(value)}
                    for i, unsaved in batches
                    for key, value in getattr(unsaved, kind).items()
                ]
                if rows:
                    insert = sqlite.insert(model)
                    upsert = insert.on_conflict_do_update(
                        index_elements=[model.trial_id, model.key],
                        set_={"value_json": insert.excluded.value_json},
                    )
                    session.execute(upsert, rows)

    # --- the cache -----------------------------------------------------------------------------------
    def _known(self, trial_id: int) -> FrozenTrial | None:
        """The trial as this process knows it (None: not read or created here yet). Under the lock."""
        where = self._trial_id_to_study_id_and_number.get(trial_id)
        return None if where is None else self._studies[where[0]].trials.get(where[1])

    def _unsaved_of(self, trial_id: int) -> _Unsaved:
        return self._unsaved.setdefault(trial_id, _Unsaved())

    def _note_newest(self, study_id: int, trial_ids: list[int]) -> None:
        self._newest_id[study_id] = max([self._newest_id.get(study_id, -1), *trial_ids])

    def _reread(self, trial_id: int) -> None:
        """The stored trial replaces the one in memory (its state, values and times as the database has
        them)."""
        fresh = self._backend.get_trial(trial_id)
        with self._lock:
            where = self._trial_id_to_study_id_and_number.get(trial_id)
            if where is not None:
                self._add_trials_to_cache(where[0], [fresh])


@dataclass
class _Unsaved:
    params: list[tuple[str, float, Any]] = field(default_factory=list)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)


def save_trials(study: optuna.Study) -> None:
    """Write what was set on the study's trials in flight now (a no-op for a study not made by `open_study`)."""
    if isinstance(study._storage, RunStorage):
        study._storage.save()


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
    run_dir = Path(run_dir)
    with _readable(run_dir):
        if not _has_study(run_dir):
            raise NasError(
                f"{run_dir / 'study.db'}: no nas study in it yet (a search that is starting, or not a run)"
            )
        # The schema is complete once the study exists: a reader never creates or stamps it, so it cannot
        # race the driver that is creating it (SQLite has no CREATE TABLE that another process cannot beat).
        storage = optuna.storages.RDBStorage(storage_url(run_dir), skip_table_creation=True)
        return optuna.load_study(study_name=STUDY_NAME, storage=storage)


def _has_study(run_dir: Path) -> bool:
    """Whether the run's study.db holds its study, read-only: a reader leaves a starting run's file alone. A
    file not yet made or without its tables is a study still being created; any other error (damaged,
    locked) is raised, for `_readable` to name."""
    database = run_dir / "study.db"
    if not database.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return (
                db.execute("SELECT 1 FROM studies WHERE study_name = ?", (STUDY_NAME,)).fetchone() is not None
            )
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return False
        raise


# How often the driver retries making the schema when another process made part of it meanwhile.
_SCHEMA_ATTEMPTS = 3


def _create_storage(run_dir: Path) -> optuna.storages.RDBStorage:
    """The run's storage, its schema made if missing. Another program opening the file at the same moment
    (optuna-dashboard, an older nas) may create a table between SQLAlchemy's check and its CREATE: the
    table then exists, and trying again finds it."""
    import sqlalchemy.exc

    url, engine_kwargs = storage_url(run_dir), {"connect_args": {"timeout": 60}}
    for attempt in range(1, _SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except sqlalchemy.exc.OperationalError as exc:
            if "already exists" not in str(exc):
                raise
            time.sleep(0.1 * attempt)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


@contextlib.contextmanager
def _readable(run_dir: Path):
    """A study.db that SQLite cannot read (truncated, overwritten, not a database) is a one-line error."""
    import sqlalchemy.exc

    try:
        yield
    except (sqlalchemy.exc.OperationalError, sqlite3.OperationalError) as exc:  # locked, unopenable, ...
        raise NasError(
            f"{run_dir / 'study.db'}: cannot use the study database "
            f"({first_line(getattr(exc, 'orig', None) or exc)})"
        ) from None
    except (sqlalchemy.exc.DatabaseError, sqlite3.DatabaseError) as exc:  # not a database, malformed
        cause = first_line(getattr(exc, "orig", None) or exc)
        raise NasError(
            f"{run_dir / 'study.db'}: damaged study database ({cause}); restore it from a backup, or "
            "choose another --out to start a new run (trials.csv and checkpoints/ keep what was "
            "finished)"
        ) from None


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


def finished_count(study: optuna.Study) -> int:
    """The study's trials that count toward --trials (see `finished`)."""
    return sum(finished(t) for t in study.get_trials(deepcopy=False))
