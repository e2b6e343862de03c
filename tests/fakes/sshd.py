"""Real OpenSSH ``sshd`` servers on loopback, one per simulated "host", for the SSH driver's tests.

Each ``SshdHost`` is an ``sshd -D -f <its config>`` process on 127.0.0.1 with its own generated
host key, an ``authorized_keys`` holding the test user key, and its own directory (where the SSH
driver keeps its marker: two hosts never look like one). ``SshdFarm`` starts several and stops them
by pid. Nothing listens on any other address; nothing outside the temp dir is written except
``/run/sshd`` (sshd's privilege-separation directory, created if missing when running as root).

Every session on a host gets that host's own ``HOME`` (``SetEnv``): its ``~/.ray_multicloud`` marker
is its own, and no ``~/.ray`` of the machine's user (an ``auth_token`` there turns Ray's token auth
on) leaks in. ``env`` sets more variables per host, e.g. a ``PATH`` with a fake ``nvidia-smi`` in
front, so one host can report GPUs the others do not have.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None)


def sshd_available() -> bool:
    """Whether OpenSSH's server is installed (``.ci/run`` installs Debian's ``openssh-server``)."""
    return SSHD is not None and shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path, comment: str = "rmc-test") -> Path:
    """A fresh passphrase-less ed25519 key at ``path`` (and ``path.pub``)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdout=subprocess.DEVNULL)
    return path


def fingerprint(pub: Path) -> str:
    """The SHA256 fingerprint of a public key file, as ``ssh-keygen -lf`` prints it (``SHA256:...``)."""
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


@dataclass
class SshdHost:
    """One running ``sshd``: where it listens, its host key, its own directory."""

    name: str
    port: int
    dir: Path
    host_key: Path
    proc: subprocess.Popen[bytes] | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return "127.0.0.1"

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.host_key.with_suffix(".pub"))

    def known_hosts_line(self) -> str:
        """This host's line for a known_hosts file (``[127.0.0.1]:PORT ssh-ed25519 AAAA...``)."""
        key = self.host_key.with_suffix(".pub").read_text().split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}\n"

    def stop(self) -> None:
        """Stop this sshd (by its pid); sessions it forked end with their connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class SshdFarm:
    """Several sshd "hosts" on loopback sharing one user key. ``start()`` / ``stop()`` or ``with``."""

    def __init__(self, root: Path, count: int, *, env: Mapping[int, Mapping[str, str]] | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.user = getpass.getuser()
        self.user_key = keygen(self.root / "user_key")
        self.authorized_keys = self.root / "authorized_keys"
        shutil.copy(self.user_key.with_suffix(".pub"), self.authorized_keys)
        os.chmod(self.authorized_keys, 0o600)
        env = env or {}
        self.hosts: list[SshdHost] = []
        for i in range(count):
            hdir = self.root / f"host{i}"
            (hdir / "home").mkdir(parents=True)
            self.hosts.append(SshdHost(name=f"host{i}", port=_free_port(), dir=hdir,
                                       host_key=keygen(hdir / "ssh_host_ed25519_key", f"host{i}"),
                                       env={"HOME": str(hdir / "home"), **env.get(i, {})}))

    def known_hosts(self) -> Path:
        """A known_hosts file that trusts every host of the farm."""
        path = self.root / "known_hosts"
        path.write_text("".join(h.known_hosts_line() for h in self.hosts))
        return path

    def _config(self, host: SshdHost) -> Path:
        lines = [
            f"Port {host.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host.host_key}",
            f"PidFile {host.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 100",
            "MaxSessions 100",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
        ]
        if host.env:
            lines.append("SetEnv " + " ".join(f'{k}="{v}"' for k, v in host.env.items()))
        path = host.dir / "sshd_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_host(self, host: SshdHost, *, timeout_s: float = 15.0) -> None:
        """Start (or restart) one host's sshd and wait until its port accepts connections."""
        assert SSHD is not None
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        log = open(host.dir / "sshd.log", "ab")  # noqa: SIM115 - handed to the child
        host.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self._config(host))],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if host.proc.poll() is not None:
                raise RuntimeError(f"sshd for {host.name} exited: {(host.dir / 'sshd.log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", host.port), 0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd for {host.name} did not listen on 127.0.0.1:{host.port}")

    def start(self) -> SshdFarm:
        for host in self.hosts:
            self.start_host(host)
        return self

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()

    def __enter__(self) -> SshdFarm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def sshd_farm(root: Path, count: int, **kwargs: object) -> Iterator[SshdFarm]:
    farm = SshdFarm(root, count, **kwargs)  # type: ignore[arg-type]
    with farm:
        yield farm


FAKE_RAY = """#!/bin/bash
# A stand-in for `ray` on a contract-suite host: `ray start` leaves one long-lived process in the
# node's process group and returns 0, as the real one leaves its raylet.
[ "$1" = start ] || exit 2
nohup sleep 100000 >/dev/null 2>&1 &
exit 0
"""


def fake_ray(path: Path) -> Path:
    """Write ``FAKE_RAY`` to ``path`` (executable) and return it."""
    path.write_text(FAKE_RAY)
    path.chmod(0o755)
    return path


def ssh_cloud_spec(farm: SshdFarm, *, kinds: Mapping[int, str] | None = None, ray: str = "ray",
                   extra_host: Callable[[int], Mapping[str, object]] | None = None,
                   **cloud: object) -> dict[str, object]:
    """A ``driver: ssh`` cloud entry for the farm's hosts (the default ``state_dir``, under each
    host's own HOME), one V100 each, ``instance_type`` from ``kinds`` (host index -> type; default
    ``v100-a``); ``extra_host(i)`` adds keys to host ``i``."""
    kinds = kinds or {}
    hosts = []
    for i, host in enumerate(farm.hosts):
        hosts.append({
            "address": host.address, "port": host.port, "user": farm.user,
            "ssh_private_key": str(farm.user_key), "accelerator": "V100", "accelerator_count": 1,
            "vcpus": 8, "memory_gib": 61, "instance_type": kinds.get(i, "v100-a"),
            **(extra_host(i) if extra_host else {}),
        })
    return {"driver": "ssh", "region": "dc1", "known_hosts": str(farm.known_hosts()), "ray": ray,
            "unavailable_seconds": 30, "connect_timeout_seconds": 5, "hosts": hosts, **cloud}


LOOPBACK_RAY = """#!/bin/bash
# The real `ray` CLI, for SSH "hosts" that are this machine: Ray deliberately turns a 127.0.0.1
# --address into the machine's other address (so remote nodes can reach the head), and nothing here
# listens there. This undoes that one translation; everything else is the real `ray start`.{minimal_note}
exec {python} -c '
import sys
import ray._private.services as services
services.resolve_ip_for_localhost = lambda host: host{minimal}
from ray.scripts.scripts import main
sys.argv[0] = "ray"
sys.exit(main())
' "$@"
"""

_MINIMAL_NOTE = """
# The node's dashboard agent runs as on a host with the minimal `ray` package (fewer imports): the
# raylet gives it 15 s to report its ports and dies otherwise, which a loaded test machine misses."""
_MINIMAL = (
    "\nimport ray._private.utils as utils"
    "\nutils.get_dashboard_dependency_error = lambda: \"minimal agent (fakes.sshd.loopback_ray)\""
)


def loopback_ray(path: Path, *, minimal_agent: bool = False) -> Path:
    """Write ``LOOPBACK_RAY`` (for this Python) to ``path``, executable, and return it.
    ``minimal_agent``: the node's dashboard agent starts as with the minimal ``ray`` package."""
    import sys

    path.write_text(LOOPBACK_RAY.format(python=sys.executable,
                                        minimal_note=_MINIMAL_NOTE if minimal_agent else "",
                                        minimal=_MINIMAL if minimal_agent else ""))
    path.chmod(0o755)
    return path


def node_processes(prefix: str) -> dict[int, str]:
    """Live (not zombie) processes of this machine whose environment carries a
    ``RAY_CLOUD_INSTANCE_ID`` starting with ``prefix``: pid -> that id."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        for var in env:
            if var.startswith(b"RAY_CLOUD_INSTANCE_ID=" + prefix.encode()):
                found[int(entry)] = var.split(b"=", 1)[1].decode()
    return found
