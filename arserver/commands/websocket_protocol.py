"""The WebSocket protocol ``arserver serve`` gives uvicorn: its websockets (Sans-I/O) protocol,
which also answers the handshakes that websockets refuses while still parsing them.

websockets parses the upgrade request again after uvicorn's HTTP parser (h11) accepted it, with
limits of its own: a request line or a header line over 8 KiB (``414``, ``431``), more than 128
headers (``431``), a request it cannot use (HTTP/1.0, a body: end of stream). It then queues the
refusal but produces no request event, and uvicorn 0.54 writes queued bytes only on events: the
refusal was never sent and the connection stayed open until the client gave up (an 8 KiB
``?access_token=...&x=...`` URL was never answered). Here the refusal is sent and the
connection closed as soon as the parser has failed.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol; a handshake that fails to parse is answered
    (``414``/``431``, or a clean close) and the connection closed at once."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            not self.handshake_initiated
            and not self.close_sent
            and self.conn.handshake_exc is not None
        ):
            self.handshake_complete = True
            self.close_sent = True
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
