"""`r1desk models`: inspect, list and import GGUF model files.

    r1desk models info PATH [--json] [--sha256]   what a GGUF is (read from its header)
    r1desk models list [--json]                   the models in r1desk's models folder
    r1desk models import PATH [--copy]            validate a GGUF, then hard-link or copy it in
    r1desk models catalog [--json]                the R1 models to download: fit, speed, ★ (cli/models_catalog.py)
    r1desk models download ID [--json]            download one: progress, resume, sha256 check
    r1desk models guard list|download|import|use|off|remove    the harm filter's guard model (cli/models_guard.py)

A bad file is a ModelFileError: main() prints its one line and exits 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from r1desk import paths
from r1desk.core.gguf_info import ModelInfo, file_sha256, read_model_info, shown_text
from r1desk.core.prompts import model_recipe
from r1desk.errors import ModelFileError, UserFacingError
from r1desk.textsafe import printable, safe_json

log = logging.getLogger("r1desk.models")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("models", help="inspect, list and import GGUF model files")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="show what a GGUF file is (architecture, size, "
                          "quantisation, context, R1 or not) without loading it")
    info.add_argument("path", metavar="PATH", help="a .gguf file")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.add_argument("--sha256", action="store_true",
                      help="also compute the file's sha256 (cached after the first time)")
    info.add_argument("--template", action="store_true", help="print the full chat template")
    info.set_defaults(func=run_info)

    lst = sub.add_parser("list", help="list the GGUF models in r1desk's models folder, or a server's models")
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    from r1desk.cli.chat import add_server_arguments

    add_server_arguments(lst)
    lst.set_defaults(func=run_list)

    key = sub.add_parser("key", help="store (or --delete) a server's API key in the credential store")
    key.add_argument("--server", metavar="URL", required=True, help="the server's base URL")
    key.add_argument("--delete", action="store_true", help="remove the stored key")
    key.set_defaults(func=run_key)

    imp = sub.add_parser("import", help="check a GGUF file and add it to r1desk's models folder")
    imp.add_argument("path", metavar="PATH", help="a .gguf file")
    imp.add_argument("--copy", action="store_true",
                     help="always copy (default: hard-link when on the same disk, else copy)")
    imp.set_defaults(func=run_import)

    from r1desk.cli import models_catalog, models_guard

    models_catalog.register(sub)
    models_guard.register(sub)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _human_params(n: int | None, label: str | None) -> str:
    if n is None:
        return label or "unknown"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{suffix} ({n:,})"
    return str(n)


def _info_lines(info: ModelInfo, sha: str | None, full_template: bool) -> list[str]:
    template = info.chat_template
    if info.chat_template_problem:
        shown = f"NOT USED, the built-in format is used instead: {printable(info.chat_template_problem)[:300]}"
        if full_template and template is not None:
            shown += "\n" + printable(template, multiline=True)
    elif template is None:
        shown = "none (a plain prompt is used)"
    elif full_template:
        shown = "\n" + printable(template, multiline=True)
    else:
        shown = f"{len(template)} characters (--template prints it)"
    rows = [
        ("name", shown_text(info.shown_name)),
        *([("general.name", shown_text(info.name))] if info.name != info.shown_name else []),
        ("file", printable(str(info.path))),
        ("size", f"{_human_size(info.size_bytes)} ({info.size_bytes:,} bytes)"),
        ("architecture", info.architecture),
        ("parameters", _human_params(info.parameter_count, info.size_label)),
        ("quantisation", info.quantization or "unknown"),
        ("context", f"{info.context_length:,} tokens" if info.context_length else "unknown"),
        ("layers", str(info.block_count) if info.block_count else "unknown"),
        ("bos / eos", f"{shown_text(repr(info.bos_token), 80)} / {shown_text(repr(info.eos_token), 80)}"),
        ("DeepSeek-R1", "yes (R1 chat markers and <think> in its tokenizer)" if info.is_r1 else "no"),
        ("recipe", model_recipe(info).title),
        ("chat template", shown),
    ]
    if sha:
        rows.append(("sha256", sha))
    return [f"{key:14} {value}" for key, value in rows]


def run_info(args: argparse.Namespace) -> int:
    info = read_model_info(args.path)
    sha = file_sha256(info.path) if args.sha256 else None
    if args.json:
        data: dict[str, Any] = info.to_dict()
        if sha:
            data["sha256"] = sha
        print(safe_json(data))
    else:
        print("\n".join(_info_lines(info, sha, args.template)))
    return 0


def _scan_models() -> list[tuple[Path, ModelInfo | None, str | None]]:
    """Every *.gguf in the models folder with its info, or the reason it cannot be used."""
    found: list[tuple[Path, ModelInfo | None, str | None]] = []
    for path in sorted(paths.models_dir().rglob("*.gguf")):
        try:
            found.append((path, read_model_info(path), None))
        except ModelFileError as exc:
            found.append((path, None, exc.message))
    return found


def run_list(args: argparse.Namespace) -> int:
    if args.server:
        return run_list_server(args)
    models = _scan_models()
    if args.json:
        print(json.dumps([info.to_dict() if info else {"path": str(path), "error": error}
                          for path, info, error in models], indent=2, ensure_ascii=False))
        return 0
    if not models:
        print(f"no models in {paths.models_dir()} (add one with: r1desk models import PATH)")
        return 0
    for path, info, error in models:
        if info is None:
            print(f"{printable(path.name)}  UNUSABLE: {error}")
        else:
            r1 = "  R1" if info.is_r1 else ""
            print(f"{printable(path.name)}  {info.architecture}  {info.quantization or '?'}  "
                  f"{_human_size(info.size_bytes)}{r1}")
    return 0


def run_list_server(args: argparse.Namespace) -> int:
    """`r1desk models list --server URL`: the server's /v1/models, with what r1desk knows about each."""
    from r1desk.cli.chat import auth_hint, server_options
    from r1desk.core.remote import RemoteError, RemoteOptions, probe
    from r1desk.settings import SettingsStore

    settings = SettingsStore().current
    opts = server_options(args, settings)
    assert opts is not None
    options = RemoteOptions(url=opts["url"], verify_tls=opts["verify_tls"], api_key=opts["api_key"],
                            connect_timeout_s=settings.remote.connect_timeout_s,
                            read_timeout_s=settings.remote.read_timeout_s)
    try:
        info = probe(options)
    except RemoteError as exc:
        if exc.kind == "auth" and not opts["api_key"]:
            raise RemoteError(exc.message, kind="auth", status=exc.status, hint=auth_hint(opts["url"])) from None
        raise
    if args.json:
        print(json.dumps({"server": info.endpoint.url, "server_type": info.server_type, "models": [
            {"id": m.id, "owned_by": m.owned_by, "context_length": m.context_length,
             "trained_context": m.trained_context, "digest": m.digest, "r1": m.looks_r1, **m.details}
            for m in info.models]}, indent=2, ensure_ascii=False))
        return 0
    print(f"{info.title} at {info.endpoint.url}: {len(info.models)} model{'s' if len(info.models) != 1 else ''}")
    for m in info.models:
        ctx = m.context_length or m.trained_context
        bits = [f"context {ctx:,}" if ctx else "context unknown"]
        if m.looks_r1:
            bits.append("R1")
        if m.digest:
            bits.append(f"digest {m.digest[:19]}")
        print(f"{printable(m.id)}  " + "  ".join(bits))
    return 0


def run_key(args: argparse.Namespace) -> int:
    """`r1desk models key --server URL`: keep the server's API key in the OS credential store."""
    import getpass

    from r1desk.core.remote import parse_endpoint
    from r1desk.core.remote.credentials import delete_api_key, set_api_key, store_available, unavailable_message

    url = parse_endpoint(args.server).url
    if not store_available():
        raise UserFacingError(unavailable_message(), hint="pass --ask-key to r1desk chat / models list instead")
    if args.delete:
        print(f"removed the API key for {url}" if delete_api_key(url) else f"no API key was stored for {url}")
        return 0
    key = getpass.getpass(f"API key for {url}: ")
    if not key:
        raise UserFacingError("no key given")
    set_api_key(url, key)
    print(f"stored the API key for {url} in the credential store")
    return 0


def import_model(source: str | os.PathLike[str], *, copy: bool = False) -> tuple[Path, str]:
    """Validate a GGUF and put it in the models folder; returns (destination, how).

    ``how`` is "linked", "copied" or "already present". The file is checked first, so a broken
    download never lands in the library, and copied under a temporary name, so an interrupted
    copy never looks like a model.
    """
    info = read_model_info(source)
    dest = paths.models_dir() / info.path.name
    if dest.exists():
        if dest.resolve() == info.path or (dest.stat().st_size == info.size_bytes
                                           and file_sha256(dest) == file_sha256(info.path)):
            return dest, "already present"
        raise UserFacingError(f"{dest} already exists and is a different file",
                              hint="rename one of them first")
    if not copy:
        try:
            os.link(info.path, dest)
            return dest, "linked"
        except OSError as exc:
            log.debug("hard link failed (%s); copying instead", exc)
    tmp = dest.with_name(dest.name + ".importing")
    try:
        shutil.copyfile(info.path, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserFacingError(f"could not copy {info.path.name} into {dest.parent}: "
                              f"{exc.strerror or exc}") from exc
    return dest, "copied"


def run_import(args: argparse.Namespace) -> int:
    dest, how = import_model(args.path, copy=args.copy)
    print(f"{how}: {dest}")
    return 0
