"""Secret references in the configuration's string values, resolved when the file is loaded.

============================  ==========================================================================
``${NAME}``, ``$NAME``,        the environment variable ``NAME``
``${env:NAME}``
``${file:/path}``              the file's contents, trailing whitespace stripped (the Kubernetes and
                               Docker secret-file convention; ``~/`` works too)
``${keyring:service/name}``    the system keyring's password for ``name`` in ``service`` (``keyring``)
``${vault:path#field}``        ``field`` of the HashiCorp Vault KV v2 secret at ``path`` (``hvac``)
============================  ==========================================================================

Each kind is one entry of ``KINDS``: how to resolve it and whether a running gateway reads it again
(``refreshable``: files and Vault change under a running process; the environment and the keyring do
not, or not without the operator's own reload). A ``Resolution`` is one load: it holds the one Vault
client and the one read per Vault path that load makes, the unset variables (reported together), and
a keyed fingerprint of each refreshable value, which is what the periodic refresh compares, so that no
second plaintext copy of a secret is kept. No error here ever contains a resolved value.

Vault is configured as its own CLI is, from the environment: ``VAULT_ADDR``; a token from
``VAULT_TOKEN``, else an AppRole login with ``VAULT_ROLE_ID`` and ``VAULT_SECRET_ID``;
``VAULT_NAMESPACE``; ``VAULT_CACERT``; ``VAULT_CLIENT_TIMEOUT`` (seconds, at most 60, default 5); the
KV v2 mount from ``VAULT_KV_MOUNT`` (default ``secret``). Resolving blocks (files, the keyring's
D-Bus, Vault's HTTP): callers on an event loop run it in a thread, as ``ccrouter.reload`` does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ccrouter.config_errors import MissingVariable
from ccrouter.errors import ConfigError

if TYPE_CHECKING:
    import hvac

__all__ = [
    "KINDS",
    "REFERENCE",
    "Kind",
    "Reference",
    "Resolution",
    "find",
    "fingerprint",
    "read_secret_file",
]

# `$$` first so an escaped dollar is never read as the start of a reference; then `${NAME}`, `$NAME`,
# and `${kind:target}` for every kind (an unknown kind is an error, not a literal: a typo such as
# `${vualt:...}` must not become the key sent upstream).
REFERENCE = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([a-z]+):([^}]*)\}"
)
# A reference's target is a name, a path or a Vault path and field: anything longer is a mistake.
_MAX_TARGET = 1024
# A secret file is a key or a token: anything longer is not what the reference meant.
_MAX_SECRET_FILE = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFAULT_VAULT_TIMEOUT_S = 5
_MAX_VAULT_TIMEOUT_S = 60
# Fingerprints are keyed: they sit in memory for the process's life and must not let anyone who reads
# them test a guess of a secret. Made at import; only this process ever compares them.
_PRINT_KEY = os.urandom(32)


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference as written (``text``): its ``kind`` (a key of ``KINDS``) and ``target``."""

    kind: str
    target: str
    text: str

    @property
    def key(self) -> str:
        """``kind:target``: the same secret however it is spelt (``$X``, ``${X}``, ``${env:X}``)."""
        return f"{self.kind}:{self.target}"


def _reference(match: re.Match[str]) -> Reference | None:
    if match.group(0) == "$$":
        return None
    if match.group(3) is not None:
        return Reference(match.group(3), match.group(4), match.group(0))
    return Reference("env", match.group(1) or match.group(2), match.group(0))


def find(text: str) -> list[Reference]:
    """The references in ``text``, in order; nothing is read or resolved."""
    return [ref for match in REFERENCE.finditer(text) if (ref := _reference(match)) is not None]


def fingerprint(value: str) -> str:
    """A keyed hash of a secret value: equal values, equal prints; the print reveals nothing."""
    return hmac.new(_PRINT_KEY, value.encode(), hashlib.sha256).hexdigest()


class Kind(Protocol):
    """How one kind of reference is resolved."""

    refreshable: bool

    def resolve(self, ref: Reference, where: str, resolution: Resolution) -> str | None:
        """The value, or None when it is missing and ``resolution`` collects the problem."""
        ...


class Resolution:
    """One load's references: the Vault client and reads it shares, the unset variables, and the
    fingerprints of the refreshable values it resolved. Used for one load, then dropped."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.missing: list[MissingVariable] = []
        self._prints: dict[str, str] = {}
        self._vault: _VaultReader | None = None

    @property
    def prints(self) -> Mapping[str, str]:
        """``kind:target`` -> fingerprint, for every file and Vault reference resolved so far."""
        return MappingProxyType(self._prints)

    def substitute(self, text: str, where: str) -> str:
        """``text`` with every reference replaced by its value (``$$`` by ``$``); ``where`` is the key
        path named in errors. An unset variable becomes "" and is collected in ``missing``."""
        if "$" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            ref = _reference(match)
            return "$" if ref is None else self.resolve(ref, where)

        return REFERENCE.sub(replace, text)

    def resolve(self, ref: Reference, where: str) -> str:
        """The value of one reference (see ``substitute``)."""
        kind = KINDS.get(ref.kind)
        if kind is None:
            known = ", ".join(sorted(KINDS))
            raise ConfigError(f"{where}: {ref.text} is not a known reference kind (known: {known})")
        if len(ref.target) > _MAX_TARGET:
            raise ConfigError(f"{where}: a ${{{ref.kind}:...}} reference over {_MAX_TARGET} characters")
        value = kind.resolve(ref, where, self)
        if value is None:
            return ""
        if kind.refreshable:
            self._prints[ref.key] = fingerprint(value)
        return value

    def vault(self) -> _VaultReader:
        """The load's one Vault client, made at the first ``${vault:...}``."""
        if self._vault is None:
            self._vault = _VaultReader(self.environ)
        return self._vault

    def close(self) -> None:
        """Close the Vault client's connections, if one was made."""
        if self._vault is not None:
            self._vault.close()


# --- the kinds ---------------------------------------------------------------------------------


class _Env:
    refreshable = False

    def resolve(self, ref: Reference, where: str, resolution: Resolution) -> str | None:
        target = ref.target
        if not _ENV_NAME.fullmatch(target):
            raise ConfigError(f"{where}: ${{env:{target}}} is not an environment variable name")
        if target not in resolution.environ:
            resolution.missing.append(MissingVariable(target, where, ref.text))
            return None
        return resolution.environ[target]


def read_secret_file(name: str, where: str = "config") -> str:
    """The contents of the file a ``${file:PATH}`` reference names (absolute, or ``~/...``), trailing
    whitespace stripped. The contents never appear in an error."""
    path = Path(name.strip()).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{where}: ${{file:{name}}} must name an absolute path or one under ~/")
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read {path} (used as ${{file:{name}}}): {exc.strerror or exc}"
        ) from None
    if len(data) > _MAX_SECRET_FILE:
        raise ConfigError(f"{where}: {path} is larger than {_MAX_SECRET_FILE} bytes: not a key file")
    try:
        return data.decode("utf-8").rstrip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None


class _File:
    refreshable = True

    def resolve(self, ref: Reference, where: str, resolution: Resolution) -> str | None:
        target = ref.target
        if not target.strip():
            raise ConfigError(f"{where}: ${{file:}} names no file")
        return read_secret_file(target, where)


class _Keyring:
    refreshable = False

    def resolve(self, ref: Reference, where: str, resolution: Resolution) -> str | None:
        target = ref.target
        import keyring
        from keyring.errors import KeyringError

        service, _, name = target.rpartition("/")
        if not service or not name:
            raise ConfigError(f"{where}: ${{keyring:{target}}} must be ${{keyring:service/name}}")
        try:
            value = keyring.get_password(service, name)
        except KeyringError as exc:
            # The backend's own words (no keyring installed, locked, D-Bus refused), never a value.
            raise ConfigError(
                f"{where}: cannot read the keyring for ${{keyring:{target}}}: {type(exc).__name__}: {exc}"
            ) from None
        if value is None:
            raise ConfigError(
                f"{where}: no keyring entry for ${{keyring:{target}}} (service {service!r}, name {name!r};"
                f" store one with: keyring set {service} {name})"
            )
        return value


class _Vault:
    refreshable = True

    def resolve(self, ref: Reference, where: str, resolution: Resolution) -> str | None:
        target = ref.target
        path, _, field = target.rpartition("#")
        path = path.strip("/")
        if not path or not field:
            raise ConfigError(f"{where}: ${{vault:{target}}} must be ${{vault:path#field}}")
        return resolution.vault().field(path, field, f"{where}: ${{vault:{target}}}")


KINDS: Mapping[str, Kind] = MappingProxyType(
    {"env": _Env(), "file": _File(), "keyring": _Keyring(), "vault": _Vault()}
)


# --- Vault -------------------------------------------------------------------------------------


def _timeout(environ: Mapping[str, str]) -> int:
    text = environ.get("VAULT_CLIENT_TIMEOUT", "").strip().removesuffix("s")
    if not text:
        return _DEFAULT_VAULT_TIMEOUT_S
    try:
        seconds = int(text)
    except ValueError:
        raise ConfigError("VAULT_CLIENT_TIMEOUT: not a whole number of seconds") from None
    if not 0 < seconds <= _MAX_VAULT_TIMEOUT_S:
        raise ConfigError(f"VAULT_CLIENT_TIMEOUT: must be from 1 to {_MAX_VAULT_TIMEOUT_S} seconds")
    return seconds


class _VaultReader:
    """One hvac client for one load, logged in on first use; each secret path read once."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._address = environ.get("VAULT_ADDR", "").strip()
        self._mount = environ.get("VAULT_KV_MOUNT", "").strip().strip("/") or "secret"
        self._timeout = _timeout(environ)
        # The one client, or why there is none (a failed login is not tried again in this load).
        self._client: hvac.Client | ConfigError | None = None
        # path -> the secret's data, or the error its read gave (a failed path is not asked twice).
        self._reads: dict[str, Mapping[str, Any] | ConfigError] = {}

    def field(self, path: str, field: str, where: str) -> str:
        if path not in self._reads:
            try:
                self._reads[path] = self._read(path)
            except ConfigError as exc:
                self._reads[path] = exc
        data = self._reads[path]
        if isinstance(data, ConfigError):
            raise ConfigError(f"{where}: {data.message}")
        if field not in data:
            fields = ", ".join(sorted(map(str, data))) or "none"
            raise ConfigError(
                f"{where}: the secret {self._mount}/{path} has no field {field!r} (fields: {fields})"
            )
        value = data[field]
        if not isinstance(value, str):
            raise ConfigError(f"{where}: field {field!r} of {self._mount}/{path} is not a string")
        return value

    def _connect(self) -> hvac.Client:
        if self._client is None:
            try:
                self._client = self._login()
            except ConfigError as exc:
                self._client = exc
        if isinstance(self._client, ConfigError):
            raise self._client
        return self._client

    def _login(self) -> hvac.Client:
        import hvac
        from hvac import exceptions as vault_errors

        if not self._address:
            raise ConfigError("VAULT_ADDR is not set (the Vault server's address, e.g. https://vault:8200)")
        env = self._environ
        token = env.get("VAULT_TOKEN", "").strip()
        role_id, secret_id = env.get("VAULT_ROLE_ID", "").strip(), env.get("VAULT_SECRET_ID", "").strip()
        if not token and not (role_id and secret_id):
            raise ConfigError("no Vault credentials: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
        client = hvac.Client(
            url=self._address,
            token=token,  # explicit: hvac would otherwise read its own environment and ~/.vault-token
            namespace=env.get("VAULT_NAMESPACE") or None,
            verify=env.get("VAULT_CACERT") or True,
            timeout=self._timeout,
        )
        if not token:
            try:
                client.auth.approle.login(role_id=role_id, secret_id=secret_id)
            except (vault_errors.VaultError, OSError) as exc:  # requests' errors are OSErrors
                client.adapter.close()
                raise ConfigError(
                    f"the AppRole login at {self._address} failed: {_vault_problem(exc)}"
                ) from None
        return client

    def _read(self, path: str) -> Mapping[str, Any]:
        from hvac import exceptions as vault_errors

        client = self._connect()
        try:
            response = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self._mount, raise_on_deleted_version=True
            )
        except vault_errors.InvalidPath:
            raise ConfigError(f"no secret at {self._mount}/{path} in Vault ({self._address})") from None
        except (vault_errors.VaultError, OSError) as exc:
            raise ConfigError(
                f"reading {self._mount}/{path} from Vault failed: {_vault_problem(exc)}"
            ) from None
        data = response.get("data", {}).get("data") if isinstance(response, dict) else None
        if not isinstance(data, dict):
            raise ConfigError(f"Vault's answer for {self._mount}/{path} is not a KV v2 secret")
        return data

    def close(self) -> None:
        if self._client is not None and not isinstance(self._client, ConfigError):
            self._client.adapter.close()


def _vault_problem(exc: Exception) -> str:
    """What went wrong, in words that never carry a token or a value: hvac's errors hold Vault's own
    ``errors`` list (``permission denied``); a transport error is named by its class."""
    from hvac import exceptions as vault_errors

    if isinstance(exc, vault_errors.Unauthorized | vault_errors.Forbidden):
        return "permission denied (a token that is wrong, expired, or lacks a policy for this path)"
    if isinstance(exc, vault_errors.VaultError):
        errors = "; ".join(str(error) for error in exc.errors or [])
        return f"{type(exc).__name__}{': ' + errors[:200] if errors else ''}"
    return f"cannot reach it ({type(exc).__name__})"
