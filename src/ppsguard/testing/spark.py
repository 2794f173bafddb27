"""A throwaway Apache Spark standalone cluster for tests: a master and workers started with the
`spark-class` launcher the pyspark package ships, bound to 127.0.0.1, stopped by pid and
removed afterwards.

    require_spark()                      # skip, or fail when PPSGUARD_REQUIRE_LAB=1
    cluster = SparkCluster(workers=2).start()
    ... SparkEngine(cluster.url, ...) ...
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ppsguard.flows.engines.spark import java


def unavailable_reason() -> str | None:
    if java() is None:
        return "no Java (JAVA_HOME or java on PATH) for Spark"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'ppsguard[spark]')"
    return None


def require_spark() -> None:
    """Skip the calling test without Java or pyspark — or fail it when PPSGUARD_REQUIRE_LAB=1."""
    from ppsguard.testing.pytest_plugin import skip_unless_available

    skip_unless_available(unavailable_reason())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class SparkCluster:
    """A master and `workers` workers of one core each, on 127.0.0.1."""

    def __init__(self, workers: int = 2, memory: str = "1g") -> None:
        self.workers = workers
        self.memory = memory
        self.folder = Path(tempfile.mkdtemp(prefix="ppsguard-spark-"))
        self.port = 0
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        """Spark's default log for the daemons: `_wait` reads their INFO lines."""
        inherited = {k: v for k, v in os.environ.items() if k != "LOG4J_CONFIGURATION_FILE"}
        return {
            **inherited,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.folder / "logs"),
            "SPARK_WORKER_DIR": str(self.folder / "work"),
            "PYSPARK_PYTHON": sys.executable,
        }

    def _launch(self, name: str, argv: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        launcher = str(spark_home() / "bin" / "spark-class")
        self.processes.append(
            subprocess.Popen(
                [launcher, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        )
        log.close()

    def _log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait(self, what: str, ready: object, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():  # type: ignore[operator]
                return
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Spark test cluster did not come up: {what}")

    def start(self) -> SparkCluster:
        self.port = _free_port()
        master = "org.apache.spark.deploy.master.Master"
        self._launch("master", [master, "--host", "127.0.0.1", "--port", str(self.port),
                                "--webui-port", str(_free_port())])  # fmt: skip
        self._wait("master", lambda: "Starting Spark master" in self._log("master")
                   and "I have been elected leader" in self._log("master"))  # fmt: skip
        for n in range(self.workers):
            work = self.folder / f"work{n}"
            self._launch(f"worker{n}", [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                "--cores", "1", "--memory", self.memory, "--webui-port", str(_free_port()),
                "--work-dir", str(work), self.url,
            ])  # fmt: skip
        self._wait(
            "workers",
            lambda: self._log("master").count("Registering worker") >= self.workers,
        )
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes = []
        shutil.rmtree(self.folder, ignore_errors=True)
