"""Where a credential may be sent: https anywhere, plain http only to a loopback test server.

Every driver or price feed that puts a bearer token (or any other credential) on a request to a
user-configurable URL checks that URL here first, at construction, before any token is fetched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ray_multicloud.errors import ConfigError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_plain_http(url: str) -> bool:
    """True when ``url`` is ``http://`` (a scheme-less ``host:port`` is https to the SDKs)."""
    return urlsplit(url.strip()).scheme.lower() == "http"


def require_https(url: str, *, key: str) -> None:
    """Raise ``ConfigError(key)`` when ``url`` would carry a credential over plain http to a host
    that is not loopback (tests' fake servers bind 127.0.0.1). Any other scheme than http/https
    is refused too; a scheme-less ``host[:port]`` passes (the SDKs add https)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise ConfigError(
                key,
                f"plain http to {parts.hostname or url!r} would send the access token unencrypted; "
                "use https (plain http is allowed only on loopback, for test servers)",
            )
    elif scheme not in ("https", "") and "://" in url:
        raise ConfigError(key, f"unsupported URL scheme {scheme!r} in {url!r}; use https")
