"""Inside an execution context: the REPL process that runs a context's commands.

Invariants: one command at a time, on the main thread; outputs are nbformat output dicts
collected within Databricks' limits (text capped while it is collected) and redacted by
`dbutils` before they leave the process; a cancel (SIGINT) interrupts only this context's code
and Spark jobs; nothing here imports the control plane. pyspark is imported only when the
process attaches to Spark, so importing this package stays cheap.
"""

from kiln.driver.repl.outputs import (
    TABLE_MIME,
    TRUNCATION_NOTE,
    OutputCollector,
    OutputLimits,
    display_data,
    error_output,
    execute_result,
    stream,
)

__all__ = [
    "TABLE_MIME",
    "TRUNCATION_NOTE",
    "OutputCollector",
    "OutputLimits",
    "display_data",
    "error_output",
    "execute_result",
    "stream",
]
