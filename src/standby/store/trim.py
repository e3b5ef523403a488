"""How far the change log may be trimmed: a pure decision, kept apart from doing it."""

from __future__ import annotations

from collections.abc import Iterable


def trim_point(
    head_lsn: int,
    standby_lsns: Iterable[int],
    archived_lsn: int | None,
    keep_records: int,
) -> int:
    """The highest LSN that may be removed (0: nothing).

    A record may go only once every registered standby has applied it and the backup
    archive holds it (when archiving is on). With neither a standby nor an archive to
    vouch for the records, nothing is trimmed: the log is then their only copy. The
    newest ``keep_records`` always stay, so a briefly disconnected standby resumes from
    the stream rather than the archive.
    """
    holders = list(standby_lsns)
    if archived_lsn is not None:
        holders.append(archived_lsn)
    if not holders:
        return 0
    return max(0, min(min(holders), head_lsn - keep_records))
