"""Sending mail: through sendmail when it is installed (or asked for), else
over SMTP to mail.smtp_host:mail.smtp_port (STARTTLS when offered).

Also the body of the shipped `mail` services (run as `python -m
gsat.mailer`): it reads the event, decides from the job's -m letters
whether this event mails (b: JOB_START, e: JOB_TERMINATION, a: JOB_FAILED)
and sends one mail naming the job, id, host, event, exit value and the last
lines of its output to the -M addresses (else config mail.to, else the
submitting user).
"""

import email.message
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys

LETTER = {"JOB_START": "b", "JOB_TERMINATION": "e", "JOB_FAILED": "a"}
TAIL_LINES = 20
SENDMAIL_PATHS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")


def send(msg: email.message.EmailMessage, mail_config: dict) -> None:
    """Deliver `msg` by the configured method; OSError/SMTPException on failure."""
    import email.utils
    recipients = [address for _, address in email.utils.getaddresses([msg["To"]])]
    send_bytes(msg.as_bytes(), email.utils.parseaddr(msg["From"])[1], recipients, mail_config)


def send_bytes(raw: bytes, sender: str, recipients: list[str], mail_config: dict) -> None:
    """Deliver a message exactly as `raw` (a signed one must not be re-serialised)."""
    sendmail = _sendmail() if mail_config.get("method", "auto") in ("auto", "sendmail") else None
    if sendmail:
        subprocess.run([sendmail, "-oi", "-f", sender, "--", *recipients], input=raw, check=True, timeout=60)
        return
    if mail_config.get("method") == "sendmail":
        raise OSError("method is sendmail but no sendmail is installed")
    with smtplib.SMTP(mail_config["smtp_host"], int(mail_config["smtp_port"]), timeout=60) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        smtp.sendmail(sender, recipients, raw)


def _sendmail() -> str | None:
    return next((p for p in SENDMAIL_PATHS if os.access(p, os.X_OK)), None) or shutil.which("sendmail")


def notification(job, event: dict, host: str, mail_config: dict, output: str) -> email.message.EmailMessage | None:
    """The mail for `event` of `job`, or None when its -m letters do not ask for one."""
    letter = LETTER.get(event["name"])
    if not letter or letter not in (job.spec.get("mail_events") or ""):
        return None
    to = job.spec.get("mail_to") or _split(mail_config.get("to")) or [job.spec.get("user", "root")]
    msg = email.message.EmailMessage()
    msg["From"] = mail_config.get("from") or f"{os.environ.get('USER') or job.spec.get('user')}@{socket.getfqdn()}"
    msg["To"] = ", ".join(to)
    exit_text = f" exit {event['exit']}" if event.get("exit") is not None else ""
    msg["Subject"] = f"gsat job {job.id} ({job.spec.get('name')}) {event['name']}{exit_text} on {host}"
    lines = [f"job:    {job.id}", f"name:   {job.spec.get('name')}", f"host:   {host}",
             f"event:  {event['name']}", f"run:    {event.get('run')}"]
    if event.get("exit") is not None:
        lines.append(f"exit:   {event['exit']}")
    lines += ["", f"last {TAIL_LINES} lines of output:", output]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _split(value) -> list[str]:
    if not value:
        return []
    return [v.strip() for v in (value if isinstance(value, list) else str(value).split(",")) if v.strip()]


def tail(path: str, lines: int = TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            data = f.read()
    except OSError:
        return "(no output)"
    return b"".join(data.splitlines(keepends=True)[-lines:]).decode("utf-8", "replace")


def main() -> int:
    """The `mail` service: one notification for the event on stdin."""
    from gsat import config as configmod, jobs
    from gsat.layout import Layout
    event = json.load(sys.stdin)
    cfg = configmod.load()
    layout = Layout(cfg.home, cfg.host)
    job = jobs.load(layout, int(os.environ["GSAT_JOBID"]), deleted_ok=True)
    msg = notification(job, event, event.get("host", cfg.host), cfg["mail"],
                       tail(jobs.output_path(layout, job, "stdout")))
    if msg is None:
        return 0
    send(msg, cfg["mail"])
    print(f"mailed {msg['To']}: {msg['Subject']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
