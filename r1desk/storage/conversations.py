"""Conversations: create, rename, soft delete (a tombstone; the audit keeps the turns), restore.

Mixed into ``AuditLog``; listing and title search live in ``storage.queries``. Every version of a
conversation (created, renamed, deleted, restored) is chained (``storage.chain.seal_conversation``).
"""
from __future__ import annotations

from r1desk.storage import chain
from r1desk.storage.base import AuditBase
from r1desk.storage.records import AuditInputError, clean_text, new_id, now


# Self-check runs log each prompt as a conversation titled "[self-check <run>] …" (core.selfcheck): they stay in
# the audit log and its lists, but not in the end user's chat list (list_conversations(include_selfcheck=False)).
SELFCHECK_TITLE_PREFIX = "[self-check "


class ConversationsMixin(AuditBase):
    """Conversation writes of AuditLog (needs ``_write`` and ``_admin_event``)."""

    def create_conversation(self, title: str = "", *, conversation_id: str | None = None) -> str:
        cid = conversation_id or new_id()
        stamp = now()
        with self._write() as db:
            cur = db.execute("INSERT OR IGNORE INTO conversations (id, title, created, updated) VALUES (?, ?, ?, ?)",
                             [cid, clean_text(title)[:200], stamp, stamp])
            if cur.rowcount:
                chain.seal_conversation(db, cid, stamp)
        return cid

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        with self._write() as db:
            stamp = now()
            cur = db.execute("UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
                             [clean_text(title)[:200], stamp, conversation_id])
            if cur.rowcount == 0:
                raise AuditInputError(f"No conversation with id {conversation_id!r}")
            chain.seal_conversation(db, conversation_id, stamp)

    def delete_conversation(self, conversation_id: str, *, actor: str = "user") -> None:
        """Soft delete: the conversation is hidden from lists; its turns stay in the audit log."""
        with self._write() as db:
            stamp = now()
            cur = db.execute("UPDATE conversations SET deleted = ?, updated = ? WHERE id = ? AND deleted IS NULL",
                             [stamp, stamp, conversation_id])
            if cur.rowcount == 0:
                raise AuditInputError(f"No conversation with id {conversation_id!r} (or already deleted)")
            chain.seal_conversation(db, conversation_id, stamp)
            self._admin_event(db, actor, "conversation.delete", {"conversation_id": conversation_id})

    def restore_conversation(self, conversation_id: str, *, actor: str = "user") -> None:
        with self._write() as db:
            stamp = now()
            cur = db.execute("UPDATE conversations SET deleted = NULL, updated = ? WHERE id = ? "
                             "AND deleted IS NOT NULL", [stamp, conversation_id])
            if cur.rowcount == 0:
                raise AuditInputError(f"No deleted conversation with id {conversation_id!r}")
            chain.seal_conversation(db, conversation_id, stamp)
            self._admin_event(db, actor, "conversation.restore", {"conversation_id": conversation_id})
