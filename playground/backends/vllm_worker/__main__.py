"""Entry point of the vLLM worker: ``python -m playground.backends.vllm_worker ADDRESS FOLDER MAX_SEQS MAX_LEN``.

Started by the playground with vLLM's environment's Python; connects back to the playground's socket and serves
until told to stop or the socket closes.
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Client

from .engine_loop import serve
from .wire import AUTH_ENV


def main(argv: list[str]) -> None:
    address, folder, max_seqs, max_len = argv
    conn = Client(address, family="AF_UNIX", authkey=bytes.fromhex(os.environ.pop(AUTH_ENV)))
    try:
        serve(conn, folder, int(max_seqs), int(max_len))
    except BaseException as exc:
        try:
            conn.send({"op": "fatal", "message": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
