"""Colours and the stylesheet, light or dark, following the system (Qt 6.5+ ``colorScheme()``).

The palette is a plain dataclass so the markdown renderer (Qt-free) can use the same colours.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:                   # PySide6 loads only when a theme is applied
    from PySide6.QtWidgets import QApplication

log = logging.getLogger("r1desk.ui")


@dataclass(frozen=True)
class Palette:
    dark: bool
    window: str
    surface: str          # cards, the input box
    sidebar: str
    border: str
    text: str
    muted: str
    accent: str
    accent_text: str
    user_bubble: str
    code_bg: str
    code_border: str
    inline_code_bg: str
    flag: str             # flagged-segment badge colour
    flag_bg: str
    danger: str
    danger_bg: str
    warn: str
    warn_bg: str
    ok: str
    pygments_style: str


LIGHT = Palette(
    dark=False, window="#f7f7f8", surface="#ffffff", sidebar="#eef0f3", border="#dfe2e7", text="#1f2328",
    muted="#6a737d", accent="#3b5bdb", accent_text="#ffffff", user_bubble="#e7ecfb", code_bg="#f6f8fa",
    code_border="#e1e4e8", inline_code_bg="#eff1f3", flag="#b35c00", flag_bg="#fff1dc", danger="#c92a2a",
    danger_bg="#fff0f0", warn="#8a6100", warn_bg="#fff8db", ok="#2b8a3e", pygments_style="friendly",
)

DARK = Palette(
    dark=True, window="#1b1d21", surface="#24272d", sidebar="#202328", border="#353a42", text="#e6e8eb",
    muted="#9aa3ad", accent="#748ffc", accent_text="#0f1115", user_bubble="#2d3550", code_bg="#16181c",
    code_border="#30353c", inline_code_bg="#30343b", flag="#ffa94d", flag_bg="#4a3418", danger="#ff8787",
    danger_bg="#43262a", warn="#ffd43b", warn_bg="#3d3519", ok="#69db7c", pygments_style="github-dark",
)

_current: Palette = LIGHT


def current() -> Palette:
    return _current


def system_prefers_dark() -> bool:
    """True when the desktop asks for a dark theme (Qt 6.5+, PySide6 >= 6.7 is required); light when unknown."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply(app: QApplication, dark: bool | None = None) -> Palette:
    """Set the Fusion style, a matching QPalette and the stylesheet; returns the palette in use."""
    from PySide6.QtGui import QColor, QPalette

    global _current
    if dark is None:
        dark = system_prefers_dark()
    pal = DARK if dark else LIGHT
    _current = pal
    app.setStyle("Fusion")
    qp = QPalette()
    qp.setColor(QPalette.ColorRole.Window, QColor(pal.window))
    qp.setColor(QPalette.ColorRole.WindowText, QColor(pal.text))
    qp.setColor(QPalette.ColorRole.Base, QColor(pal.surface))
    qp.setColor(QPalette.ColorRole.AlternateBase, QColor(pal.sidebar))
    qp.setColor(QPalette.ColorRole.Text, QColor(pal.text))
    qp.setColor(QPalette.ColorRole.Button, QColor(pal.surface))
    qp.setColor(QPalette.ColorRole.ButtonText, QColor(pal.text))
    qp.setColor(QPalette.ColorRole.Highlight, QColor(pal.accent))
    qp.setColor(QPalette.ColorRole.HighlightedText, QColor(pal.accent_text))
    qp.setColor(QPalette.ColorRole.ToolTipBase, QColor(pal.surface))
    qp.setColor(QPalette.ColorRole.ToolTipText, QColor(pal.text))
    qp.setColor(QPalette.ColorRole.PlaceholderText, QColor(pal.muted))
    qp.setColor(QPalette.ColorRole.Link, QColor(pal.accent))
    app.setPalette(qp)
    app.setStyleSheet(stylesheet(pal))
    return pal


def stylesheet(p: Palette) -> str:
    """Application stylesheet; widgets opt in through objectName / dynamic properties."""
    return f"""
QMainWindow, QDialog {{ background: {p.window}; }}
QWidget {{ font-size: 10pt; }}
QToolTip {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.border}; padding: 4px; }}
#Sidebar {{ background: {p.sidebar}; border-right: 1px solid {p.border}; }}
#Sidebar QListWidget {{ background: transparent; border: none; }}
#Sidebar QListWidget::item {{ padding: 7px 8px; border-radius: 6px; margin: 1px 0; }}
#Sidebar QListWidget::item:selected {{ background: {p.surface}; color: {p.text};
    border: 1px solid {p.border}; }}
#Sidebar QListWidget::item:hover:!selected {{ background: {p.border}; }}
#AppTitle {{ font-size: 13pt; font-weight: 600; }}
QLineEdit, QPlainTextEdit, QComboBox {{ background: {p.surface}; border: 1px solid {p.border};
    border-radius: 6px; padding: 5px 8px; color: {p.text}; }}
QLineEdit:focus, QPlainTextEdit:focus {{ border: 1px solid {p.accent}; }}
QPushButton {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 6px;
    padding: 6px 14px; color: {p.text}; }}
QPushButton:hover {{ border-color: {p.accent}; }}
QPushButton:disabled {{ color: {p.muted}; }}
QPushButton[primary="true"] {{ background: {p.accent}; color: {p.accent_text}; border: 1px solid {p.accent};
    font-weight: 600; }}
QPushButton[primary="true"]:disabled {{ background: {p.border}; border-color: {p.border}; color: {p.muted}; }}
QPushButton[danger="true"] {{ color: {p.danger}; }}
QToolButton {{ border: none; border-radius: 5px; padding: 3px 6px; color: {p.muted}; background: transparent; }}
QToolButton:hover {{ background: {p.border}; color: {p.text}; }}
QToolButton:checked {{ color: {p.accent}; }}
QPushButton:focus {{ border: 2px solid {p.accent}; padding: 5px 13px; }}
QToolButton:focus, QComboBox:focus {{ border: 2px solid {p.accent}; }}
QCheckBox:focus, QRadioButton:focus {{ color: {p.accent}; }}
#WeightsPanel {{ background: {p.warn_bg}; border-bottom: 1px solid {p.border}; }}
#DisclosureBar {{ background: {p.surface}; border-bottom: 1px solid {p.border}; }}
#DisclosureBar QLabel {{ color: {p.muted}; }}
#DisclosureBar QLabel#ModelName {{ color: {p.text}; font-weight: 600; }}
QLabel[chip="ok"] {{ color: {p.ok}; }}
QLabel[chip="warn"] {{ color: {p.warn}; background: {p.warn_bg}; border-radius: 9px; padding: 1px 8px; }}
QLabel[chip="danger"] {{ color: {p.danger}; background: {p.danger_bg}; border-radius: 9px; padding: 1px 8px; }}
QLabel[chip="flag"] {{ color: {p.flag}; background: {p.flag_bg}; border-radius: 9px; padding: 1px 8px; }}
QLabel[chip="muted"] {{ color: {p.muted}; }}
#ChatScroll, #ChatScroll > QWidget > QWidget {{ background: {p.window}; border: none; }}
#UserBubble {{ background: {p.user_bubble}; border-radius: 12px; }}
#AssistantCard {{ background: transparent; }}
#ThinkingPanel {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px; }}
#ThinkingHeader {{ color: {p.muted}; font-weight: 600; text-align: left; padding: 6px 10px; }}
#NoticeBox {{ background: {p.warn_bg}; color: {p.warn}; border-radius: 8px; padding: 8px 10px; }}
#BlockedBox {{ background: {p.danger_bg}; color: {p.danger}; border-radius: 8px; padding: 10px 12px; }}
#InputFrame {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 12px; }}
#InputFrame QPlainTextEdit {{ border: none; background: transparent; font-size: 11pt; }}
#FewShotWarning {{ color: {p.warn}; }}
#StatsLabel {{ color: {p.muted}; }}
#EmptyState QLabel#EmptyTitle {{ font-size: 18pt; font-weight: 600; }}
#EmptyState QLabel#EmptyBody {{ color: {p.muted}; font-size: 11pt; }}
#DropZone {{ border: 2px dashed {p.border}; border-radius: 10px; color: {p.muted}; padding: 14px; }}
#DropZone[hover="true"] {{ border-color: {p.accent}; color: {p.accent}; }}
QTableWidget {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px;
    gridline-color: {p.border}; }}
QHeaderView::section {{ background: {p.sidebar}; border: none; border-bottom: 1px solid {p.border};
    padding: 6px; font-weight: 600; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ padding: 7px 16px; border: none; color: {p.muted}; }}
QTabBar::tab:selected {{ color: {p.text}; border-bottom: 2px solid {p.accent}; }}
QProgressBar {{ border: 1px solid {p.border}; border-radius: 5px; background: {p.sidebar}; height: 10px;
    text-align: center; }}
QProgressBar::chunk {{ background: {p.accent}; border-radius: 4px; }}
QTextBrowser {{ background: transparent; border: none; color: {p.text}; }}
QScrollBar:vertical {{ background: transparent; width: 10px; }}
QScrollBar::handle:vertical {{ background: {p.border}; border-radius: 4px; min-height: 30px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; }}
"""
