#!/usr/bin/env python3
"""The upload origin of the benchmark: an HTTP/1.1 server that reads every request body to its
end, counts it, and only then answers 200 {"bytes": N}.

nginx cannot play this part: `return` answers as soon as the header is read and discards the
body afterwards (4 KiB per recv), so a proxy in front of it sees the answer first and stops
forwarding (nginx as a proxy then discards the client's body itself), and nothing counts what
arrived. This server decodes Content-Length and chunked bodies; the body bytes themselves are
dropped in the kernel (recv with MSG_TRUNC: counted, never copied), the framing is parsed.
Answers `Expect: 100-continue` as nginx does. Keep-alive, one thread per connection. Prints "listening on http://127.0.0.1:PORT".
Python standard library only.
"""
import socket
import sys
import threading

BUF = 1 << 20


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)
        self.start = self.end = 0  # unparsed bytes are buf[start:end]

    def more(self):
        """Reads more bytes after the unparsed ones; False at end of stream."""
        if self.start:
            self.buf[:self.end - self.start] = self.buf[self.start:self.end]
            self.end -= self.start
            self.start = 0
        if self.end == BUF:
            raise ValueError("header or chunk line too long")
        n = self.sock.recv_into(self.view[self.end:])
        self.end += n
        return n > 0

    def line(self, sep=b"\r\n"):
        while True:
            i = self.buf.find(sep, self.start, self.end)
            if i >= 0:
                text = bytes(self.buf[self.start:i])
                self.start = i + len(sep)
                return text
            if not self.more():
                raise EOFError

    def skip(self, n):
        """Consumes exactly n body bytes: first those buffered, then dropped in the kernel."""
        take = min(n, self.end - self.start)
        self.start += take
        n -= take
        while n:
            got = self.sock.recv_into(self.view, min(n, BUF), socket.MSG_TRUNC)
            if got == 0:
                raise EOFError
            n -= got


def serve(sock):
    c = Conn(sock)
    try:
        while True:
            head = c.line(b"\r\n\r\n").decode("latin-1").split("\r\n")
            length, chunked, expect = None, False, False
            for field in head[1:]:
                name, _, value = field.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = "chunked" in value.lower()
                elif name == "expect":
                    expect = value.strip().lower() == "100-continue"
            if expect:  # curl sends it for bodies over 1 MiB; the broker passes it on
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            got = 0
            if chunked:
                while True:
                    size = int(c.line().split(b";")[0], 16)
                    if size == 0:
                        while c.line():  # trailer fields, up to the empty line
                            pass
                        break
                    c.skip(size)
                    got += size
                    if c.line() != b"":
                        raise ValueError("chunk not followed by CRLF")
            elif length:
                c.skip(length)
                got = length
            body = b'{"bytes":%d}' % got
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    except (EOFError, OSError):
        pass
    except ValueError as e:
        print(f"upload_sink: {e}", file=sys.stderr, flush=True)
    finally:
        sock.close()


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    srv.listen(256)
    print(f"listening on http://127.0.0.1:{srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
