"""The alerts' signing secrets: one JSON file, readable by its owner only, outside the lake.

`<root>/alert-secrets.json` (root: the warehouse's local folder, where `keys.db` would be; the
setting `alert_secrets_file` moves it) maps alert ids to `{"secret": "whsec_...", "url": ...}`: the
signing secret and the receiver's full URL (a Slack webhook URL is itself a secret; the SQLite
database keeps only its redacted form). It is neither in an Iceberg table nor in the SQLite database,
so no snapshot, backup of the catalog or `costlake query` carries a secret. It is created with mode
0600 and replaced atomically (a 0600 temporary file in the same folder, then `os.replace`); a file
that group or others may read is refused. Nothing here logs.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from costlake.errors import ConfigError
from costlake.settings import Settings

FILE_NAME = "alert-secrets.json"


def secrets_path(settings: Settings, root: Path) -> Path:
    """Where the secrets of a warehouse's alerts live."""
    return Path(settings.alert_secrets_file) if settings.alert_secrets_file else root / FILE_NAME


class SecretFile:
    """Secrets by alert id. A change reads the file, changes one entry and replaces the file whole,
    holding an exclusive lock on `<file>.lock` so two processes adding alerts cannot lose a secret."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{self.path}: group or others may read the alerts' signing secrets "
                    f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {self.path}`"
                )
            try:
                found = json.load(handle)
            except ValueError:
                raise ConfigError(f"{self.path}: not a JSON object of alert secrets") from None
        if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
            raise ConfigError(f"{self.path}: not a JSON object of alert secrets")
        return {str(k): {str(f): str(x) for f, x in v.items()} for k, v in found.items()}

    def _write(self, secrets: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".alert-secrets-", dir=self.path.parent)  # mode 0600
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(secrets, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def get(self, alert_id: str) -> str | None:
        """The alert's signing secret."""
        return self._read().get(alert_id, {}).get("secret")

    def url(self, alert_id: str) -> str | None:
        """The alert's full receiver URL."""
        return self._read().get(alert_id, {}).get("url")

    @contextmanager
    def _changing(self) -> Iterator[dict[str, dict[str, str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            secrets = self._read()
            before = dict(secrets)
            yield secrets
            if secrets != before:
                self._write(secrets)
        finally:
            os.close(fd)  # releases the lock

    def put(self, alert_id: str, secret: str, url: str | None = None) -> None:
        """Set (or replace: a rotation) the secret of an alert, and its URL when given (a rotation keeps
        the URL); the old secret stops signing at once."""
        with self._changing() as secrets:
            secrets[alert_id] = secrets.get(alert_id, {}) | {"secret": secret} | ({"url": url} if url else {})

    def remove(self, alert_id: str) -> None:
        with self._changing() as secrets:
            secrets.pop(alert_id, None)
