"""`r1desk paths`: where the profile lives (useful for support and for `--db` overrides)."""
from __future__ import annotations

import argparse
import json

from r1desk import paths


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("paths", help="print where r1desk keeps its data, config and models")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = {
        "data": str(paths.data_dir()),
        "config": str(paths.config_dir()),
        "models": str(paths.models_dir()),
        "audit_db": str(paths.audit_db_path()),
        "settings": str(paths.settings_path()),
        "site_config": str(paths.site_config_dir()),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:12} {value}")
    return 0
