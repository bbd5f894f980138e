"""Text from job files made safe to print.  Stdlib only, no imports."""


def printable(text) -> str:
    """`text` with every non-printable character escaped as Python writes it
    (\\x1b, \\n, \\u2028): a job name, or anything else read from a job's
    files, must not reach a terminal as an escape sequence or break a line."""
    text = str(text)
    if text.isprintable():  # C speed: almost every text
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
