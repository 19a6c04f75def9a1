"""Serve the interactive Glow demo for a trained model: openai/glow's demo/ for any glow-tf logdir.

    python -m glow_tf.tools.demo logs/fashion_small                 # then open http://127.0.0.1:5050/
    python -m glow_tf.tools.demo logs/celeba --port 8080 --align eyes

The page (plain HTML, CSS and JavaScript served by this process; nothing from the internet) shows an
example from the model's validation data or an uploaded PNG/JPEG as the model sees it (centre-cropped
and resized with Lanczos to the model's resolution and channels; images smaller than the model are
refused, not upscaled) beside its reconstruction decode(encode(x)); one slider per direction (CelebA's
40 attributes when the model's TFRecords carry them, otherwise one per class); a mix slider between two
images; random samples with a temperature and a seed; and a download link under every image.

The directions are computed in the background on first start (the page shows the progress) and cached
in the logdir as demo_directions.npz; a later start on the same checkpoint loads them. With --align
eyes (the default for CelebA models) uploaded photos are aligned on the eyes as in the original.
The server listens on localhost only unless --host says otherwise; Ctrl-C stops it.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from glow_common.errors import run_cli
from glow_tf import flags
from glow_tf.errors import ConfigError
from glow_tf.tools import common

PROG = "python -m glow_tf.tools.demo"


def _check_address(host: str, port: int) -> None:
    """Refuse a taken port or a foreign address in one line (werkzeug would print two and exit 1)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's server does
            sock.bind((host, port))
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port or --host") \
            from None


def main(argv: Optional[Sequence[str]] = None):
    p = common.parser(PROG, __doc__)
    common.add_checkpoint_args(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; 0.0.0.0 opens it to "
                        "the network)")
    p.add_argument("--port", type=int, default=5050,
                   help="port (default %(default)s, the original's; 0 picks a free one and prints it)")
    p.add_argument("--align", default="auto", choices=("auto", "eyes", "centre"),
                   help="how uploads are cropped: eyes = face alignment, centre = centre crop, auto = eyes "
                        "for CelebA models and centre otherwise (default %(default)s)")
    data = flags.add_flags(p.add_argument_group("where the model's data is, for the examples and the directions "
                                                "(train.py's flags)"), ("data_dir", "category"), overrides=True)
    p.add_argument("--direction_images", type=int, default=10000,
                   help="images encoded to compute the directions (default %(default)s)")
    p.add_argument("--examples", type=int, default=8, help="example images offered (default %(default)s)")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port number (0 to 65535)")
    if args.direction_images < 1:
        raise ConfigError(f"--direction_images {args.direction_images} must be at least 1")
    if not 0 <= args.examples <= 64:
        raise ConfigError(f"--examples {args.examples}: expected 0 to 64")
    _check_address(args.host, args.port)  # before the model loads, so a taken port fails at once

    from werkzeug.serving import make_server

    from glow_tf.tools.demo import server

    model, hps, prefix = common.load(args, common.MODEL_OVERRIDES + tuple(data))
    demo = server.build(model, hps, prefix, checkpoint=args.checkpoint, ema=args.ema, align=args.align,
                        n_examples=args.examples, direction_images=args.direction_images)
    httpd = make_server(args.host, args.port, server.create_app(demo), threaded=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Glow demo of {prefix} on http://{host}:{httpd.server_port}/ (Ctrl-C stops it)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host} lets other machines reach the demo", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("demo stopped", flush=True)
    finally:
        httpd.server_close()


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
