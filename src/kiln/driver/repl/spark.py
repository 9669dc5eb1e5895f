"""A context's own SparkSession on the cluster's Spark application, in either access mode.

*classic* (dedicated and no-isolation clusters): the REPL attaches to the driver JVM through
py4j and wraps its SparkContext, with a session of its own (`newSession()`: own temp views and
SQL conf, shared catalog and cache); `sc`, RDDs and barrier mode work. Because the JVM is
shared, three things are done here: every job carries the context's tag, SIGINT cancels only
that tag (pyspark's own handler cancels every job of the cluster), and `stop()` of the shared
context is refused.

*connect* (standard clusters): the REPL is a Spark Connect client of the server the driver
runs on loopback, with a session id of its own; it has no `sparkContext`.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CLASSIC",
    "CONNECT",
    "SparkAttachment",
    "attach_spark",
    "connect_job_tag",
    "install_tables",
]

CLASSIC = "classic"
CONNECT = "connect"
# Spark Connect's user id for every context's session (isolation is by session id).
CONNECT_USER = "kiln"


def connect_job_tag(session_id: str, tag: str) -> str:
    """The JVM job tag Spark Connect gives jobs of a session tag (`addTag` on the client), so
    the driver can cancel a context's jobs through its own SparkContext."""
    return f"SparkConnect_SessionTag_User_{CONNECT_USER}_Session_{session_id}_Tag_{tag}"


@dataclass
class SparkAttachment:
    """What a context holds of Spark: its session, `sc` in classic mode, its tag."""

    mode: str
    spark: Any
    sc: Any = None
    session_id: str = ""
    tag: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_tag(self, tag: str) -> None:
        """Tag every job this context starts from now on (its main thread's jobs)."""
        self.tag = tag
        if self.mode == CLASSIC:
            self.sc.addJobTag(tag)
            self.sc.setInterruptOnCancel(True)
        else:
            self.spark.addTag(tag)

    def cancel_jobs(self) -> None:
        """Cancel this context's running Spark jobs, and no one else's."""
        if not self.tag:
            return
        with self._lock:
            if self.mode == CLASSIC:
                self.sc.cancelJobsWithTag(self.tag)
            else:
                self.spark.interruptTag(self.tag)

    def close(self) -> None:
        """Release what the server keeps for this context (its Spark Connect session)."""
        if self.mode == CONNECT:
            client = self.spark.client
            client.release_session()
            client.close()

    def warm_up(self) -> None:
        """Run one tiny query so the context's first command finds the session ready."""
        self.spark.range(1).collect()


def _refuse_stop(what: str) -> Any:
    def stop(*args: Any, **kwargs: Any) -> None:
        print(
            f"{what}.stop() has no effect: the cluster's Spark application is shared by every "
            "execution context; terminate the cluster to stop it.",
            file=sys.stderr,
        )

    return stop


def _attach_classic(port: int, secret: str) -> SparkAttachment:
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    # pyspark connects to an existing gateway when these are set; they are dropped at once so
    # that nothing the user starts inherits full control of the JVM by accident.
    os.environ["PYSPARK_GATEWAY_PORT"] = str(port)
    os.environ["PYSPARK_GATEWAY_SECRET"] = secret
    try:
        gateway = launch_gateway()  # type: ignore[no-untyped-call]
    finally:
        os.environ.pop("PYSPARK_GATEWAY_PORT", None)
        os.environ.pop("PYSPARK_GATEWAY_SECRET", None)
    jvm = gateway.jvm
    jsc_scala = jvm.org.apache.spark.SparkContext.getOrCreate()
    jsc = jvm.org.apache.spark.api.java.JavaSparkContext(jsc_scala)
    sc = SparkContext(conf=SparkConf(_jconf=jsc_scala.conf()), gateway=gateway, jsc=jsc)
    session_class = getattr(jvm, "org.apache.spark.sql.classic.SparkSession")
    default = session_class.getDefaultSession()
    root = default.get() if default.isDefined() else session_class.active()
    spark = SparkSession(sc, jsparkSession=root.newSession())
    # Creating the Python session made it the JVM-wide default; give that back to the driver's.
    session_class.setDefaultSession(root)
    sc.stop = _refuse_stop("sc")  # type: ignore[method-assign]
    spark.stop = _refuse_stop("spark")  # type: ignore[method-assign]
    return SparkAttachment(CLASSIC, spark, sc)


def _attach_connect(url: str) -> SparkAttachment:
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    session_id = str(uuid.uuid4())
    remote = f"{url};session_id={session_id};user_id={CONNECT_USER}"
    spark = ConnectSession.builder.remote(remote).getOrCreate()
    spark.stop = _refuse_stop("spark")  # type: ignore[method-assign]
    return SparkAttachment(CONNECT, spark, None, session_id)


def attach_spark(mode: str, spark_info: dict[str, Any]) -> SparkAttachment:
    """Attach to the cluster's Spark application in `mode` (`classic` or `connect`)."""
    if mode == CLASSIC:
        return _attach_classic(int(spark_info["gateway_port"]), str(spark_info["gateway_secret"]))
    if mode == CONNECT:
        return _attach_connect(str(spark_info["connect_url"]))
    raise ValueError(f"unknown access mode {mode!r}")


def install_tables(spark: Any, host: Any) -> None:
    """Give a context's session catalog tables and the `delta` source (kiln.driver.delta);
    a failure leaves plain Spark, never a broken context."""
    try:
        from kiln.driver.delta.session import install

        install(spark, host)
    except Exception:
        import logging

        logging.getLogger("kiln.driver.repl").warning("Delta tables unavailable", exc_info=True)
