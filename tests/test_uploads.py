"""Uploads through the core: ``Assistant.add_uploads`` (staging, backup, rollback), ``remove_with_undo``
and ``undo_removal``, and the one writer lock that lets writers in one process queue instead of timing
out on the index's lock (the web UI's tests drive the same methods through the page's handlers)."""

from __future__ import annotations

import threading

from assistant.errors import IndexLockedError
from assistant.ingest.staging import Removal


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_add_uploads_reports_by_stored_name_and_keeps_the_old_copy_of_a_bad_replacement(hash_assistant, tmp_path):
    first = hash_assistant.add_uploads([_write(tmp_path / "a" / "report one.txt", "Sirte port reopened.\n")])
    assert first.ingest.added == ["report_one"] and not first.problems
    stored = hash_assistant.uploads_dir / "report_one.txt"
    progress = []
    again = hash_assistant.add_uploads([_write(tmp_path / "b" / "report one.txt", "  \n"), tmp_path / "b" / "tool.exe"],
                                       progress=lambda *args: progress.append(args))
    assert [name for name, _ in again.problems] == ["report_one.txt", "tool.exe"]
    assert stored.read_text(encoding="utf-8") == "Sirte port reopened.\n"
    assert progress[:2] == [("checking", 0, 2), ("checking", 1, 2)]
    assert not list((hash_assistant.uploads_dir / ".staging").glob("*"))


def test_an_index_that_refuses_the_batch_leaves_the_uploads_as_they_were(hash_assistant, tmp_path, monkeypatch):
    hash_assistant.add_uploads([_write(tmp_path / "a" / "note.md", "# Note\n\nTobruk airport.\n")])

    def refuse(paths, **kwargs):
        raise IndexLockedError("Another process is writing to the index")

    monkeypatch.setattr(hash_assistant, "ingest", refuse)
    result = hash_assistant.add_uploads([_write(tmp_path / "b" / "note.md", "# Note\n\nChanged.\n"),
                                         _write(tmp_path / "b" / "new.txt", "A new file.\n")])
    assert result.ingest is None and result.problems == [("index", "Another process is writing to the index")]
    assert (hash_assistant.uploads_dir / "note.md").read_text(encoding="utf-8").endswith("Tobruk airport.\n")
    assert not (hash_assistant.uploads_dir / "new.txt").exists()


def test_remove_with_undo_keeps_an_upload_aside_and_undo_brings_it_back(hash_assistant, tmp_path):
    hash_assistant.add_uploads([_write(tmp_path / "note.md", "# Note\n\nBenghazi airport reopened.\n")])
    removal = hash_assistant.remove_with_undo("note")
    assert (removal.doc_id, removal.title, removal.chunks) == ("note", "Note", 1)
    assert removal.restore_to == str((hash_assistant.uploads_dir / "note.md").resolve())
    assert not (hash_assistant.uploads_dir / "note.md").exists() and hash_assistant.documents() == []
    report = hash_assistant.undo_removal(Removal.from_dict(removal.to_dict()))
    assert report.added == ["note"] and [d.doc_id for d in hash_assistant.documents()] == ["note"]


def test_writers_in_one_process_queue_instead_of_timing_out(hash_assistant, tmp_path, monkeypatch):
    hash_assistant.ingest([_write(tmp_path / "seed.txt", "Misrata port.\n")])
    monkeypatch.setenv("ASSISTANT_TEST_SLOW_SAVE", "0.3")  # each commit holds the index's lock longer ...
    monkeypatch.setenv("ASSISTANT_LOCK_WAIT_SECONDS", "0.1")  # ... than another process would wait for it
    errors: list[BaseException] = []

    def run(action):
        try:
            action()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lambda: hash_assistant.add_uploads([_write(tmp_path / "u" / "up.txt", "Derna.\n")]),)),
               threading.Thread(target=run, args=(lambda: hash_assistant.ingest([_write(tmp_path / "i" / "in.txt", "Sabha.\n")]),)),
               threading.Thread(target=run, args=(lambda: hash_assistant.remove("seed"),))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(d.doc_id for d in hash_assistant.documents()) == ["in", "up"]
