import threading
from multiprocessing import get_context

from store.sqlite_util import connect_wal


def _open(path: str) -> str:
    conn = connect_wal(path)
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.close()
    return mode


def test_many_processes_opening_a_new_file_at_once_all_get_wal(tmp_path):
    path = str(tmp_path / "new.sqlite3")
    with get_context("fork").Pool(6) as pool:
        modes = pool.map(_open, [path] * 12)
    assert modes == ["wal"] * 12


def test_threads_share_the_file(tmp_path):
    path = str(tmp_path / "t.sqlite3")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _open(path)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
