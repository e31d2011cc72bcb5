"""``mail_send``: send one message through a ``mail`` resource.

With ``html: true`` the ``body`` is HTML. Mail readers that cannot show HTML (and
spam filters, which distrust HTML-only mail) get a plain-text alternative: ``body_text``
when given, else a text rendering derived from the HTML (paragraphs, line breaks, list
items and link targets kept; tags, scripts and styles dropped).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ...errors import StepError, StepInputError
from ..base import STEP_SUCCESS, Input, Step, StepResult, resource_connector

_BLOCK_TAGS = frozenset(
    "p div br tr li ul ol table h1 h2 h3 h4 h5 h6 pre blockquote section article header footer hr".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title"})


class _TextRenderer(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._href: list[str | None] = []
        self._link_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")
        elif tag in ("td", "th"):
            self.parts.append("\t")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
            self._link_text.append("")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a" and self._href:
            href, text = self._href.pop(), self._link_text.pop()
            if href and not href.startswith(("#", "javascript:")) and href != text.strip():
                self.parts.append(f" <{href}>")

    def handle_data(self, data):
        if self._skip:
            return
        if self._link_text:
            self._link_text[-1] += data
        self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in raw.split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML body."""
    renderer = _TextRenderer()
    renderer.feed(html)
    renderer.close()
    return renderer.text()


def mail_connector(ctx, name: str):
    """The connector of resource ``name``, which must send mail."""
    return resource_connector(ctx, name, lambda c: callable(getattr(c, "send", None)), "a mail connector")


def _addresses(value) -> list[str] | str | None:
    if value is None or value == [] or value == "":
        return None
    return value


class MailSend(Step):
    type = "mail_send"
    summary = "Send an e-mail (text or HTML, cc, bcc, attachments) through a mail resource"
    inputs = {
        "resource": Input(str, required=True, resource=True, help="name of a mail resource"),
        "to": Input((str, list), required=True, help="recipients: a list or a comma-separated string"),
        "subject": Input(str, required=True, help="subject line (UTF-8 welcome)"),
        "body": Input(str, required=True, help="message body: plain text, or HTML when html is true"),
        "html": Input(bool, default=False, help="the body is HTML; a text alternative is added"),
        "body_text": Input(str, help="with html: the plain-text alternative (default: derived from the HTML)"),
        "cc": Input((str, list), help="copy recipients"),
        "bcc": Input((str, list), help="blind copy recipients (envelope only, never in a header)"),
        "attachments": Input((str, list), help="files to attach, relative to the job workspace"),
        "from_addr": Input(str, help="sender (default: the resource's from_addr)"),
    }
    outputs = ("sent", "recipients", "refused", "message_id")

    def run(self, ctx, inputs):
        connector = mail_connector(ctx, inputs["resource"])
        if inputs.get("body_text") is not None and not inputs["html"]:
            raise StepInputError("step type 'mail_send': 'body_text' is the text alternative of an HTML body; set html: true")
        files = inputs.get("attachments") or []
        if isinstance(files, str):
            files = [files]
        paths = []
        for item in files:
            if not isinstance(item, str) or not item:
                raise StepInputError(f"step type 'mail_send': attachment {item!r} is not a path")
            path = ctx.path(item, what="attachment")
            if not path.is_file():
                raise StepError(f"attachment {str(path)!r} does not exist or is not a file")
            paths.append(path)
        if inputs["html"]:
            html = inputs["body"]
            text = inputs.get("body_text") if inputs.get("body_text") is not None else html_to_text(html)
        else:
            html, text = None, inputs["body"]
        result = connector.send(
            to=_addresses(inputs["to"]) or [],
            subject=inputs["subject"],
            body=text,
            html=html,
            cc=_addresses(inputs.get("cc")),
            bcc=_addresses(inputs.get("bcc")),
            attachments=paths,
            from_addr=inputs.get("from_addr"),
        )
        ctx.logger.info("mail.sent", extra={"recipients": len(result.get("recipients") or []), "attachments": len(paths)})
        return StepResult(
            STEP_SUCCESS,
            {
                "sent": bool(result.get("sent")),
                "recipients": list(result.get("recipients") or []),
                "refused": dict(result.get("refused") or {}),
                "message_id": result.get("message_id"),
            },
        )
