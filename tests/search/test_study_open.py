"""Opening a run's study while another process opens it too: a reader never creates the schema, and the driver
survives a table created under it between SQLAlchemy's check and its CREATE."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from nas.errors import NasError
from nas.search import load_run_study, open_study


def tables(database) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_reading_a_starting_run_says_so_and_leaves_its_file_alone(tmp_path):
    database = tmp_path / "study.db"
    database.touch()  # the driver has connected, and not yet made a table
    with pytest.raises(NasError, match="study.db: no nas study in it yet"):
        load_run_study(tmp_path)
    assert database.read_bytes() == b""  # no table made by the reader, to collide with the driver's


def test_reading_a_run_whose_tables_exist_but_not_its_study_writes_nothing(tmp_path):
    database = tmp_path / "study.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name VARCHAR(512))")
    before = database.read_bytes()
    with pytest.raises(NasError, match="no nas study in it yet"):
        load_run_study(tmp_path)
    assert database.read_bytes() == before


def test_a_damaged_study_database_is_named_so_by_a_reader(tmp_path):
    (tmp_path / "study.db").write_bytes(b"not a database " * 100)
    with pytest.raises(NasError, match="study.db: damaged study database .*backup") as err:
        load_run_study(tmp_path)
    assert "\n" not in str(err.value)


def test_a_table_made_by_another_process_during_creation_is_tolerated(tmp_path, monkeypatch):
    open_study(
        tmp_path, "random", population=2, seed=0
    ).ask()  # the schema exists, as another process left it
    real_has_table, lied = SQLiteDialect.has_table, []

    def has_table_checked_before_the_other_process_made_it(self, connection, table_name, *args, **kwargs):
        if table_name == "studies" and not lied:
            lied.append(table_name)
            return False  # so SQLAlchemy issues CREATE TABLE studies, which SQLite refuses: already exists
        return real_has_table(self, connection, table_name, *args, **kwargs)

    monkeypatch.setattr(SQLiteDialect, "has_table", has_table_checked_before_the_other_process_made_it)
    study = open_study(tmp_path, "random", population=2, seed=0)
    assert lied == ["studies"]
    assert len(study.trials) == 1
    assert "studies" in tables(tmp_path / "study.db")


def test_a_run_study_reads_as_before(tmp_path):
    study = open_study(tmp_path, "random", population=2, seed=0)
    study.tell(study.ask(), [0.5, 1.0])
    assert [t.values for t in load_run_study(tmp_path).trials] == [[0.5, 1.0]]
