"""Code that runs inside a cluster: the driver runtime, its control endpoint, the execution
contexts it holds (`contexts`) and the REPL process of each context (`repl`).

Invariants: nothing here imports the control plane (`kiln.server`, `kiln.compute`,
`kiln.store`); the control endpoint listens on loopback only and answers nothing without the
cluster's control secret; the runtime survives its control plane (it is adopted again after a
restart, its contexts with it) and stops Spark and every REPL cleanly on SIGTERM.
"""

from kiln.driver.protocol import (
    AUTH_HEADER,
    DriverConfig,
    DriverState,
    read_state_file,
    write_json_atomic,
)

__all__ = ["AUTH_HEADER", "DriverConfig", "DriverState", "read_state_file", "write_json_atomic"]
