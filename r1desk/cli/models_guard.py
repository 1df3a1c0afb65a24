"""`r1desk models guard ...`: the guard model that the harm filter runs (issue 13).

    r1desk models guard list [--json]                  the catalog (fit, licence) and the installed guard models
    r1desk models guard download ID [--json]           download a catalog entry (progress, resume, checksum)
    r1desk models guard import PATH [--copy] [--json]  check that a GGUF is a supported guard model, then add it
    r1desk models guard use PATH|ID [--threads N] [--gpu-layers N] [--json]    make it the harm filter (admin)
    r1desk models guard off [--json]                   no harm filter: toxicity only (admin)
    r1desk models guard remove PATH|ID [--json]        delete a guard model from r1desk's folder

``use`` and ``off`` are admin settings changes: they need the admin passphrase once role passphrases are
set (``cli/auth.py``) and are recorded as a ``settings.change`` admin event. Bad input is one line on
stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from r1desk.core.guard.harm import install
from r1desk.errors import UserFacingError
from r1desk.textsafe import printable, safe_json


def register(models_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``guard`` to ``r1desk models``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")
    p = models_sub.add_parser("guard", help="list, download, import and choose the guard model (harm filter)")
    sub = p.add_subparsers(dest="guard_action", metavar="ACTION", required=True)
    sub.add_parser("list", parents=[common], help="the guard-model catalog and the installed guard models"
                   ).set_defaults(func=run_list)
    dl = sub.add_parser("download", parents=[common], help="download a guard model from the catalog")
    dl.add_argument("id", metavar="ID", help="a catalog id (r1desk models guard list)")
    dl.set_defaults(func=run_download)
    imp = sub.add_parser("import", parents=[common], help="check a GGUF is a supported guard model and add it")
    imp.add_argument("path", metavar="PATH", help="a .gguf file")
    imp.add_argument("--copy", action="store_true", help="always copy (default: hard-link when possible)")
    imp.set_defaults(func=run_import)
    use = sub.add_parser("use", parents=[common], help="make a guard model the harm filter (admin)")
    use.add_argument("model", metavar="PATH|ID", help="a guard-model GGUF, or the id of a downloaded one")
    use.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for the guard model")
    use.add_argument("--gpu-layers", type=int, default=None, metavar="N",
                     help="layers offloaded to the GPU (-1: all, 0: none)")
    use.add_argument("--db", type=Path, default=None, metavar="PATH", help="audit database file")
    use.set_defaults(func=run_use)
    off = sub.add_parser("off", parents=[common], help="turn the harm filter off: toxicity only (admin)")
    off.add_argument("--db", type=Path, default=None, metavar="PATH", help="audit database file")
    off.set_defaults(func=run_off)
    rm = sub.add_parser("remove", parents=[common], help="delete a guard model from r1desk's folder")
    rm.add_argument("model", metavar="PATH|ID")
    rm.set_defaults(func=run_remove)


def _print(data: Any) -> None:
    print(safe_json(data))


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _settings() -> Any:
    from r1desk.settings import SettingsStore

    return SettingsStore().current


def _resolve(model: str) -> Path:
    """A path as given, else the downloaded file of a catalog id."""
    path = Path(model).expanduser()
    if path.exists() or any(sep in model for sep in ("/", "\\")) or model.lower().endswith(".gguf"):
        return path
    offer = install.get_offer(model)
    if offer.local_path is None:
        raise UserFacingError(f"{model} is not downloaded",
                              hint=f"r1desk models guard download {model}" if offer.downloadable
                              else "import a converted GGUF with: r1desk models guard import PATH")
    return offer.local_path


def run_list(args: argparse.Namespace) -> int:
    from r1desk.core import hardware

    settings = _settings()
    current = settings.guard.harm_model
    hw = hardware.detect()
    catalog = [{**o.to_dict(), "fit": install.fit(o, hw)} for o in install.offers()]
    from r1desk import guard_admin

    present = [{**g.to_dict(), "in_use": guard_admin.in_use(settings, g.path)} for g in install.installed()]
    if args.json:
        _print({"in_use": current, "threads": settings.guard.harm_threads,
                "gpu_layers": settings.guard.harm_gpu_layers, "catalog": catalog, "installed": present})
        return 0
    print(f"harm filter: {printable(current) if current else 'not installed — toxicity only'}")
    print(f"this computer: {hw.describe()}")
    for row in catalog:
        size = ("~" if row["size_is_estimate"] else "") + _size(row["size_bytes"])
        how = ("downloaded" if row["local_path"] else "download") if row["downloadable"] else "import a GGUF file"
        print(f"  {row['id']:32} {size:>9}  {row['fit']:9}  {row['licence']}  [{how}]")
    if present:
        print("installed:")
        for g in present:
            mark = "* " if g["in_use"] else "  "
            print(f"{mark}{printable(Path(g['path']).name)}  {g['model']}  {g['quantization'] or '?'}  "
                  f"{_size(g['size_bytes'])}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    offer = install.get_offer(args.id)
    cancel = threading.Event()
    last = [0.0]

    def progress(p: Any) -> None:
        now = time.monotonic()
        if p.phase == "downloading" and now - last[0] < 0.5 and p.done != p.total:
            return
        last[0] = now
        pct = f"{100 * p.done / p.total:.0f}%" if p.total else _size(p.done)
        print(f"\r{p.phase} {offer.entry.label}: {pct}   ", end="", file=sys.stderr, flush=True)

    try:
        guard = install.download(offer, progress=None if args.json else progress, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise UserFacingError("download interrupted", hint="downloading again resumes where it stopped") from None
    finally:
        if not args.json:
            print(file=sys.stderr)
    if args.json:
        _print(guard.to_dict())
    else:
        print(f"downloaded: {printable(str(guard.path))} ({guard.profile.name}; licence {guard.profile.licence})")
        print(f"use it with: r1desk models guard use {offer.id}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    guard = install.import_file(args.path, link=not args.copy)
    if args.json:
        _print(guard.to_dict())
    else:
        print(f"imported: {printable(str(guard.path))} ({guard.profile.name})")
    return 0


@contextlib.contextmanager
def _admin(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    from r1desk.cli.auth import gated_log
    from r1desk.core.roles import ADMIN

    with gated_log(args.db, ADMIN) as (log, auth):
        yield log, auth.name


def _report(args: argparse.Namespace, old: str | None, new: Any, diff: list[Any]) -> int:
    if args.json:
        _print({"previous": old, "harm_model": new.guard.harm_model, "threads": new.guard.harm_threads,
                "gpu_layers": new.guard.harm_gpu_layers,
                "changes": [{"key": k, "old": o, "new": v} for k, o, v in diff]})
    elif not diff:
        print("nothing changed")
    else:
        for key, o, v in diff:
            print(f"{key}: {printable(str(o))} -> {printable(str(v))}")
    return 0


def run_use(args: argparse.Namespace) -> int:
    from r1desk import guard_admin

    path = _resolve(args.model)
    install.check_guard_model(path)            # refuse a non-guard file before asking for a passphrase
    with _admin(args) as (log, actor):
        settings = _settings()
        old = settings.guard.harm_model
        new, diff = guard_admin.use(settings, log, path, actor=actor, threads=args.threads,
                                    gpu_layers=args.gpu_layers)
    return _report(args, old, new, diff)


def run_off(args: argparse.Namespace) -> int:
    from r1desk import guard_admin

    with _admin(args) as (log, actor):
        settings = _settings()
        old = settings.guard.harm_model
        new, diff = guard_admin.off(settings, log, actor=actor)
    return _report(args, old, new, diff)


def run_remove(args: argparse.Namespace) -> int:
    from r1desk import guard_admin

    path = _resolve(args.model)
    if guard_admin.in_use(_settings(), path):
        raise UserFacingError(f"{path.name} is the harm filter's guard model",
                              hint="turn it off first: r1desk models guard off")
    install.remove(path)
    if args.json:
        _print({"removed": str(path)})
    else:
        print(f"removed: {printable(str(path))}")
    return 0
