"""Thin platform adapters over ``continuum.app``: AWS Lambda, Vercel and Cloudflare Workers.

Each sub-package only translates its platform's request and response to the neutral
ones in ``continuum.app.http``; none is imported by ``core``.
"""
