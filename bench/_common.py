"""Helpers shared by the benchmark scripts: database URLs, the CLI, subprocesses, Postgres admin.

Everything here talks only to the loopback interface: a database URL whose host is not a
loopback address is refused, so a benchmark can never load a remote server by mistake.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class BenchError(RuntimeError):
    """A setup problem (missing service, failing command) explained in one message."""


def log(message: str) -> None:
    """Progress output goes to stderr so that stdout keeps only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PgTarget:
    """A Postgres database named by a URL (``postgresql://`` or ``postgresql+psycopg://``)."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> PgTarget:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise BenchError(f"not a Postgres URL: {url!r}")
        host = parts.hostname or "127.0.0.1"
        if not is_loopback(host):
            raise BenchError(
                f"refusing to benchmark against {host!r}: only loopback addresses are allowed"
            )
        dbname = parts.path.lstrip("/")
        if not dbname or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", dbname):
            raise BenchError(f"database name must be a plain identifier, got {dbname!r}")
        return cls(
            host=host,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "postgres"),
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            dbname=dbname,
        )

    def with_db(self, dbname: str) -> PgTarget:
        return PgTarget(self.host, self.port, self.user, self.password, dbname)

    def url(self) -> str:
        """The URL in the form the application accepts (``postgresql://``)."""
        auth = urllib.parse.quote(self.user, safe="")
        if self.password:
            auth += ":" + urllib.parse.quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{auth}@{host}:{self.port}/{self.dbname}"

    def libpq_env(self) -> dict[str, str]:
        """Environment for libpq tools (psql, pgbench) so no password is on a command line."""
        env = dict(os.environ)
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def _connect(self, dbname: str) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # psycopg is a regular dependency of allegiance
            raise BenchError("psycopg is not installed: pip install 'psycopg[binary]'") from exc
        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=dbname,
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.OperationalError as exc:
            raise BenchError(
                f"cannot connect to Postgres at {self.host}:{self.port} as {self.user!r}: "
                f"{str(exc).strip()} (is the server running? try `pg_isready -h {self.host}`)"
            ) from exc

    def recreate(self) -> None:
        """Drop and create this database (clean run); connects to the ``postgres`` database."""
        with self._connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def drop(self) -> None:
        with self._connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def setting(self, name: str) -> str:
        with self._connect("postgres") as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            return str(row[0]) if row else ""

    def server_version(self) -> str:
        return self.setting("server_version")


def find_pgbench(explicit: str | None = None) -> str:
    """pgbench of the Postgres server package (Debian keeps it in the server's bin folder)."""
    if explicit:
        if not (shutil.which(explicit) or Path(explicit).is_file()):
            raise BenchError(f"pgbench not found at {explicit!r}")
        return explicit
    found = shutil.which("pgbench")
    if found:
        return found

    def version_key(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path)
        return tuple(int(g) for g in match.groups() if g) if match else (0,)

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), key=version_key)
    if not candidates:
        raise BenchError(
            "pgbench not found (not on PATH, nor /usr/lib/postgresql/*/bin/pgbench); "
            "install the PostgreSQL server package (Debian: postgresql) or pass --pgbench"
        )
    return candidates[-1]


def allegiance_command() -> list[str]:
    """The ``allegiance`` CLI: on PATH, or beside the running interpreter (an unactivated venv)."""
    found = shutil.which("allegiance")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "allegiance"
    if beside.is_file():
        return [str(beside)]
    raise BenchError(
        "the `allegiance` command is not installed: run `pip install -e .` in the repository "
        "(or activate its virtualenv)"
    )


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_cli(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    """Run ``allegiance ARGS``; a non-zero exit or a time-out is a BenchError with stderr."""
    cmd = [*allegiance_command(), *args]
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(cmd)}` exited {proc.returncode}:\n{tail(proc.stderr or proc.stdout)}"
        )
    return proc


def parse_json_object(stdout: str) -> dict[str, Any]:
    """The last line of stdout that is a JSON object (the CLI may print other lines first)."""
    import json

    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    try:
        value = json.loads(stdout)
    except ValueError as exc:
        raise BenchError(f"expected a JSON object on stdout, got:\n{tail(stdout)}") from exc
    if not isinstance(value, dict):
        raise BenchError(f"expected a JSON object on stdout, got:\n{tail(stdout)}")
    return value


def create_tenant(name: str, database_url: str, env: dict[str, str]) -> tuple[str, str]:
    """``allegiance tenants create NAME --json`` → (tenant_id, api_key)."""
    out = run_cli(["tenants", "create", name, "--json", "--database-url", database_url], env=env)
    data = parse_json_object(out.stdout)
    try:
        return str(data["tenant_id"]), str(data["api_key"])
    except KeyError as exc:
        raise BenchError(f"`tenants create --json` printed no {exc}: {data}") from exc


def stop_process_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process group this script started for ``proc``, then SIGKILL if needed."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks stop what we started."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def count_orders(database_url: str, tenant_id: str) -> int | None:
    """Rows in the ``orders`` table for the tenant, or None when that cannot be read.

    A cross-check that what the API or the import said it booked is really there; it reads
    the application's table directly, so a schema change makes it answer None, not fail.
    """
    try:
        import sqlalchemy as sa
    except ImportError:
        return None
    url = database_url
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                sa.text("SELECT count(*) FROM orders WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one()
            return int(value)
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _proc_stats() -> dict[int, tuple[str, int, float]]:
    """pid → (command name, parent pid, CPU seconds used) for every process (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ... utime stime": comm may hold spaces, so split after ")"
        head, _, rest = raw.rpartition(")")
        fields = rest.split()
        if len(fields) < 13:
            continue
        comm = head.partition("(")[2]
        stats[int(entry.name)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_snapshot(
    root_pid: int | None, command: str | None = None, cmdline_has: str | None = None
) -> dict[int, float] | None:
    """pid → CPU seconds used so far, for ``root_pid`` and its descendants, or for every
    process whose command name is ``command`` and whose command line contains ``cmdline_has``
    (Postgres backends show "postgres: USER DATABASE HOST(PORT) ..."). None off Linux."""
    if not Path("/proc/self/stat").exists():
        return None
    stats = _proc_stats()
    if command is not None:
        return {
            pid: cpu
            for pid, (comm, _, cpu) in stats.items()
            if comm == command and (cmdline_has is None or cmdline_has in _cmdline(pid))
        }
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, float] = {}
    todo = [root_pid] if root_pid is not None else []
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid][2]
        todo.extend(children.get(pid, []))
    return found


def cpu_used(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds between two snapshots, over the processes alive at the second one (a process
    that ended in between is lost, so this is a lower bound)."""
    if before is None or after is None:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
