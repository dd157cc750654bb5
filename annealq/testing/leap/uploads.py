"""Multipart problem uploads (``/bqm/multipart``), as the client performs them.

The client initiates an upload with the total size, PUTs numbered parts with a
``Content-MD5`` header, checks the upload status (parts and their hex MD5),
then asks to combine the parts, sending the MD5 of the concatenated part
digests. The combined bytes are later referenced by a problem's ``data``.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from typing import Optional

__all__ = ["UploadStore", "UploadError"]


class UploadError(Exception):
    """An upload request the emulator rejects.

    Attributes:
        status: HTTP status code to answer with.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Upload:
    def __init__(self, size: int):
        self.size = size
        self.parts: dict = {}  # part number -> (bytes, their MD5 digest)
        self.data: Optional[bytes] = None


class UploadStore:
    """In-memory store of uploaded problem data, keyed by problem-data id."""

    def __init__(self):
        self._uploads: dict = {}
        self._lock = threading.Lock()

    def _get(self, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadError(404, f"no upload with id {upload_id!r}")
        return upload

    def initiate(self, size: int) -> dict:
        """Start an upload of ``size`` bytes; return ``{"id": ...}``."""
        if not isinstance(size, int) or size < 0:
            raise UploadError(400, "upload size must be a non-negative integer")
        upload_id = str(uuid.uuid4())
        with self._lock:
            self._uploads[upload_id] = _Upload(size)
        return {"id": upload_id}

    def put_part(self, upload_id: str, part: int, data: bytes, content_md5: Optional[str]) -> dict:
        """Store one part, checking its ``Content-MD5`` (base64) if given."""
        digest = hashlib.md5(data).digest()
        if content_md5 and base64.b64encode(digest).decode() != content_md5.strip():
            raise UploadError(400, f"Content-MD5 mismatch for part {part}")
        with self._lock:
            upload = self._get(upload_id)
            if upload.data is not None:
                raise UploadError(409, "upload already combined")
            upload.parts[part] = (data, digest)
        return {}

    def status(self, upload_id: str) -> dict:
        """Return the upload status in SAPI's shape."""
        with self._lock:
            upload = self._get(upload_id)
            if upload.data is not None:
                return {"status": "UPLOAD_COMPLETED", "parts": []}
            parts = [
                {"part_number": n, "checksum": digest.hex()}
                for n, (_, digest) in sorted(upload.parts.items())
            ]
        return {"status": "UPLOAD_IN_PROGRESS", "parts": parts}

    def combine(self, upload_id: str, checksum: Optional[str]) -> dict:
        """Join the parts after checking the client's combined checksum."""
        with self._lock:
            upload = self._get(upload_id)
            if upload.data is not None:
                return {}
            ordered = [upload.parts[n][0] for n in sorted(upload.parts)]
            digests = b"".join(upload.parts[n][1] for n in sorted(upload.parts))
            if checksum is not None and hashlib.md5(digests).hexdigest() != checksum:
                raise UploadError(400, "combined checksum mismatch")
            data = b"".join(ordered)
            if len(data) != upload.size:
                raise UploadError(400, f"uploaded {len(data)} bytes, announced {upload.size}")
            upload.data = data
            upload.parts.clear()
        return {}

    def data(self, upload_id: str) -> Optional[bytes]:
        """Return the combined bytes of a completed upload, or ``None``."""
        with self._lock:
            upload = self._uploads.get(upload_id)
            return None if upload is None else upload.data
