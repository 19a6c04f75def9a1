"""The interactive demo: openai/glow's demo/ (server.py and web/) as one local web page for any model.

    python -m glow_tf.tools.demo logs/fashion_small [--host 127.0.0.1] [--port 5050]

Modules: `server` (the Flask app and the one loaded model behind a lock), `directions` (class or CelebA
attribute directions, computed once and cached in the logdir), `images` (uploads, data URIs and face
alignment), `align` (the original's face alignment); the page is static/. The headless browser that drives
it for the tests and the README's screenshot lives with the tests (tests/browser.py).
"""
