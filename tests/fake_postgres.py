"""A fake PostgreSQL server on loopback, speaking just enough of the wire protocol for one session.

Trust authentication, no TLS, the simple query protocol only. A real server writes to an idle
session rarely and at moments a test cannot choose (a parameter change, a warning before a crash,
a FATAL just before it closes); this one writes what the test hands to send(), when it asks, and
keeps the socket open afterwards, so no end of stream decides for the client. It counts queries.
"""

import contextlib
import socket
import struct
import threading


def message(kind, body=b""):
    """One backend message: a type byte, then the length (counting itself), then the body."""
    return kind + struct.pack("!i", len(body) + 4) + body


def parameter_status(name, value):
    return message(b"S", f"{name}\0{value}\0".encode())


def notice(severity, text="a notice", with_nonlocalized_severity=True):
    return message(b"N", _fields(severity, "00000", text, with_nonlocalized_severity))


def error(severity, text="an error", code="57P01", with_nonlocalized_severity=True):
    return message(b"E", _fields(severity, code, text, with_nonlocalized_severity))


def _fields(severity, code, text, with_nonlocalized_severity):
    """The fields of a NoticeResponse or ErrorResponse. PostgreSQL 9.6+ sends V, the severity
    never translated; PgBouncer sends only S."""
    fields = {"S": severity, "V": severity, "C": code, "M": text}
    if not with_nonlocalized_severity:
        del fields["V"]
    return b"".join(f"{key}{value}\0".encode() for key, value in fields.items()) + b"\0"


STARTUP_REPLY = b"".join(
    [
        message(b"R", struct.pack("!i", 0)),  # AuthenticationOk: trust
        parameter_status("server_version", "15.0"),
        parameter_status("server_encoding", "UTF8"),
        parameter_status("client_encoding", "UTF8"),
        parameter_status("DateStyle", "ISO, MDY"),
        parameter_status("TimeZone", "UTC"),
        parameter_status("integer_datetimes", "on"),
        parameter_status("standard_conforming_strings", "on"),
        message(b"K", struct.pack("!ii", 1, 2)),  # BackendKeyData
        message(b"Z", b"I"),  # ReadyForQuery, idle
    ]
)
# Every query gets an empty result: CommandComplete, then ReadyForQuery.
QUERY_REPLY = message(b"C", b"SELECT 0\0") + message(b"Z", b"I")


class FakePostgres:
    """Serves one connection; `with FakePostgres() as server: psycopg.connect(server.conninfo)`."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.conninfo = (
            f"host=127.0.0.1 port={self.listener.getsockname()[1]} user=test dbname=test "
            "sslmode=disable gssencmode=disable"
        )
        self.queries = 0
        self.session = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.listener.close()
        if self.session is not None:
            with contextlib.suppress(OSError):  # already closed: the client said goodbye
                self.session.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def send(self, data):
        """Write to the session now, whatever state it is in."""
        self.session.sendall(data)

    def _serve(self):
        self.session, _ = self.listener.accept()
        with self.session, self.session.makefile("rb") as incoming:
            (length,) = struct.unpack("!i", incoming.read(4))
            incoming.read(length - 4)  # the StartupMessage: protocol version, user, database
            self.session.sendall(STARTUP_REPLY)
            while header := incoming.read(5):
                kind, length = header[:1], struct.unpack("!i", header[1:])[0]
                incoming.read(length - 4)
                if kind != b"Q":  # Terminate, or a message this fake does not speak
                    return
                self.queries += 1
                self.session.sendall(QUERY_REPLY)
