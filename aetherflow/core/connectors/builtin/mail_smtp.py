"""``mail/smtp``: send mail through an SMTP server (standard library ``smtplib``).

Three transports: plain, STARTTLS (``starttls: true``, usually port 587) and implicit
TLS (``ssl: true``, usually port 465). TLS certificates are verified by default against
the system's trust store (``smtplib``'s default); ``ca_file`` adds a private CA and
``verify: false`` turns checking off. Every ``send`` opens its own session (connect,
TLS, login, send, quit), so the connector is safe to share between threads and never
holds an idle connection the server would drop.

Messages are built with :class:`email.message.EmailMessage`: a text part, an optional
HTML alternative, attachments typed by :mod:`mimetypes`, UTF-8 subjects and display
names. Bcc recipients are added to the SMTP envelope only, never to a header.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import ConnectorConfigError, ConnectorError, ConnectorTimeout
from ..base import Classification, ConnectorBase
from ..schema import Field

#: MIME types for compressed files, which ``mimetypes`` reports as an "encoding".
_ENCODING_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


def attachment_type(path: str | os.PathLike) -> tuple[str, str]:
    """``(maintype, subtype)`` for a file, from its name; unknown names are octet-stream."""
    guessed, encoding = mimetypes.guess_type(str(path), strict=False)
    if encoding:
        guessed = _ENCODING_TYPES.get(encoding, "application/octet-stream")
    maintype, _, subtype = (guessed or "application/octet-stream").partition("/")
    return maintype, subtype


def split_addresses(value: str | Iterable[str] | None) -> list[str]:
    """Address texts (``Name <a@b>`` or ``a@b``) from a list or a comma-separated string."""
    from email.utils import getaddresses

    if value is None:
        return []
    items = [value] if isinstance(value, str) else [str(v) for v in value]
    for item in items:
        # The parser reads "a@b\r\nBcc: c@d" as two addresses: a line break could add a
        # recipient (or a header) the flow never named.
        if "\r" in item or "\n" in item:
            raise ValueError(f"{item!r} contains a line break; give several addresses as a list or separated by commas")
    out = []
    for name, addr in getaddresses(items):
        if not addr or "@" not in addr:
            raise ValueError(f"not an e-mail address: {name or addr!r}")
        out.append(_format_address(name, addr))
    return out


def _format_address(name: str, addr: str) -> str:
    from email.headerregistry import Address

    return str(Address(display_name=name, addr_spec=addr)) if name else addr


def _addr_spec(address: str) -> str:
    from email.utils import parseaddr

    return parseaddr(address)[1]


class SMTPConnector(ConnectorBase):
    """SMTP mail: plain, STARTTLS, implicit TLS."""

    kind = "mail"
    driver = "smtp"
    summary = "SMTP mail: plain, STARTTLS, implicit TLS"
    config_schema = {
        "host": Field(str, required=True, help="SMTP server name"),
        "port": Field(int, help="port (default: 465 with ssl, 587 with starttls, else 25)"),
        "username": Field(str, help="login name; no login when empty"),
        "password": Field(str, secret=True, help="login password"),
        "starttls": Field(bool, default=False, help="upgrade the connection with STARTTLS (port 587)"),
        "ssl": Field(bool, default=False, help="implicit TLS from the first byte (port 465)"),
        "from_addr": Field(str, help="default sender, e.g. 'Reports <reports@example.com>'"),
        "verify": Field(bool, default=True, help="verify the server's TLS certificate and name"),
        "ca_file": Field(str, help="PEM bundle of a private CA to trust (in addition to the system's)"),
    }
    options_schema = {
        "timeout_seconds": Field(float, default=30.0, help="timeout of each network operation"),
    }

    # -- sessions -------------------------------------------------------------------------

    def _tls_context(self):
        import ssl

        context = ssl.create_default_context()
        ca_file = self.cfg("ca_file")
        if ca_file:
            path = Path(ca_file).expanduser()
            if not path.is_file():
                raise self.error(f"ca_file {str(path)!r} does not exist", ConnectorConfigError)
            context.load_verify_locations(cafile=str(path))
        if not self.cfg("verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _port(self) -> int:
        port = self.cfg("port")
        if port:
            return int(port)
        return 465 if self.cfg("ssl") else 587 if self.cfg("starttls") else 25

    def _where(self) -> str:
        mode = "implicit TLS" if self.cfg("ssl") else "STARTTLS" if self.cfg("starttls") else "plain"
        return f"{self.cfg('host')}:{self._port()} ({mode})"

    def _open(self):
        """A new logged-in SMTP session."""
        import smtplib

        if self.cfg("ssl") and self.cfg("starttls"):
            raise self.error("ssl (implicit TLS) and starttls exclude each other: choose one", ConnectorConfigError)
        if self.cfg("password") and not self.cfg("username"):
            raise self.error("password given without username", ConnectorConfigError)
        host, port, timeout = self.cfg("host"), self._port(), self.opt("timeout_seconds")
        with self.translate("connect to " + self._where()):
            if self.cfg("ssl"):
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            with self.translate("session with " + self._where()):
                smtp.ehlo()
                if self.cfg("starttls"):
                    if not smtp.has_extn("starttls"):
                        raise self.error(f"{self._where()}: the server does not offer STARTTLS")
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if self.cfg("username"):
                    self._login(smtp)
        except BaseException:
            _quit(smtp)
            raise
        return smtp

    def _login(self, smtp) -> None:
        import smtplib

        user = self.cfg("username")
        try:
            smtp.login(user, self.cfg("password") or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise self.error(f"login as {user!r} refused by {self._where()}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError:
            raise self.error(
                f"{self._where()} offers no login (AUTH) on this connection",
                hint="many servers offer AUTH only after TLS: set starttls: true or ssl: true",
            ) from None

    def _connect(self):
        return self._open()

    def _disconnect(self, client) -> None:
        _quit(client)

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A logged-in ``smtplib.SMTP`` session, closed at the end of the block."""
        smtp = self._open()
        try:
            yield smtp
        finally:
            _quit(smtp)

    def _classify(self, exc: BaseException) -> Classification:
        import smtplib
        import ssl

        if isinstance(exc, TimeoutError):
            return ConnectorTimeout, f"timed out after {self.opt('timeout_seconds'):g}s", None
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ConnectorError, f"the server's certificate is not trusted ({exc.verify_message})", "set ca_file to the PEM of the CA that signed it"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            detail = "; ".join(f"{addr}: {code} {_text(text)}" for addr, (code, text) in exc.recipients.items())
            return ConnectorError, f"every recipient was refused ({detail})", None
        if isinstance(exc, smtplib.SMTPResponseException):
            return ConnectorError, f"{exc.smtp_code} {_text(exc.smtp_error)}", None
        return super()._classify(exc)

    # -- messages -------------------------------------------------------------------------

    def build_message(
        self,
        to: str | Iterable[str],
        subject: str,
        body: str,
        html: str | None = None,
        cc: str | Iterable[str] | None = None,
        bcc: str | Iterable[str] | None = None,
        attachments: Iterable[str | os.PathLike] = (),
        from_addr: str | None = None,
    ):
        """``(message, envelope_sender, envelope_recipients)``; Bcc is in the envelope only."""
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        sender = from_addr or self.cfg("from_addr") or self.cfg("username")
        if not sender:
            raise self.error("no sender: give from_addr (in the step or the resource config)", ConnectorConfigError)
        try:
            sender = split_addresses(sender)[0]
            to_list, cc_list, bcc_list = split_addresses(to), split_addresses(cc), split_addresses(bcc)
        except (ValueError, IndexError) as exc:
            raise self.error(f"bad address: {exc}", ConnectorConfigError) from None
        if not (to_list or cc_list or bcc_list):
            raise self.error("no recipients: give to, cc or bcc", ConnectorConfigError)
        if "\r" in subject or "\n" in subject:
            raise self.error(f"the subject {subject!r} contains a line break, which a mail header cannot hold", ConnectorConfigError)

        msg = EmailMessage()
        msg["From"] = sender
        if to_list:
            msg["To"] = ", ".join(to_list)
        if cc_list:
            msg["Cc"] = ", ".join(cc_list)
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=True)
        domain = _addr_spec(sender).rpartition("@")[2] or None
        msg["Message-ID"] = make_msgid(domain=domain)
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for item in attachments:
            path = Path(item)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise self.error(f"attachment {str(path)!r} cannot be read: {exc.strerror or exc}") from None
            maintype, subtype = attachment_type(path)
            params = {}
            if maintype == "text":
                # Say how the text is encoded, or readers guess (and get accents wrong).
                try:
                    data.decode("utf-8")
                    params["charset"] = "utf-8"
                except UnicodeDecodeError:
                    pass
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name, params=params)

        recipients: list[str] = []
        for address in to_list + cc_list + bcc_list:
            spec = _addr_spec(address)
            if spec.lower() not in {r.lower() for r in recipients}:
                recipients.append(spec)
        return msg, _addr_spec(sender), recipients

    def send(
        self,
        to: str | Iterable[str],
        subject: str,
        body: str,
        html: str | None = None,
        cc: str | Iterable[str] | None = None,
        bcc: str | Iterable[str] | None = None,
        attachments: Iterable[str | os.PathLike] = (),
        from_addr: str | None = None,
    ) -> dict[str, Any]:
        """Send one message. Returns ``{sent, recipients, refused, message_id}``.

        ``recipients`` are the envelope addresses the server accepted (Bcc included);
        ``refused`` maps addresses the server turned down to its answer. A message that
        no recipient accepted is an error.
        """
        msg, sender, recipients = self.build_message(to, subject, body, html, cc, bcc, attachments, from_addr)
        with self.session() as smtp, self.translate(f"send to {len(recipients)} recipient(s) via {self._where()}"):
            refused = smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
        refused_text = {addr: f"{code} {_text(text)}" for addr, (code, text) in (refused or {}).items()}
        accepted = [r for r in recipients if r not in refused_text]
        return {"sent": True, "recipients": accepted, "refused": refused_text, "message_id": msg["Message-ID"]}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _quit(smtp) -> None:
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - the session is over either way
        try:
            smtp.close()
        except Exception:  # noqa: BLE001
            pass
