"""A real SMTP server (aiosmtpd) for the tests of the portal's e-mail.

Listens on 127.0.0.1 on a free port, prints the port on the first line of
stdout, then appends one JSON line per message it accepts to the file named
by the first argument: envelope, headers, and the text and HTML parts as
Python's e-mail parser decodes them.

Recipients steer it: `bounce@...` is refused for good (550), `later@...`
is refused once with a transient 451 and accepted after that.
"""

import asyncio
import json
import sys
from email import policy
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out):
        self.out = out
        self.deferred = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "bounce":
            return "550 5.1.1 <%s>: no such mailbox" % address
        if local == "later" and address not in self.deferred:
            self.deferred.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "message_id": str(message["Message-ID"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 accepted"


async def main(out):
    loop = asyncio.get_running_loop()
    handler = Handler(out)
    server = await loop.create_server(lambda: SMTP(handler, hostname="smtp.test"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
