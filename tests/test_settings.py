"""The typed settings model: validation with file/key/value, last-known-good, site lock, diff, export."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from r1desk import paths, settings as S
from r1desk.errors import SettingsError


def _write(data) -> None:
    paths.settings_path().write_text(json.dumps(data), encoding="utf-8")


def test_defaults_without_a_file():
    s = S.load_settings()
    assert (s.generation.temperature, s.generation.top_p) == (0.6, 0.95)
    assert s.thinking_visibility == "collapsed" and s.language.target == "auto"
    assert s.guard.rules["answer"]["threat"].action == "block"
    assert s.schema_version == S.SCHEMA_VERSION


def test_every_field_has_a_title_and_a_description():
    rows = S.describe_fields()
    assert len(rows) > 25
    for row in rows:
        assert row["title"] and row["description"], row["key"]
    keys = {r["key"] for r in rows}
    assert {"generation.temperature", "guard.model_type", "language.action", "retention_days"} <= keys


def test_save_and_load_round_trip_atomically():
    s = S.Settings()
    s.generation.temperature = 0.5
    s.guard.rules["thinking"]["insult"] = S.RuleSetting(0.42, "redact")
    s.last_model_path = "/models/x.gguf"
    S.save_settings(s)
    assert S.load_settings() == s
    leftovers = [p.name for p in paths.config_dir().iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("data,key,value", [
    ({"guard": {"rules": {"answer": {"threat": {"threshold": 1.5}}}}}, "guard.rules.answer.threat.threshold", 1.5),
    ({"guard": {"rules": {"answer": {"threat": {"threshold": "high"}}}}}, "guard.rules.answer.threat.threshold",
     "high"),
    ({"guard": {"rules": {"answer": {"hate_speech": {"threshold": 0.5}}}}}, "guard.rules.answer.hate_speech",
     {"threshold": 0.5}),
    ({"guard": {"rules": {"system": {}}}}, "guard.rules.system", {}),
    ({"guard": {"rules": {"answer": {"threat": {"action": "explode"}}}}}, "guard.rules.answer.threat.action",
     "explode"),
    ({"guard": {"rules": {"prompt": {"insult": {"action": "redact"}}}}}, "guard.rules.prompt.insult.action",
     "redact"),
    ({"generation": {"temperature": "warm"}}, "generation.temperature", "warm"),
    ({"generation": {"max_tokens": 12.5}}, "generation.max_tokens", 12.5),
    ({"generation": {"gpu_layers": "most"}}, "generation.gpu_layers", "most"),
    ({"generation": {"gpu_layers": "²"}}, "generation.gpu_layers", "²"),   # isdigit() but not int()
    ({"thinking_visibility": "sometimes"}, "thinking_visibility", "sometimes"),
    ({"language": {"target": "English"}}, "language.target", "English"),
    ({"preamble": {"enabled": "yes"}}, "preamble.enabled", "yes"),
    ({"guard": {"model_type": "gpt"}}, "guard.model_type", "gpt"),
    ({"guard": {"channels": {"answer": 1}}}, "guard.channels.answer", 1),
    ({"colour": "blue"}, "colour", "blue"),
    ({"generation": 5}, "generation", 5),
    ({"retention_days": -1}, "retention_days", -1),
])
def test_invalid_values_name_file_key_and_value(data, key, value):
    _write(data)
    with pytest.raises(SettingsError) as exc:
        S.load_settings()
    err = exc.value
    assert err.path == str(paths.settings_path()) and err.key == key and err.value == value
    assert str(paths.settings_path()) in str(err) and key in str(err)


def test_not_json_and_not_an_object():
    paths.settings_path().write_text("{ not json", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid JSON"):
        S.load_settings()
    _write([1, 2])
    with pytest.raises(SettingsError, match="JSON object"):
        S.load_settings()


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00\x81 binary garbage", b"[" * 100_000])
def test_binary_or_absurdly_nested_file_is_a_settings_error(raw):
    paths.settings_path().write_bytes(raw)
    with pytest.raises(SettingsError) as exc:
        S.load_settings()
    assert exc.value.path == str(paths.settings_path())
    store = S.SettingsStore()                   # the app still starts, on the defaults
    assert store.current == S.Settings() and len(store.problems) == 1


def test_import_policy_whose_guard_is_not_an_object(tmp_path):
    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"guard": 5}))
    with pytest.raises(SettingsError) as exc:
        S.import_policy(bad, S.Settings())
    assert exc.value.key == "guard" and exc.value.value == 5


def test_store_keeps_the_previous_valid_settings():
    _write({"guard": {"rules": {"answer": {"threat": {"threshold": 0.3}}}}})
    store = S.SettingsStore()
    assert store.current.guard.rules["answer"]["threat"].threshold == 0.3 and store.problems == []
    _write({"guard": {"rules": {"answer": {"threat": {"threshold": 7}}}}})
    problems = store.reload()
    assert len(problems) == 1 and problems[0].key == "guard.rules.answer.threat.threshold" and problems[0].value == 7
    assert store.current.guard.rules["answer"]["threat"].threshold == 0.3  # still in force
    # a fresh start with the bad file falls back to the last-known-good copy on disk
    fresh = S.SettingsStore()
    assert fresh.current.guard.rules["answer"]["threat"].threshold == 0.3
    assert fresh.problems and fresh.problems[0].value == 7


def test_store_save_returns_the_diff():
    store = S.SettingsStore()
    new = S.load_settings()
    new.guard.rules["answer"]["insult"].threshold = 0.9
    new.thinking_visibility = "hidden"
    diff = store.save(new)
    assert diff == [("guard.rules.answer.insult.threshold", 0.6, 0.9), ("thinking_visibility", "collapsed", "hidden")]
    assert S.load_settings().thinking_visibility == "hidden"


def test_invalid_settings_object_is_never_written():
    s = S.Settings()
    s.generation.top_p = 3.0
    with pytest.raises(SettingsError, match="generation.top_p"):
        S.save_settings(s)
    assert not paths.settings_path().exists()


def test_site_policy_overrides_and_locks_keys():
    site = S.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(json.dumps({"guard": {"rules": {"answer": {"threat": {"threshold": 0.2, "action": "block"}}}},
                                "thinking_visibility": "hidden"}))
    _write({"thinking_visibility": "shown", "generation": {"temperature": 0.7}})
    s = S.load_settings()
    assert s.thinking_visibility == "hidden" and s.guard.rules["answer"]["threat"].threshold == 0.2
    assert s.generation.temperature == 0.7  # unlocked keys stay the user's
    assert S.locked_keys() == {"guard.rules.answer.threat.threshold", "guard.rules.answer.threat.action",
                               "thinking_visibility"}
    s.thinking_visibility = "shown"
    with pytest.raises(SettingsError, match="locked by the site policy") as exc:
        S.save_settings(s)
    assert exc.value.key == "thinking_visibility"
    s.thinking_visibility = "hidden"
    S.save_settings(s)  # locked keys at the site's value are fine


def test_invalid_site_policy_is_reported_with_its_path():
    site = S.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(json.dumps({"guard": {"rules": {"answer": {"threat": {"threshold": -1}}}}}))
    with pytest.raises(SettingsError) as exc:
        S.load_settings()
    assert exc.value.path == str(site) and "locked to the safe defaults" in str(exc.value)


def test_export_and_import_policy(tmp_path):
    s = S.Settings()
    s.guard.rules["thinking"]["threat"] = S.RuleSetting(0.33, "block")
    out = tmp_path / "policy.json"
    S.export_policy(s, out)
    imported = S.import_policy(out, S.Settings())
    assert imported.guard == s.guard
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"guard": {"rules": {"thinking": {"threat": {"threshold": 2}}}}}))
    with pytest.raises(SettingsError) as exc:
        S.import_policy(bad, S.Settings())
    assert exc.value.path == str(bad) and exc.value.key == "guard.rules.thinking.threat.threshold"
    with pytest.raises(SettingsError, match="only 'schema_version' and 'guard'"):
        bad.write_text(json.dumps({"guard": {}, "retention_days": 3}))
        S.import_policy(bad, S.Settings())


def test_migration_from_unversioned_files_and_newer_versions_refused():
    _write({"policy": {"answer": {"insult": {"threshold": 0.1, "action": "flag"}}}})
    s = S.load_settings()
    assert s.guard.rules["answer"]["insult"].threshold == 0.1 and s.schema_version == S.SCHEMA_VERSION
    _write({"schema_version": S.SCHEMA_VERSION + 1})
    with pytest.raises(SettingsError, match="newer r1desk"):
        S.load_settings()


def test_settings_diff_and_policy():
    a, b = S.Settings(), S.Settings()
    assert S.settings_diff(a, b) == []
    b.guard.channels["thinking"] = False
    assert S.settings_diff(a, b) == [("guard.channels.thinking", True, False)]
    assert b.policy().enabled["thinking"] is False


def test_no_site_policy_means_no_locked_keys():
    assert S.locked_keys() == set()


@pytest.mark.parametrize(("key", "value"), [("template", "sonnet"), ("language.target", "klingon")])
def test_template_and_language_must_be_known(key, value):
    section, _, name = key.rpartition(".")
    data = S.Settings().to_dict()
    (data[section] if section else data)[name] = value
    with pytest.raises(SettingsError) as info:
        S.settings_from_dict(data, path="settings.json")
    assert info.value.key == key and info.value.value == value


# --- the site policy fails closed -------------------------------------------------------------------
def _user_loosened_settings():
    """A user file (and its last-good copy) that turns the answer guard off."""
    _write({"thinking_visibility": "shown", "guard": {"rules": {"answer": {"threat": {"threshold": 0.99,
                                                                                      "action": "allow"}}}}})
    assert S.SettingsStore().problems == []          # writes the last-known-good copy too


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"guard": {"rules": {"answer": {"threat": '
                                     '{"threshold": -1}}}}}', '{"no_such_key": 1}'])
def test_a_broken_site_policy_locks_to_the_safe_defaults(content):
    _user_loosened_settings()
    site = S.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(content)
    store = S.SettingsStore()
    assert store.current == S.Settings(), "neither the user's file nor its last-good copy applies"
    assert len(store.problems) == 1 and "locked to the safe defaults" in str(store.problems[0])
    assert store.reload() and store.current == S.Settings()
    assert S.locked_keys() >= {"thinking_visibility", "guard.rules.answer.threat.threshold"}
    with pytest.raises(S.SitePolicyError):
        S.save_settings(S.Settings())
    assert isinstance(S.site_policy_problem(), S.SitePolicyError)


def test_a_fifo_site_policy_is_never_opened():
    import os
    import threading

    site = S.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(site)
    result: dict = {}

    def load():
        try:
            S.load_settings()
        except SettingsError as exc:
            result["error"] = exc

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():                       # unblock the reader so the test run can end, then fail
        fd = os.open(site, os.O_RDWR)
        os.close(fd)
        pytest.fail("reading the site policy blocked on a FIFO")
    assert "not a regular file" in str(result["error"])
    assert S.SettingsStore().current == S.Settings()


def test_an_oversized_site_policy_is_refused():
    site = S.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(" " * (S.SITE_POLICY_MAX_BYTES + 1) + "{}")
    assert "larger than" in str(S.site_policy_problem())


def test_site_policy_location_ignores_user_environment(monkeypatch, tmp_path):
    from r1desk import paths

    monkeypatch.undo()          # the real constant, not the test profile's
    fixed = paths.site_config_dir()
    monkeypatch.setenv("R1DESK_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    assert paths.site_config_dir() == fixed
    assert str(tmp_path) not in str(S.site_policy_path())
    if sys.platform.startswith("linux"):
        assert fixed == Path("/etc/xdg/r1desk")
