"""`knn-lab room purge` (for a cron job) and `knn-lab room export`: the store from the command line.

knn_core/cli.py adds these with `add_room_commands` and runs them with `cmd_room`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import codes, export
from .config import database_url, days_text
from .engine import describe
from .errors import NotTeacher
from .store import open_store


def add_room_commands(sub) -> None:
    room = sub.add_parser("room", help="the class room's store: purge expired classes, export a class's drawings")
    actions = room.add_subparsers(dest="room_command", required=True, metavar="ACTION")
    purge = actions.add_parser("purge", help="delete the classes past KNN_LAB_RETENTION_DAYS with their drawings")
    ex = actions.add_parser("export", help="a class's labelled drawings as MNIST IDX files or a PNG tree, zipped")
    ex.add_argument("code", help="the class code, e.g. K7M-4QX")
    ex.add_argument(
        "--teacher-token", required=True, help="the secret part of the teacher link (--teacher-token=TOKEN)"
    )
    ex.add_argument("--format", choices=("idx", "png"), default="idx", help="idx (default) or png")
    ex.add_argument("--out", type=Path, required=True, metavar="FILE.zip")
    for p in (purge, ex):
        p.add_argument("--database", metavar="URL", help="default: $KNN_LAB_DATABASE_URL, else the SQLite file")


def cmd_room(args: argparse.Namespace) -> None:
    url = args.database or database_url()
    with open_store(url) as store:
        if args.room_command == "purge":
            n = store.purge_expired()
            print(
                f"deleted {n} class{'es' if n != 1 else ''} older than {days_text(store.retention)} from {describe(url)}"
            )
            return
        room = store.teacher_room(args.teacher_token)
        if room.code != codes.normalize_code(args.code):
            raise NotTeacher(f"This teacher link belongs to another class, not {args.code}")
        make = export.idx_zip if args.format == "idx" else export.png_zip
        data = make(store.drawings(room.code, wall=False))
        args.out.write_bytes(data)
        print(f"wrote {args.out} ({len(data):,} bytes)")
