"""Vercel: ``continuum.platforms.vercel.app.app`` is the Flask app that ``api/index.py`` exposes."""
