# `from workers.sockets import connect`: the same objects as in `workers`.
from . import Socket as Socket, SocketError as SocketError, SocketInfo as SocketInfo, connect as connect
