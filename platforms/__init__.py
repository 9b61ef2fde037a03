"""Thin platform adapters over ``core.app``: AWS Lambda, Vercel and Cloudflare Workers.

Each sub-package only translates its platform's request and response to the neutral
ones in ``core.app.http``; none is imported by ``core``.
"""
