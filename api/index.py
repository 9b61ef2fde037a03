"""Vercel's entry point: its Python runtime serves the WSGI ``app`` found here.

``vercel.json`` rewrites every path to this one function; the app itself lives in
``platforms/vercel/app.py``.
"""

from continuum.platforms.vercel.app import app

__all__ = ["app"]
