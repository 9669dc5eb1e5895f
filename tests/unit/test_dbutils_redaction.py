"""Secret redaction of a context's outputs (pure)."""

from __future__ import annotations

from kiln.driver.dbutils import REDACTED, Redactor


def test_text_and_every_output_kind_are_redacted() -> None:
    redactor = Redactor()
    redactor.add("s3cr3t-value")
    assert redactor.redact_text("token=s3cr3t-value;") == f"token={REDACTED};"
    stream = {"output_type": "stream", "name": "stdout", "text": "a s3cr3t-value b\n"}
    assert redactor.redact_output(stream)["text"] == f"a {REDACTED} b\n"
    display = {
        "output_type": "display_data",
        "data": {
            "text/plain": ["x s3cr3t-value"],
            "text/html": "<b>s3cr3t-value</b>",
            "application/json": {"rows": [["s3cr3t-value", 1]]},
            "image/png": "czNjcjN0LXZhbHVl",
        },
        "metadata": {},
    }
    data = redactor.redact_output(display)["data"]
    assert data["text/plain"] == [f"x {REDACTED}"]
    assert data["text/html"] == f"<b>{REDACTED}</b>"
    assert data["application/json"] == {"rows": [[REDACTED, 1]]}
    assert data["image/png"] == "czNjcjN0LXZhbHVl"  # base64 images are left alone
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad s3cr3t-value",
        "traceback": ["line s3cr3t-value"],
    }
    redacted = redactor.redact_output(error)
    assert redacted["evalue"] == f"bad {REDACTED}"
    assert redacted["traceback"] == [f"line {REDACTED}"]
    # The input is not modified.
    assert error["evalue"] == "bad s3cr3t-value"


def test_longest_value_wins_and_empty_values_are_ignored() -> None:
    redactor = Redactor()
    redactor.add("abc")
    redactor.add("abcdef")
    redactor.add("")
    assert len(redactor) == 2
    assert redactor.redact_text("abcdef abc") == f"{REDACTED} {REDACTED}"
    assert redactor.redact_text("a.c") == "a.c"  # values are literals, not patterns


def test_nothing_known_changes_nothing() -> None:
    redactor = Redactor()
    output = {"output_type": "stream", "name": "stdout", "text": "hello"}
    assert redactor.redact_output(output) is output
    assert redactor.redact_text("hello") == "hello"


def test_bytes_secrets_are_redacted_as_text_and_as_repr() -> None:
    redactor = Redactor()
    redactor.add_bytes(b"\xffraw\x00key")
    printed = repr(b"\xffraw\x00key")
    assert redactor.redact_text(printed) == f"b'{REDACTED}'"
    redactor.add_bytes("päss".encode())
    assert redactor.redact_text("päss") == REDACTED
